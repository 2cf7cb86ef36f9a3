"""Stored dashboard figures (``governance.dashboard.register_figure``): the hourly coverage task
measures every registered figure and keeps its latest value; a panel reads it with ``stored``,
one query per request for all of them, and measures live when the stored value is older than
``MAX_AGE`` (the task has not run lately) or missing. Figures are derived, not governance state:
no audit event is written for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from governance import dashboard
from governance.controls.models import StoredFigure

# The task runs hourly: a value two hours old means it has stopped, and the panel measures live.
MAX_AGE = timedelta(hours=2)


@dataclass(frozen=True)
class Stored:
    value: Any
    taken_at: datetime


# The recent stored figures, read once for the request that showed them; gone with the request.
_READ: WeakKeyDictionary[HttpRequest, dict[str, Stored]] = WeakKeyDictionary()


def refresh() -> int:
    """Measure every registered figure now and upsert its stored value (one INSERT ... ON
    CONFLICT for all of them, written together or not at all); returns how many were written."""
    now = timezone.now()
    rows = [StoredFigure(key=figure.key, value=figure.measure(), taken_at=now) for figure in dashboard.figures()]
    with transaction.atomic():
        StoredFigure.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["key"], update_fields=["value", "taken_at"]
        )
    return len(rows)


def stored(request: HttpRequest, key: str) -> Stored | None:
    """The stored value of figure ``key`` when measured less than ``MAX_AGE`` ago, else None. One
    query per request for every figure."""
    found = _READ.get(request)
    if found is None:
        found = {
            key: Stored(value, taken_at)
            for key, value, taken_at in StoredFigure.objects.filter(taken_at__gt=timezone.now() - MAX_AGE).values_list(
                "key", "value", "taken_at"
            )
        }
        _READ[request] = found
    return found.get(key)


def as_of(taken_at: datetime | None) -> str:
    """When a stored figure was measured, for a panel: "14:00" today, "29 Nov 23:00" another day;
    empty for a figure measured now."""
    if taken_at is None:
        return ""
    local = timezone.localtime(taken_at)
    if local.date() == timezone.localdate():
        return f"{local:%H:%M}"
    return f"{local:%d %b %H:%M}"
