"""The dashboard's extension points: panels and daily metrics, registered by each app from its
``AppConfig.ready`` (the kernel imports none of them).

A panel's ``build(request)`` returns its template's context (or None: nothing to show) in a fixed
number of queries however large the inventory. Panels are shown on ``/dashboard/`` to IAM admins,
reviewers and auditors, and (``home``) on their home pages.

A metric is one number per day (``compute(day)``, for today), kept by the daily snapshot task in
``MetricSnapshot`` so that trends exist from an installation's first day. ``backfill(day)``, when
given, measures a past day from the rows' own dates (the demo uses it to seed history).

A stored figure is a panel's figure too costly to compute on every view: ``measure()`` returns a
JSON value, kept (with when it was measured) by the hourly coverage task of the control catalog;
the panel reads the stored value through ``governance.controls.figures`` and measures live when
none is recent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True)
class DashboardPanel:
    key: str
    title: str
    template: str
    build: Callable[[HttpRequest], dict[str, Any] | None]
    order: int = 50
    home: bool = False


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    compute: Callable[[date], float]
    backfill: Callable[[date], float] | None = None


@dataclass(frozen=True)
class StoredFigure:
    key: str
    measure: Callable[[], Any]


_PANELS: dict[str, DashboardPanel] = {}
_METRICS: dict[str, Metric] = {}
_FIGURES: dict[str, StoredFigure] = {}


def register_panel(panel: DashboardPanel) -> None:
    _PANELS[panel.key] = panel


def panels() -> list[DashboardPanel]:
    return sorted(_PANELS.values(), key=lambda p: (p.order, p.key))


def register_metric(metric: Metric) -> None:
    _METRICS[metric.key] = metric


def metrics() -> list[Metric]:
    return sorted(_METRICS.values(), key=lambda m: m.key)


def register_figure(figure: StoredFigure) -> None:
    _FIGURES[figure.key] = figure


def figures() -> list[StoredFigure]:
    return sorted(_FIGURES.values(), key=lambda f: f.key)
