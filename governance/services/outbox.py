"""Writes of the email outbox: a notification is queued once per key in the transaction of the
change that causes it, sent by the worker after commit, retried with backoff, and retried by
hand by an IAM admin."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.header import Header
from typing import Any, cast

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import Context, engines
from django.template.backends.django import DjangoTemplates
from django.template.loader import render_to_string
from django.utils import timezone

from governance import queue
from governance.actors import Actor
from governance.audit import accountable_human, audit_record
from governance.exceptions import Conflict, NotAllowed
from governance.models import EmailStatus, OutboundEmail, User
from governance.permissions import can_retry_email
from governance.validators import header_safe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailSpec:
    """One email to put in the outbox (the arguments of ``email_enqueue``)."""

    key: str
    recipient: User | None
    subject: str
    template: str
    context: Mapping[str, Any]
    to_address: str = ""


def email_enqueue(
    *,
    key: str,
    recipient: User | None,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    to_address: str = "",
) -> OutboundEmail | None:
    """Put an email in the outbox, in the caller's transaction. ``template`` names a pair
    ``templates/emails/<template>.txt`` and ``.html``. The same ``key`` is stored once, so a
    task that runs twice sends nothing twice. Returns None when the user has no address.
    The subject is made header-safe (one line, bounded): a name with a line break in it must
    not stop the email (Django refuses such a header with ``BadHeaderError``)."""
    spec = EmailSpec(
        key=key, recipient=recipient, subject=subject, template=template, context=context, to_address=to_address
    )
    fields = _rendered_fields(spec)
    if fields is None:
        return None
    email, created = OutboundEmail.objects.get_or_create(key=key, defaults=fields)
    if created:
        transaction.on_commit(lambda: _schedule_delivery(email.pk))
    return email


def email_enqueue_many(specs: Iterable[EmailSpec]) -> list[int]:
    """``email_enqueue`` for many emails at once, in the caller's transaction: the same rows,
    written with one look-up of the keys already stored and one insert per batch, and one
    after-commit hook that queues every delivery together (still one task per email, so a
    failure retries alone). A key already stored, or given twice, is stored once. Returns the
    ids of the emails this call stored, in the order of ``specs``."""
    stored: list[int] = []
    batch: list[EmailSpec] = []
    for spec in specs:
        batch.append(spec)
        if len(batch) == ENQUEUE_BATCH:
            stored.extend(_store_batch(batch))
            batch = []
    if batch:
        stored.extend(_store_batch(batch))
    if stored:
        transaction.on_commit(lambda: _schedule_deliveries(stored))
    return stored


# Emails rendered, looked up and inserted together (bounds the memory of the bodies and the
# number of parameters of one statement).
ENQUEUE_BATCH = 500


def _store_batch(specs: list[EmailSpec]) -> list[int]:
    """Insert the emails of ``specs`` whose key is not stored yet; their ids."""
    keys = [spec.key for spec in specs]
    taken = set(OutboundEmail.objects.filter(key__in=keys).values_list("key", flat=True))
    rows: dict[str, OutboundEmail] = {}
    for spec in specs:
        if spec.key in taken or spec.key in rows:
            continue
        fields = _rendered_fields(spec)
        if fields is not None:
            rows[spec.key] = OutboundEmail(key=spec.key, **fields)
    if not rows:
        return []
    # A concurrent transaction that stored one of these keys first wins: its row is kept, this
    # insert skips it, and its delivery is its own. An insert that skips conflicts returns no
    # ids, so they are read back by key; a row is this call's when it carries the creation time
    # this call gave it (to the microsecond).
    OutboundEmail.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    stored = OutboundEmail.objects.filter(key__in=list(rows)).values_list("key", "pk", "created_at")
    ours = {key: pk for key, pk, created_at in stored if created_at == rows[key].created_at}
    return [ours[key] for key in rows if key in ours]


def _rendered_fields(spec: EmailSpec) -> dict[str, Any] | None:
    """The stored fields of ``spec``'s email other than its key; None (logged) without an address."""
    # ``to_address`` sends to a mailbox that is no portal account (the auditors' address, with
    # ``recipient`` None).
    address = spec.to_address or (spec.recipient.email if spec.recipient is not None else "")
    if not address:
        log.warning("No email address for %s; notification %s not queued", spec.recipient, spec.key)
        return None
    ctx = {"recipient": spec.recipient, "site_url": settings.SITE_URL, **spec.context}
    return {
        "recipient": spec.recipient,
        "to_address": address,
        "subject": header_safe(spec.subject, max_length=OutboundEmail._meta.get_field("subject").max_length or 255),
        "body_text": _render_text(f"emails/{spec.template}.txt", ctx),
        "body_html": render_to_string(f"emails/{spec.template}.html", ctx),
    }


class _OutboxMessage(EmailMultiAlternatives):
    """A multipart/alternative email (plain text, then HTML) whose subject decodes to exactly
    what was written. Django folds a long non-ASCII subject after an empty first line
    ("Subject:" then " =?utf-8?q?..."), which readers show with a leading space; folded knowing
    the header's name, the first encoded word starts on the first line."""

    def message(self, **kwargs: Any) -> Any:
        built = super().message(**kwargs)
        if not str(self.subject).isascii():
            built.replace_header("Subject", Header(str(self.subject), "utf-8", header_name="Subject"))
        return built


def _render_text(name: str, ctx: Mapping[str, Any]) -> str:
    """The plain-text part, rendered without HTML escaping: a mail client shows "R&D" in it as
    typed, never "R&amp;D" (the HTML part is rendered with escaping, as every page is)."""
    backend = cast(DjangoTemplates, engines["django"])
    return backend.engine.get_template(name).render(Context(dict(ctx), autoescape=False))


_DELIVER_TASK = "governance.tasks.outbox_deliver"


def _schedule_delivery(email_id: int) -> None:
    """Queue the sending of an email (the periodic flush sends it if it could not be queued)."""
    queue.enqueue(_DELIVER_TASK, email_id, name=f"outbox-{email_id}")


def _schedule_deliveries(email_ids: Sequence[int]) -> None:
    """Queue the sending of each email, one task per email (a failure retries alone), pushed to
    the broker together (the periodic flush sends what could not be queued)."""
    queue.enqueue_many(_DELIVER_TASK, [(email_id,) for email_id in email_ids], name="outbox-{}")


def email_deliver(*, email_id: int) -> str:
    """Send one outbox email if it is due. Claims the row with a conditional UPDATE so that two
    workers never send the same email; on failure, schedules a retry with exponential backoff.
    Returns the resulting status."""
    now = timezone.now()
    stale_claim = now - timedelta(minutes=10)
    claimed = (
        OutboundEmail.objects.filter(pk=email_id, status=EmailStatus.PENDING, next_attempt_at__lte=now).update(
            status=EmailStatus.SENDING, claimed_at=now
        )
        # A worker killed mid-send leaves SENDING behind; reclaim it after a while.
        or OutboundEmail.objects.filter(pk=email_id, status=EmailStatus.SENDING, claimed_at__lt=stale_claim).update(
            claimed_at=now
        )
    )
    if not claimed:
        return OutboundEmail.objects.filter(pk=email_id).values_list("status", flat=True).first() or "missing"
    email = OutboundEmail.objects.get(pk=email_id)
    message = _OutboxMessage(
        # Again at delivery: a row stored before subjects were made safe must not fail forever.
        subject=header_safe(email.subject, max_length=255),
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_address],
        # A stable Message-ID lets mail systems drop a duplicate if a worker dies after sending.
        headers={"Message-ID": f"<outbox-{email.pk}-{hashlib.sha256(email.key.encode()).hexdigest()[:16]}@governance>"},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # any transport error: keep the email and retry later
        attempts = email.attempts + 1
        final = attempts >= settings.OUTBOX_MAX_ATTEMPTS
        delay = settings.OUTBOX_RETRY_BASE_SECONDS * (2 ** (attempts - 1))
        OutboundEmail.objects.filter(pk=email.pk).update(
            status=EmailStatus.FAILED if final else EmailStatus.PENDING,
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=now + timedelta(seconds=delay),
            claimed_at=None,
        )
        log.warning("Email %s attempt %s failed: %s", email.pk, attempts, exc)
        return EmailStatus.FAILED if final else EmailStatus.PENDING
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENT, attempts=email.attempts + 1, sent_at=timezone.now(), last_error=""
    )
    return EmailStatus.SENT


def outbox_due_ids(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    stale_claim = now - timedelta(minutes=10)
    pending = OutboundEmail.objects.filter(status=EmailStatus.PENDING, next_attempt_at__lte=now)
    stuck = OutboundEmail.objects.filter(status=EmailStatus.SENDING, claimed_at__lt=stale_claim)
    return list((pending | stuck).order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])


def email_retry(*, actor: Actor | User, email: OutboundEmail) -> OutboundEmail:
    """An IAM admin asks for a failed (or waiting) email to be tried again now. Only a failed or
    pending email can be retried; a sent one stays sent. The delivery itself is the task's job."""
    if not can_retry_email(Actor.coerce(actor).user):
        raise NotAllowed("Only IAM admins can retry emails.")
    with transaction.atomic():
        now = timezone.now()
        updated = OutboundEmail.objects.filter(
            pk=email.pk, status__in=[EmailStatus.FAILED, EmailStatus.PENDING]
        ).update(status=EmailStatus.PENDING, next_attempt_at=now)
        if updated != 1:
            raise Conflict("Only a failed or waiting email can be retried.")
        audit_record(
            actor=actor,
            action="outbound_email.retried",
            target=email,
            # An email to a mailbox that is no account (the auditors'): the admin retrying it.
            owner=email.recipient or accountable_human(actor),
            before={"status": email.status, "attempts": email.attempts},
            after={"status": EmailStatus.PENDING},
        )
        email.refresh_from_db()
        transaction.on_commit(lambda: _schedule_delivery(email.pk))
    return email
