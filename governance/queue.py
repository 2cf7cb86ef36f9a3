"""Hands work to the background worker (django-q2) by the dotted path of a task function.

Naming the task by its path, rather than importing the tasks module, keeps the module that queues
work (a service, the webhook outbox) from importing the module that does it, which imports the
service in turn. Queueing never fails the caller: a task that could not be queued is logged, and
the periodic sweep of its queue (the outbox flush, the webhook sweep, the campaign sweep) picks up
the work it would have done.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


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
