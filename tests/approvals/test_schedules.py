"""Scheduled work: grants past expiry become inactive, owners are warned 14 and 3 days before
(once each), reviewers are reminded at half the SLA and the step escalates when it passes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q import conf as q_conf
from django_q import scheduler as q_scheduler
from django_q.brokers import get_broker
from django_q.models import Schedule

from approvals import services, tasks
from approvals.models import StepStatus
from governance.models import AuditEvent, OutboundEmail
from governance.scheduling import schedules_sync
from inventory.models import Grant, GrantStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted(make_integration, submit, reviewer):  # noqa: ANN001, ANN201
    req = submit(make_integration(tier="low"))
    services.request_decide(
        actor=reviewer, request=req, decision="approve", expires_at=timezone.now() + timedelta(days=20)
    )
    return Grant.objects.get(integration=req.integration)


def test_expired_grant_turns_inactive_by_the_scheduled_task(granted, monkeypatch):
    schedules_sync()
    schedule = Schedule.objects.get(name="approvals-grants-expire")
    assert schedule.func == "approvals.tasks.grants_expire"
    with time_machine.travel(granted.expires_at + timedelta(minutes=1)):
        # One scheduler pass in this process, running the task synchronously: a cluster would run
        # it in another process at a moment the test cannot know.
        monkeypatch.setattr(q_conf.Conf, "SYNC", True)
        monkeypatch.setattr(q_scheduler, "close_old_django_connections", lambda: None)
        Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - timedelta(seconds=1))
        q_scheduler.scheduler(broker=get_broker())
    granted.refresh_from_db()
    assert granted.status == GrantStatus.EXPIRED
    assert AuditEvent.objects.filter(action="grant.expired", target_id=str(granted.pk)).exists()


def test_grant_not_yet_expired_stays_active(granted):
    assert tasks.grants_expire() == 0
    granted.refresh_from_db()
    assert granted.status == GrantStatus.ACTIVE


def test_owner_is_warned_14_and_3_days_before_expiry_once_each_with_a_renewal_link(granted, owner):
    expires = granted.expires_at
    with time_machine.travel(expires - timedelta(days=13)):
        tasks.grants_warn()
        tasks.grants_warn()
    with time_machine.travel(expires - timedelta(days=2)):
        tasks.grants_warn()
        tasks.grants_warn()
    mails = OutboundEmail.objects.filter(recipient=owner, key__startswith="grant-expiry-")
    assert sorted(m.key.split("-")[2] for m in mails) == ["14d", "3d"]
    link = f"/approvals/renew/{granted.integration_id}/"
    assert all(link in m.body_text and link in m.body_html for m in mails)


def test_renewal_link_opens_a_renewal_request_for_the_held_scopes(granted, owner, web_as):
    client = web_as(owner)
    assert client.get(f"/approvals/renew/{granted.integration_id}/").status_code == 200
    response = client.post(f"/approvals/renew/{granted.integration_id}/", {"justification": "still used"})
    assert response.status_code == 302
    req = granted.integration.access_requests.get(type="renewal")
    assert list(req.requested_scopes.all()) == [granted.scope]


def test_renewal_link_is_refused_to_a_reviewer_who_does_not_own_it(granted, reviewer, web_as):
    assert web_as(reviewer).post(f"/approvals/renew/{granted.integration_id}/").status_code == 403


def test_renewal_link_is_404_for_an_outsider(granted, outsider, web_as):
    assert web_as(outsider).get(f"/approvals/renew/{granted.integration_id}/").status_code == 404


def test_reviewers_are_reminded_at_half_the_sla_once(make_integration, submit, reviewer):
    req = submit(make_integration(tier="low"))  # SLA 72 h
    step = req.steps.get(status=StepStatus.ACTIVE)
    with time_machine.travel(step.activated_at + timedelta(hours=35)):
        assert tasks.sla_sweep() == {"reminded": 0, "escalated": 0}
    with time_machine.travel(step.activated_at + timedelta(hours=37)):
        assert tasks.sla_sweep()["reminded"] == 1
        assert tasks.sla_sweep()["reminded"] == 0
    assert OutboundEmail.objects.filter(recipient=reviewer, key__startswith="approval-reminder-").count() == 1


def test_sla_breach_escalates_to_the_escalation_target_and_is_audited(make_integration, submit, reviewer, iam_admin):
    req = submit(make_integration(tier="low"))
    step = req.steps.get(status=StepStatus.ACTIVE)
    with time_machine.travel(step.due_at + timedelta(minutes=5)):
        assert tasks.sla_sweep()["escalated"] == 1
        assert tasks.sla_sweep()["escalated"] == 0
    step.refresh_from_db()
    assert step.escalated_at is not None
    assert set(step.reviewers.values_list("username", flat=True)) == {"reviewer", "admin"}
    event = AuditEvent.objects.get(action="access_request.escalated", target_id=str(req.pk))
    assert event.actor_kind == "system" and event.owner_username == "owner"
    assert OutboundEmail.objects.filter(recipient=iam_admin, key__startswith="approval-escalated-").count() == 1
    services.request_decide(actor=iam_admin, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == "approved"


def test_schedules_are_registered():
    schedules_sync()
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {"approvals-grants-expire", "approvals-grants-warn", "approvals-sla-sweep"} <= names
