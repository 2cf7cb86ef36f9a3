"""Background tasks of the kernel. Tasks take ids, load, and call a service."""

from __future__ import annotations

from governance import anchoring, services


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
    """Hourly: walk the audit chain, compare it with the newest signed checkpoint and record the
    result for the auditors' home page."""
    return anchoring.verify_and_record().broken is None


def audit_checkpoint() -> int:
    """Hourly: sign a checkpoint of the audit chain and send it to the witnesses; returns its
    sequence number. Raises (the task fails loudly) if the trail no longer matches the last
    checkpoint or, in production, if no signing key is configured."""
    return anchoring.checkpoint_sign().sequence


def ping(answer: str = "pong") -> str:
    """Touches nothing and returns ``answer``: proves that a task travels through the broker to a
    worker and back (a health check for operators; the settings tests use it)."""
    return answer
