"""Extension points for the apps above the kernel: navigation entries (with counts) and home-page
panels. ``inventory`` and ``approvals`` register theirs in ``AppConfig.ready``, so the kernel's
base layout and home page show them without importing those apps: the kernel never imports the
apps built on it.

A nav entry's ``count`` and a panel's ``build`` each take the request and must run a fixed number
of queries (a COUNT, or one sliced query).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    order: int = 50
    visible: Callable[[Any], bool] = lambda user: True
    count: Callable[[HttpRequest], int] | None = None


@dataclass(frozen=True)
class HomePanel:
    """``build(request)`` returns None (nothing to show) or a context dict for ``template``."""

    key: str
    template: str
    build: Callable[[HttpRequest], dict[str, Any] | None]
    order: int = 50
    roles: frozenset[str] = field(default_factory=frozenset)  # empty: everyone


_NAV: dict[str, NavEntry] = {}
_PANELS: dict[str, HomePanel] = {}


def register_nav(entry: NavEntry) -> None:
    _NAV[entry.url_name] = entry


def register_panel(panel: HomePanel) -> None:
    _PANELS[panel.key] = panel


def nav_entries() -> list[NavEntry]:
    return sorted(_NAV.values(), key=lambda e: (e.order, e.label))


def home_panels() -> list[HomePanel]:
    return sorted(_PANELS.values(), key=lambda p: (p.order, p.key))
