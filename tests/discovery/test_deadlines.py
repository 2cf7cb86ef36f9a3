"""What nobody answered for by the deadline gets the default action: a revocation request for
the app naming those consents ("revoke"), or the finding escalated to IAM with an email to the
IAM admins ("escalate"). Answers given in time are kept; a second run changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from governance import queue, scheduling
from governance.models import AuditEvent, OutboundEmail, User
from governance.roles import Role
from inventory.discovery import services, tasks
from inventory.discovery.choices import ConsentResponse, FindingStatus
from inventory.discovery.models import DiscoveredConsent, Finding, Remediation
from tests.discovery.factories import make_app, make_consent, make_finding, make_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def asked(owner: User, outsider: User, iam_admin: User) -> Finding:
    """A shadow app owner and outsider consented to; both were asked (the digest ran)."""
    imp = make_import(started_by=iam_admin)
    app = make_app(imp=imp)
    make_consent(app, person=owner)
    make_consent(app, person=outsider)
    finding = make_finding(app)
    services.digests_send(imp.pk)
    assert DiscoveredConsent.objects.filter(response=ConsentResponse.PENDING).count() == 2
    return finding


def _after_deadline() -> Any:
    return time_machine.travel(timezone.now() + timedelta(days=15), tick=False)


def test_nothing_happens_before_the_deadline(asked: Finding) -> None:
    assert services.deadlines_apply() == {"consents": 0, "revocations": 0, "escalations": 0}
    assert DiscoveredConsent.objects.filter(response=ConsentResponse.PENDING).count() == 2


def test_by_default_what_nobody_answered_for_is_revoked_once(
    asked: Finding, owner: User, outsider: User, iam_admin: User
) -> None:
    with _after_deadline():
        assert tasks.deadlines_apply() == {"consents": 2, "revocations": 1, "escalations": 0}
        assert tasks.deadlines_apply() == {"consents": 0, "revocations": 0, "escalations": 0}
    assert set(DiscoveredConsent.objects.values_list("response", flat=True)) == {ConsentResponse.DEFAULTED}
    [remediation] = Remediation.objects.all()
    assert remediation.finding == asked and remediation.consent is None and remediation.requested_by == iam_admin
    assert sorted(call["ids"]["userKey"] for call in remediation.provider_calls) == sorted(
        [owner.email, outsider.email]
    )
    asked.refresh_from_db()
    assert asked.status == FindingStatus.REVOKE_REQUESTED
    [event] = AuditEvent.objects.filter(action="discovery.revoke_requested", target_id=str(asked.pk))
    assert isinstance(event.after, dict)
    assert sorted(event.after["people"]) == sorted([owner.email, outsider.email])
    assert event.after["answer"] == "defaulted" and event.owner == iam_admin and event.actor_kind == "system"


def test_an_answer_given_in_time_is_kept(asked: Finding, owner: User, outsider: User) -> None:
    services.consent_not_needed(actor=owner, consent=DiscoveredConsent.objects.get(person=owner))
    with _after_deadline():
        assert services.deadlines_apply()["consents"] == 1
    assert DiscoveredConsent.objects.get(person=owner).response == ConsentResponse.NOT_NEEDED
    assert DiscoveredConsent.objects.get(person=outsider).response == ConsentResponse.DEFAULTED
    owner_revocation, default_revocation = Remediation.objects.order_by("pk")
    assert [call["ids"]["userKey"] for call in default_revocation.provider_calls] == [outsider.email]
    assert default_revocation.consent == DiscoveredConsent.objects.get(person=outsider)
    assert owner_revocation.consent == DiscoveredConsent.objects.get(person=owner)


def test_a_default_for_some_leaves_the_app_waiting_for_those_still_asked(
    asked: Finding, owner: User, outsider: User
) -> None:
    # The owner was asked later (a later import): their deadline is not passed yet.
    later = timezone.now() + timedelta(days=30)
    DiscoveredConsent.objects.filter(person=owner).update(respond_by=later)
    with _after_deadline():
        assert services.deadlines_apply()["consents"] == 1
    [remediation] = Remediation.objects.all()
    assert [call["ids"]["userKey"] for call in remediation.provider_calls] == [outsider.email]
    # As with a "Not needed": the app moves to revoke_requested only once nobody keeps it, so
    # the owner may still answer, and their own deadline still applies.
    asked.refresh_from_db()
    assert asked.status == FindingStatus.OPEN
    assert DiscoveredConsent.objects.get(person=owner).response == ConsentResponse.PENDING
    with time_machine.travel(later + timedelta(days=1), tick=False):
        assert services.deadlines_apply()["consents"] == 1
    asked.refresh_from_db()
    assert asked.status == FindingStatus.REVOKE_REQUESTED


def test_a_claimed_app_has_no_deadline_left(asked: Finding, owner: User, outsider: User) -> None:
    Finding.objects.filter(pk=asked.pk).update(status=FindingStatus.CLAIMED, closed_at=timezone.now())
    with _after_deadline():
        assert services.deadlines_apply()["consents"] == 0
    assert DiscoveredConsent.objects.get(person=outsider).response == ConsentResponse.PENDING
    assert not Remediation.objects.exists()


def test_with_escalation_as_the_default_the_finding_goes_to_the_iam_admins_once(
    asked: Finding, iam_admin: User, make_user: Any
) -> None:
    second_admin = make_user("admin2", Role.IAM_ADMIN)
    with override_settings(DISCOVERY_DEFAULT_ACTION="escalate"), _after_deadline():
        assert services.deadlines_apply() == {"consents": 2, "revocations": 0, "escalations": 1}
        assert services.deadlines_apply() == {"consents": 0, "revocations": 0, "escalations": 0}
    asked.refresh_from_db()
    assert asked.status == FindingStatus.ESCALATED and asked.closed_at is None
    assert not Remediation.objects.exists()
    emails = OutboundEmail.objects.filter(key__startswith="discovery-escalated:")
    assert sorted(email.recipient.username for email in emails if email.recipient) == sorted(
        [iam_admin.username, second_admin.username]
    )
    body = emails.first().body_text  # type: ignore[union-attr]
    assert "MeetingNotes AI" in body and f"/discovery/findings/{asked.pk}/" in body
    [event] = AuditEvent.objects.filter(action="discovery.finding_escalated", target_id=str(asked.pk))
    assert event.before == {"status": "open"} and event.owner == iam_admin


def test_later_defaults_on_an_escalated_finding_are_recorded_without_a_second_email(
    asked: Finding, iam_admin: User, make_user: Any
) -> None:
    late = make_user("late")
    make_consent(asked.app, person=late)  # type: ignore[arg-type]
    DiscoveredConsent.objects.filter(person=late).update(
        response=ConsentResponse.PENDING, respond_by=timezone.now() + timedelta(days=20)
    )
    with override_settings(DISCOVERY_DEFAULT_ACTION="escalate"):
        with _after_deadline():
            services.deadlines_apply()
        with time_machine.travel(timezone.now() + timedelta(days=21), tick=False):
            assert services.deadlines_apply() == {"consents": 1, "revocations": 0, "escalations": 0}
    assert OutboundEmail.objects.filter(key__startswith="discovery-escalated:").count() == 1
    assert AuditEvent.objects.filter(action="discovery.consents_defaulted", target_id=str(asked.pk)).count() == 1


def test_a_default_revocation_is_carried_out_by_the_portal_when_it_has_a_write_token(
    asked: Finding, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from django.conf import settings

    seen: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: seen.append((task, args)))
    connectors = {name: dict(config) for name, config in settings.DISCOVERY_CONNECTORS.items()}
    connectors["google"]["write_token"] = "write-token"
    with override_settings(DISCOVERY_CONNECTORS=connectors), _after_deadline():
        with django_capture_on_commit_callbacks(execute=True):
            services.deadlines_apply()
    [remediation] = Remediation.objects.all()
    assert seen == [("inventory.discovery.tasks.remediation_execute", (remediation.pk,))]


def test_the_deadlines_run_daily_as_a_schedule() -> None:
    [task] = [task for task in scheduling.registered() if task.name == "discovery-deadlines"]
    assert task.func == "inventory.discovery.tasks.deadlines_apply"
    assert len(task.cron.split()) == 5 and task.cron.split()[2:] == ["*", "*", "*"]
    assert scheduling.is_allowed_task(task.func)
