"""Background tasks of the kernel. Tasks take ids, load, and call a service."""

from __future__ import annotations

from governance import audit, services


def outbox_deliver(email_id: int) -> str:
    return services.email_deliver(email_id=email_id)


def outbox_flush() -> int:
    """Periodic sweep: deliver every due email (new ones whose enqueue was lost, and retries)."""
    sent = 0
    for email_id in services.outbox_due_ids():
        if services.email_deliver(email_id=email_id) == "sent":
            sent += 1
    return sent


def audit_verify() -> bool:
    """Hourly: walk the audit chain and record the result for the auditors' home page."""
    _checked, broken = audit.verify_and_record()
    return broken is None
