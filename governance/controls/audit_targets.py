"""How the audit trail names and links the catalog's rows (the organisation's frameworks, their
items, its mappings and thresholds), registered from ``ControlsConfig.ready``. They are seen by
whoever reads the catalog (IAM admins, reviewers, auditors); anyone else gets the recorded name
without a link."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse

from governance.controls import catalog
from governance.controls.models import ControlMapping, EvidenceThreshold, Framework, FrameworkItem
from governance.targets import register_target


def _visible(model: Any) -> Any:
    def visible(user: Any) -> QuerySet[Any]:
        rows = model.objects.all()
        return rows if catalog.may_see(user) else rows.none()

    return visible


def _url(name: str, *args: str, anchor: str = "") -> str:
    """The page's address, or none while the page is not installed."""
    try:
        return reverse(name, args=list(args)) + (f"#{anchor}" if anchor else "")
    except NoReverseMatch:
        return ""


def framework_url(framework: Framework) -> str:
    return _url("framework-detail", framework.slug)


def item_url(item: FrameworkItem) -> str:
    return _url("framework-detail", item.framework.slug, anchor=catalog.item_anchor(item.code))


def mapping_url(mapping: ControlMapping) -> str:
    return _url("control-detail", mapping.control_id)


def threshold_url(threshold: EvidenceThreshold) -> str:
    return _url("threshold-edit", threshold.figure_key.partition(".")[0])


def _items_visible(user: Any) -> QuerySet[Any]:
    return _visible(FrameworkItem)(user).select_related("framework")


def register() -> None:
    """Register them."""
    register_target("controls.framework", visible=_visible(Framework), label=lambda row: row.name, url=framework_url)
    register_target(
        "controls.frameworkitem",
        visible=_items_visible,
        label=lambda row: f"{row.framework.name}: {row.code} {row.title}",
        url=item_url,
    )
    register_target("controls.controlmapping", visible=_visible(ControlMapping), url=mapping_url)
    register_target(
        "controls.evidencethreshold",
        visible=_visible(EvidenceThreshold),
        label=lambda row: f"Threshold of {row.figure_key}",
        url=threshold_url,
    )
