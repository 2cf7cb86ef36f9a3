"""Extension points for the apps above the kernel: navigation entries (with counts) and home-page
panels. ``inventory`` and ``approvals`` register theirs in ``AppConfig.ready``, so the kernel's
base layout and home page show them without importing those apps: the kernel never imports the
apps built on it.

A nav entry's ``count`` and a panel's ``build`` each take the request and must run a fixed number
of queries (a COUNT, or one sliced query). An entry with a ``group`` is shown in that group's menu
of the header (one of ``NAV_GROUPS``), so that the header stays one row whatever a role may open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

# The header's menus. Daily work (home, inventory, the queue, requests, campaigns) stays in the
# bar itself; what admins set up and what auditors watch goes in a menu each.
ADMINISTRATION = "Administration"
OVERSIGHT = "Oversight"
NAV_GROUPS = (ADMINISTRATION, OVERSIGHT)
# A nav badge shows counts up to this; beyond it "999+". A count may stop counting one past it
# (a bounded count reads at most that many rows, however long the list).
BADGE_COUNT_UP_TO = 999


def badge(count: int) -> tuple[str, str]:
    """A nav count as its badge shows it and as a screen reader says it."""
    if count > BADGE_COUNT_UP_TO:
        return f"{BADGE_COUNT_UP_TO}+", f"more than {BADGE_COUNT_UP_TO} waiting"
    return str(count), f"{count} waiting"


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    order: int = 50
    visible: Callable[[Any], bool] = lambda user: True
    count: Callable[[HttpRequest], int] | None = None
    group: str = ""  # empty: in the bar; else one of NAV_GROUPS

    def __post_init__(self) -> None:
        if self.group and self.group not in NAV_GROUPS:
            raise ValueError(f"Unknown navigation group {self.group!r}: one of {', '.join(NAV_GROUPS)}.")


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
