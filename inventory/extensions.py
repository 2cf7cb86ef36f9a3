"""Sections that the apps above the inventory add to an integration's detail page.

``approvals`` and ``runtime`` know things about an integration that the inventory must not import
(its runtime activity, its elevations): each registers a section in its ``AppConfig.ready``, and
the detail page renders every registered section in ``order``, the way the kernel's home page
renders the panels of ``governance.portal``.

A section's ``build(request, integration)`` is called only for an integration the user may see
(the detail view looked it up through the selectors). It returns None (nothing to show) or the
context of its template, and must run a fixed number of queries: a page that renders every
section must not grow with the integration's history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from inventory.models import Integration

SectionBuild = Callable[[HttpRequest, Integration], dict[str, Any] | None]


@dataclass(frozen=True)
class IntegrationSection:
    """``template`` is included with ``data`` (what ``build`` returned), ``integration`` and
    ``section_id`` (``name``, for the heading's id)."""

    name: str
    template: str
    build: SectionBuild
    order: int = 50


_SECTIONS: dict[str, IntegrationSection] = {}


def register_integration_section(name: str, *, template: str, build: SectionBuild, order: int = 50) -> None:
    """Add (or replace, by ``name``: ``ready`` may run more than once) a section of the
    integration detail page."""
    _SECTIONS[name] = IntegrationSection(name=name, template=template, build=build, order=order)


def registered_sections() -> list[IntegrationSection]:
    return sorted(_SECTIONS.values(), key=lambda section: (section.order, section.name))


def integration_sections(request: HttpRequest, integration: Integration) -> list[dict[str, Any]]:
    """The sections to render for ``integration``, in order: ``{"name", "template", "data"}``
    for each section whose ``build`` had something to show."""
    shown = []
    for section in registered_sections():
        data = section.build(request, integration)
        if data is not None:
            shown.append({"name": section.name, "template": section.template, "data": data})
    return shown
