"""Background tasks of the control catalog: the daily metric snapshot and the hourly framework
coverage snapshot, which also refreshes the stored dashboard figures."""

from __future__ import annotations

from datetime import date

from governance.controls import dashboard_panels, figures, snapshots


def metrics_snapshot(day: str = "") -> int:
    """Measure every dashboard metric for ``day`` (ISO date; today when empty) and upsert the
    day's snapshots; returns how many were written. Idempotent: a rerun updates the same rows."""
    result = snapshots.metrics_snapshot(date.fromisoformat(day) if day else None)
    return result.written


def coverage_snapshot() -> int:
    """Measure every framework's coverage now and upsert today's coverage snapshots (the
    dashboard shows the latest), then measure and store every registered dashboard figure
    (``figures.refresh``); returns how many rows were written."""
    return dashboard_panels.coverage_snapshot() + figures.refresh()
