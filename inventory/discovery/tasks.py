"""Discovery's background work (django-q2 runs the public functions of this module)."""

from __future__ import annotations

from governance.actors import system_user
from governance.context import task_context
from inventory.discovery import services


def digests_send(import_id: int) -> int:
    """After an import: one email per person asked about their shadow apps (idempotent)."""
    with task_context(user=system_user()):
        return services.digests_send(import_id)


def deadlines_apply() -> dict[str, int]:
    """Daily: the default action for what nobody answered by its deadline (idempotent)."""
    with task_context(user=system_user()):
        return services.deadlines_apply()


def remediation_execute(remediation_id: int) -> str:
    """A revocation the portal carries out at the provider itself (it has a write token)."""
    with task_context(user=system_user()):
        return services.remediation_execute(remediation_id).status


def import_run(import_id: int) -> str:
    """An uploaded file waiting in the spool: import it (a retried task does nothing twice)."""
    from inventory.discovery import importer

    with task_context(user=system_user()):
        return importer.import_run(import_id).status


def pull_all() -> dict[str, str]:
    """On the ``discovery-pull`` schedule: pull every source with a read token, each imported as
    a complete listing or recorded as a failed import (one failing does not stop the others)."""
    from inventory.discovery import pull

    return pull.pull_all()
