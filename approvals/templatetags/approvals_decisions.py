"""The decision form partial's one helper: the form to render for a step."""

from __future__ import annotations

from typing import Any

from django import template

from approvals.forms import DecisionForm
from approvals.models import AccessRequest, RequestStep

register = template.Library()


@register.simple_tag
def decision_form_for(
    form: Any, step: RequestStep, req: AccessRequest, decisions: list[tuple[str, str]]
) -> DecisionForm:
    """``form`` when it is this step's decision form (a refused one keeps every choice), else a
    fresh one without scope ticks (its approval takes every scope still requested)."""
    if isinstance(form, DecisionForm) and form.step.pk == step.pk:
        return form
    return DecisionForm(req=req, step=step, decisions=decisions)
