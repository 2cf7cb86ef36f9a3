"""Who hears what about an access request, through the outbox (in the caller's transaction, once
per key). Reviewers hear about work waiting for them — a step assigned, a reminder, an
escalation — one email per item, or, if they chose it, one daily digest listing everything
waiting. The requester (and the integration's business owner) hear once, when the request
reaches its outcome: approved with what and until when, rejected with the reason and by whom, or
changes requested with the reviewer's comment and the page to edit and resubmit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from approvals import selectors
from approvals.models import AccessRequest, Decision, DecisionKind, RequestStatus, RequestStep, StepAssignment
from governance.models import OutboundEmail, ReviewerEmails, User
from governance.selectors import daily_digest_readers, reviewer_emails_of
from governance.services import email_enqueue
from inventory.choices import GrantStatus
from inventory.models import Grant

DIGEST_ITEMS = 50  # items a digest lists; the rest are counted and wait in the queue


def email_about(req: AccessRequest, recipient: User, *, key: str, subject: str, template: str, **context: Any) -> None:
    """Queue an email about ``req`` (once per ``key``) with the link to its page."""
    email_enqueue(
        key=key,
        recipient=recipient,
        subject=subject,
        template=template,
        context={"req": req, **context, "link": reverse("approvals:request-detail", args=[req.pk])},
    )


def reviewer_notify(
    req: AccessRequest, reviewer: User, *, key: str, subject: str, template: str, step: RequestStep, **context: Any
) -> None:
    """Tell a reviewer about one item waiting for them, unless they chose the daily digest (which
    lists it with everything else waiting)."""
    if reviewer_emails_of(reviewer) == ReviewerEmails.DAILY:
        return
    email_about(req, reviewer, key=key, subject=subject, template=template, step=step, **context)


def _outcome_recipients(req: AccessRequest) -> list[User]:
    """The requester, and the integration's business owner when that is someone else."""
    people = [req.requester]
    integration = req.integration
    if integration is not None and integration.business_owner_id not in (None, req.requester_id):
        people.append(integration.business_owner)
    return people


def _deciding(req: AccessRequest) -> Decision | None:
    """The decision that ended the round (the last one recorded)."""
    return (
        Decision.objects.filter(request=req, step__round=req.round)
        .select_related("reviewer", "step")
        .order_by("-created_at", "-id")
        .first()
    )


def _approvers(req: AccessRequest) -> list[User]:
    decisions = Decision.objects.filter(request=req, step__round=req.round, decision=DecisionKind.APPROVE)
    return [decision.reviewer for decision in decisions.select_related("reviewer").order_by("created_at", "id")]


def _until(moment: datetime, *, elevation: bool) -> str:
    """How a subject says when access ends: the day, or for a one-task elevation the time."""
    local = timezone.localtime(moment)
    return f"{local:%H:%M} UTC" if elevation else f"{local.day} {local:%b %Y}"


def _outcome_subject(req: AccessRequest, status: str, grants: list[Grant], decision: Decision | None) -> str:
    name = req.subject_name
    if status == RequestStatus.APPROVED:
        ends = [grant.expires_at for grant in grants if grant.expires_at is not None]
        if ends:
            return f"Approved — {name}: access granted until {_until(min(ends), elevation=req.is_elevation)}"
        return f"Approved — {name}"
    comment = Truncator(" ".join((decision.comment if decision else "").split())).chars(80)
    if status == RequestStatus.REJECTED:
        return f"Rejected — {name}: {comment}" if comment else f"Rejected — {name}"
    return f"Changes requested — {name}: edit and resubmit"


def outcome_notify(req: AccessRequest, *, status: str) -> None:
    """Send the one outcome email of a round to the requester (and business owner), in the
    transaction of the decision that closed it. Keyed per request, round and outcome: a round
    ends once, and a resubmitted request's next round gets its own."""
    if status not in (RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CHANGES_REQUESTED):
        return
    decision = _deciding(req)
    grants: list[Grant] = []
    if status == RequestStatus.APPROVED and not req.is_change:
        grants = list(
            selectors.grants_from_request(req).filter(status=GrantStatus.ACTIVE).order_by("scope__code", "id")
        )
    context = {
        "status": status,
        "decision": decision,
        "approvers": _approvers(req) if status == RequestStatus.APPROVED else [],
        "grants": grants,
        "resubmit_link": reverse("approvals:request-resubmit", args=[req.pk]),
    }
    subject = _outcome_subject(req, status, grants, decision)
    for person in _outcome_recipients(req):
        email_about(
            req,
            person,
            key=f"approval-outcome-{req.pk}-r{req.round}-{status}-{person.pk}",
            subject=subject,
            template="approval_outcome",
            **context,
        )


def _digest_rows(assignments: Iterable[StepAssignment], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "req": assignment.step.request,
            "step": assignment.step,
            "due_at": assignment.due_at,
            "overdue": assignment.due_at is not None and assignment.due_at < now,
            "link": reverse("approvals:request-detail", args=[assignment.step.request_id]),
        }
        for assignment in assignments
    ]


def reviewer_digest_send(*, reviewer: User, now: datetime | None = None) -> bool:
    """Queue today's digest for ``reviewer``: one email listing every approval step waiting for
    them, oldest due first. Nothing waiting, nothing sent; a second run the same day sends
    nothing more (the key holds the date). True when a digest was queued."""
    now = now or timezone.now()
    waiting = selectors.queue_listed(reviewer)
    total = waiting.count()
    if not total:
        return False
    rows = _digest_rows(waiting[:DIGEST_ITEMS], now)
    overdue = sum(1 for row in rows if row["overdue"])
    plural = "s" if total != 1 else ""
    subject = f"Waiting for your review: {total} item{plural}" + (f", {overdue} overdue" if overdue else "")
    day = timezone.localdate(now)
    key = f"reviewer-digest-{reviewer.pk}-{day:%Y%m%d}"
    if OutboundEmail.objects.filter(key=key).exists():
        return False  # today's is queued already (the unique key would keep a second out anyway)
    email = email_enqueue(
        key=key,
        recipient=reviewer,
        subject=subject,
        template="reviewer_digest",
        context={
            "rows": rows,
            "total": total,
            "more": total - len(rows),
            "day": day,
            "queue_link": reverse("approvals:queue"),
        },
    )
    return email is not None


def reviewer_digests_send(*, now: datetime | None = None) -> int:
    """The daily digest run: one digest to each active person who chose it and has something
    waiting. Each is queued in its own transaction, so one bad address stops nobody else's."""
    sent = 0
    for reviewer in daily_digest_readers():
        with transaction.atomic():
            sent += 1 if reviewer_digest_send(reviewer=reviewer, now=now) else 0
    return sent
