"""Keeping steps within their SLA, run by the scheduled sweep as the system: the open reviewers of
a step past half its SLA are reminded, and a step past its SLA escalates to its escalation target.
Each happens once per step, also when two sweeps run at the same time."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals.models import RequestStep, StepStatus
from approvals.services.notifications import reviewer_notify
from approvals.services.requests import lock_integration_by_id
from approvals.services.routing import escalate_step
from governance.actors import Actor

SWEEP_SIZE = 1000  # steps handled per sweep; the next sweep takes the rest


def _due_step_ids(**due: datetime | bool) -> list[int]:
    """The ids of the active steps matching ``due``, a sweep's worth (read before any write)."""
    return list(RequestStep.objects.filter(status=StepStatus.ACTIVE, **due).values_list("pk", flat=True)[:SWEEP_SIZE])


def _claim_reminder(step_id: int, now: datetime) -> bool:
    """Mark the step reminded unless another sweep did; True when this sweep may send."""
    claimed = RequestStep.objects.filter(pk=step_id, status=StepStatus.ACTIVE, reminded_at__isnull=True).update(
        reminded_at=now
    )
    return claimed == 1


def _remind(step: RequestStep) -> None:
    req = step.request
    for assignment in step.assignments.filter(is_open=True).select_related("user"):
        reviewer_notify(
            req,
            assignment.user,
            key=f"approval-reminder-{step.pk}-{assignment.user_id}",
            subject=f"Still waiting for your review: {req.subject_name} (due {step.due_at:%d %b %H:%M} UTC)",
            template="approval_reminder",
            step=step,
        )


def steps_remind_due(*, now: datetime | None = None) -> int:
    """Remind the open reviewers of every active step past half its SLA (once per step)."""
    now = now or timezone.now()
    count = 0
    for step_id in _due_step_ids(remind_at__lte=now, reminded_at__isnull=True):
        with transaction.atomic():
            if not _claim_reminder(step_id, now):
                continue
            _remind(RequestStep.objects.select_related("request__integration").get(pk=step_id))
            count += 1
    return count


def steps_escalate_overdue(*, now: datetime | None = None) -> int:
    """Escalate every active step past its SLA to its escalation target (once per step; audited)."""
    now = now or timezone.now()
    count = 0
    for step_id in _due_step_ids(due_at__lte=now, escalated_at__isnull=True):
        with transaction.atomic():
            lock_integration_by_id(
                RequestStep.objects.filter(pk=step_id).values_list("request__integration_id", flat=True).first()
            )
            step = (
                RequestStep.objects.select_for_update(of=("self",))
                .filter(pk=step_id, status=StepStatus.ACTIVE, escalated_at__isnull=True)
                .select_related("request__integration__business_owner", "request__requester")
                .first()
            )
            if step is None:
                continue
            escalate_step(
                step,
                actor=Actor.system(on_behalf_of=step.request.accountable_owner),
                reason=f"The step's SLA of {step.sla_label} passed.",
            )
            count += 1
    return count
