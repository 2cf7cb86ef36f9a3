"""Periodic django-q2 schedules, declared by each app and created after every migrate.

Each app calls ``register`` in its ``AppConfig.ready``; ``schedules_sync`` (post_migrate) makes
one ``Schedule`` row per unique name, so running migrate or seed twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    func: str
    cron: str  # five-field cron expression, UTC


_REGISTRY: dict[str, PeriodicTask] = {}


def register(name: str, func: str, cron: str) -> None:
    _REGISTRY[name] = PeriodicTask(name=name, func=func, cron=cron)


def registered() -> list[PeriodicTask]:
    return list(_REGISTRY.values())


def schedules_sync(**_: Any) -> None:
    from django_q.models import Schedule

    for task in _REGISTRY.values():
        Schedule.objects.update_or_create(
            name=task.name,
            defaults={"func": task.func, "schedule_type": Schedule.CRON, "cron": task.cron, "repeats": -1},
        )
