"""Words for the workflow pages: a group as people read it and a step's risk tiers by name."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from governance.choices import LEVEL_ORDER, Level
from governance.roles import group_label as _group_label

register = template.Library()


@register.filter
def group_label(name: str) -> str:
    return _group_label(name)


@register.filter
def tier_labels(tiers: Iterable[str]) -> str:
    """``["critical", "high"]`` -> "High, Critical" (low to critical)."""
    known = sorted((tier for tier in tiers if tier in LEVEL_ORDER), key=LEVEL_ORDER.__getitem__)
    return ", ".join(str(Level(tier).label) for tier in known)
