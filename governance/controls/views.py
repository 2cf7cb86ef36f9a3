"""The control catalog's pages: the controls with their live evidence, one control, the
frameworks with their coverage, and one framework item by item with the controls that answer it.

IAM admins, reviewers and auditors read them (IAM admins also get the links to change thresholds,
frameworks and mappings, whose pages and services decide again); anyone else gets a 404. Each
page measures every control it shows once, so it runs a fixed number of queries however large the
inventory (``governance.controls.overview``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.controls import catalog, overview, registry
from governance.controls.registry import Status
from governance.forms import AccessibleForm
from governance.roles import is_iam_admin
from governance.web import AuthenticatedHttpRequest

STATUS_CHOICES = [
    ("", "Any status"),
    (overview.GAPS, "Gaps: not met or partly met"),
    *[(str(value), str(label)) for value, label in Status.choices],
]
ITEM_STATUS_CHOICES = [
    ("", "Any status"),
    (overview.GAPS, "Gaps: not met, partly met or no control"),
    *[(value, overview.ITEM_STATUS_LABELS[value]) for value in overview.ITEM_STATUS_ORDER],
]


def _require_reader(request: AuthenticatedHttpRequest) -> None:
    if not catalog.may_see(request.user):
        raise Http404


class ControlFilterForm(AccessibleForm):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)

    def __init__(self, *args: Any, apps: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Any app"), *[(app, app) for app in apps]]
        self.fields["app"] = forms.ChoiceField(label="App", choices=choices, required=False)

    def values(self) -> dict[str, str]:
        """The filters to apply: an unknown value filters nothing (the form says why)."""
        if not self.is_valid():
            return {"status": "", "app": ""}
        return {"status": self.cleaned_data["status"], "app": self.cleaned_data["app"]}


class ItemFilterForm(AccessibleForm):
    status = forms.ChoiceField(choices=ITEM_STATUS_CHOICES, required=False)

    def value(self) -> str:
        return self.cleaned_data["status"] if self.is_valid() else ""


def _tally(statuses: list[str], labels: dict[str, str], order: tuple[str, ...]) -> list[dict[str, Any]]:
    """How many of each status, in ``order``, leaving out those with none."""
    counts = [(status, statuses.count(status)) for status in order]
    return [{"status": status, "label": labels[status], "count": count} for status, count in counts if count]


@login_required
@require_GET
def control_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every control with its figures and framework items, gaps first."""
    _require_reader(request)
    views = overview.control_views()
    form = ControlFilterForm(request.GET, apps=sorted({control.app for control in registry.controls()}))
    shown = overview.filter_controls(views, **form.values())
    labels = {str(value): str(label) for value, label in Status.choices}
    return render(
        request,
        "controls/control_list.html",
        {
            "form": form,
            "controls": shown,
            "total": len(views),
            "tally": _tally([view.status for view in views], labels, overview.CONTROL_STATUS_ORDER),
            "can_change": is_iam_admin(request.user),
        },
    )


@login_required
@require_GET
def control_detail(request: AuthenticatedHttpRequest, control_id: str) -> HttpResponse:
    _require_reader(request)
    view = overview.control_view(control_id)
    if view is None:
        raise Http404
    return render(request, "controls/control_detail.html", {"view": view, "can_change": is_iam_admin(request.user)})


@login_required
@require_GET
def framework_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every framework, built in and the organisation's, with how much of it the controls cover."""
    _require_reader(request)
    return render(
        request,
        "controls/framework_list.html",
        {"frameworks": overview.framework_views(), "can_change": is_iam_admin(request.user)},
    )


@login_required
@require_GET
def framework_detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """One framework item by item, gaps first, each with the controls answering it."""
    _require_reader(request)
    view = overview.framework_view(slug)
    if view is None:
        raise Http404
    form = ItemFilterForm(request.GET)
    items = overview.filter_items(view.items_gaps_first(), form.value())
    return render(
        request,
        "controls/framework_detail.html",
        {
            "view": view,
            "framework": view.framework,
            "items": items,
            "form": form,
            "tally": _tally(
                [item.status for item in view.items], overview.ITEM_STATUS_LABELS, overview.ITEM_STATUS_ORDER
            ),
            "can_change": is_iam_admin(request.user),
        },
    )
