"""Hands work to the background worker (django-q2) by the dotted path of a task function.

Naming the task by its path, rather than importing the tasks module, keeps the module that queues
work (a service, the webhook outbox) from importing the module that does it, which imports the
service in turn. Queueing never fails the caller: a task that could not be queued is logged, and
the periodic sweep of its queue (the outbox flush, the webhook sweep, the campaign sweep) picks up
the work it would have done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

# Tasks pushed to the broker in one round trip (one insert, one Redis pipeline): bounds the
# signed packages held at once and the size of one statement or transaction.
PUSH_BATCH = 500


def enqueue(task: str, *args: object, name: str) -> None:
    """Queue ``task`` (the dotted path of a function in ``settings.Q_TASK_MODULES``) with
    ``args``, under the task name ``name`` (shown in the admin's task lists and logs)."""
    # Imported here: django-q2's task module loads its models, which a module imported while the
    # apps load (a service, an app's signals) cannot do.
    from django_q.tasks import async_task

    try:
        async_task(task, *args, task_name=name)
    except Exception:  # the queue's periodic sweep picks the work up; never fail the caller
        log.exception("Could not queue task %s (%s)", name, task)


def enqueue_many(task: str, args_list: Iterable[Sequence[object]], *, name: str) -> None:
    """Queue ``task`` once per entry of ``args_list`` (each entry the arguments of one task),
    each task named ``name.format(*args)`` (``"outbox-{}"``). Still one task per entry, so a
    failure retries alone, but pushed to the broker together: one insert per batch for the
    database broker, one pipeline per batch for Redis. The same rule as ``enqueue``: nothing
    here fails the caller; what could not be queued is logged and left to the queue's sweep."""
    entries = [tuple(args) for args in args_list]
    if len(entries) <= 1:
        for args in entries:
            enqueue(task, *args, name=name.format(*args))
        return
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    queued = 0
    try:
        broker = get_broker()
        for start in range(0, len(entries), PUSH_BATCH):
            collected = _CollectingBroker(broker.list_key)
            # ``async_task`` builds and signs each task as for a single one and hands it to
            # ``collected``; in synchronous mode (tests) it runs each task instead.
            for args in entries[start : start + PUSH_BATCH]:
                async_task(task, *args, task_name=name.format(*args), broker=collected)
            _push_all(broker, collected.packages)
            queued = start + len(collected.packages)
    except Exception:  # the queue's periodic sweep picks the rest up; never fail the caller
        log.exception("Could not queue %s of %s tasks %s (%s)", len(entries) - queued, len(entries), name, task)


class _CollectingBroker:
    """Takes the signed tasks ``async_task`` would push, so that they are pushed together."""

    def __init__(self, list_key: str) -> None:
        self.list_key = list_key
        self.packages: list[str] = []

    def enqueue(self, package: str) -> int:
        self.packages.append(package)
        return len(self.packages)


def _push_all(broker: Any, packages: list[str]) -> None:
    """Push ``packages`` onto ``broker``'s queue in one round trip where the broker allows it."""
    from django.utils import timezone
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ

    if not packages:
        return
    if isinstance(broker, Redis):
        # A transaction (MULTI/EXEC): the batch is pushed whole or not at all.
        pipeline = broker.connection.pipeline()
        for package in packages:
            pipeline.rpush(broker.list_key, package)
        pipeline.execute()
    elif isinstance(broker, ORM):
        # The rows ``ORM.enqueue`` writes one by one (each its own commit), in one insert.
        now = timezone.now()
        OrmQ.objects.using(Conf.ORM).bulk_create(
            [OrmQ(key=broker.list_key or Conf.CLUSTER_NAME, payload=package, lock=now) for package in packages]
        )
    else:
        for package in packages:
            broker.enqueue(package)
