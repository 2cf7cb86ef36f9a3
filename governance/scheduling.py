"""Periodic django-q2 schedules, declared by each app and created after every migrate.

Each app calls ``register`` in its ``AppConfig.ready``; ``schedules_sync`` (post_migrate) makes
one ``Schedule`` row per unique name, so running migrate or seed twice changes nothing.

The worker runs only the project's own task functions (``allowed_task_functions``): anything else
a task or schedule names fails with ``TaskRefused`` before it is called.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


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


# --- What the worker may run ----------------------------------------------------------------------
#
# A django-q2 task names its function by a dotted path, and the worker imports and calls whatever
# it names: a ``Schedule`` row with ``func="subprocess.getoutput"`` would run a shell command.
# Schedules are created by the apps' own code (``register`` above, campaign definitions), and the
# admin shows them read-only; the worker still checks every task against this allow-list, so a row
# written some other way (a database console, an old release) runs nothing it should not.


class TaskRefused(Exception):
    """A task names a function (or result hook) outside the allow-list; it is never called."""


@functools.cache
def _task_module_functions() -> frozenset[str]:
    names: set[str] = set()
    for module_name in settings.Q_TASK_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            # Functions defined in the module itself, not the helpers it imports.
            if inspect.isfunction(obj) and obj.__module__ == module_name and not name.startswith("_"):
                names.add(f"{module_name}.{name}")
    return frozenset(names)


def allowed_task_functions() -> frozenset[str]:
    """The dotted paths the worker will run: the public functions of ``settings.Q_TASK_MODULES``
    and every periodic task registered in code."""
    return _task_module_functions() | {task.func for task in _REGISTRY.values()}


def _dotted_name(func: object) -> str:
    if isinstance(func, str):
        return func
    module, name = getattr(func, "__module__", ""), getattr(func, "__qualname__", "")
    return f"{module}.{name}" if module and name else repr(func)


def is_allowed_task(func: object) -> bool:
    return _dotted_name(func) in allowed_task_functions()


class _RefusedArguments:
    """Stands in for a refused task's positional arguments.

    django-q2's worker calls ``f(*task["args"], **task["kwargs"])`` inside the ``try`` that turns
    an exception into a failed task; unpacking this object raises ``TaskRefused`` there, so the
    function is never called and the refusal is recorded like any failure (a ``Failure`` row, the
    monitor's error log). It pickles back to the original arguments, since the worker hands the
    task to the monitor through a multiprocessing queue and the ``Failure`` row stores them.
    """

    def __init__(self, args: Iterable[object], reason: str) -> None:
        self.args = tuple(args)
        self.reason = reason

    def __iter__(self) -> Iterator[object]:
        raise TaskRefused(self.reason)

    def __reduce__(self) -> tuple[type[tuple[object, ...]], tuple[tuple[object, ...]]]:
        return (tuple, (self.args,))


def refuse_disallowed_task(sender: object, func: object, task: dict[str, Any], **_: Any) -> None:
    """``pre_execute`` receiver (in the worker, after the task's function is looked up and before
    it runs): a function or result hook outside the allow-list turns the task into a failure."""
    refused = [
        f"{what} {_dotted_name(value)!r}"
        for what, value in (("function", task.get("func")), ("result hook", task.get("hook")))
        if value and not is_allowed_task(value)
    ]
    if not refused:
        return
    reason = (
        f"Refused to run task {task.get('name')!r}: {' and '.join(refused)} "
        "is not one of the portal's task functions (settings.Q_TASK_MODULES)."
    )
    log.error(reason)
    # The monitor calls a task's result hook after saving the result: never call a refused one.
    task.pop("hook", None)
    task["args"] = _RefusedArguments(task.get("args") or (), reason)


def enforce_allow_list() -> None:
    """Connected once in ``GovernanceConfig.ready`` (web processes and workers alike)."""
    from django_q.signals import pre_execute

    pre_execute.connect(refuse_disallowed_task, dispatch_uid="governance.scheduling.refuse_disallowed_task")
