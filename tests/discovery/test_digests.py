"""The people who consented to shadow apps are asked once per import, one email each (not one per
app), as a mail server receives it: the digest lists every app that waits for their answer and
the page to answer on; a second run sends nothing; the consents wait for an answer until a
deadline."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from governance import queue
from governance import tasks as governance_tasks
from governance.models import AuditEvent, OutboundEmail, User
from inventory.discovery import importer, services, tasks
from inventory.discovery.choices import ConsentResponse, FindingStatus, ImportStatus
from inventory.discovery.models import DiscoveredConsent, DiscoveryImport, Finding
from inventory.models import Integration
from tests.discovery.factories import make_app, make_consent, make_finding, make_import
from tests.mail_support import Mailbox

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def _html(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def _shadow(imp: DiscoveryImport, name: str, *people: User, publisher: str = "Notes Corp") -> None:
    app = make_app(name=name, publisher=publisher, imp=imp)
    for person in people:
        make_consent(app, person=person)
    make_finding(app)


@pytest.fixture
def imported(owner: User, outsider: User, iam_admin: User) -> DiscoveryImport:
    """One import: owner consented to two shadow apps, outsider to one of them; besides, a
    registered app owner uses and a shadow app of someone the portal does not know."""
    imp = make_import(started_by=iam_admin)
    _shadow(imp, "MeetingNotes AI", owner, outsider)
    _shadow(imp, "R&D Summariser", owner, publisher="Smith & Sons")
    integration = Integration.objects.create(name="Approved", kind="agent", purpose="p", business_owner=owner)
    registered = make_app(name="Approved app", imp=imp, integration=integration)
    make_consent(registered, person=owner)
    stranger = make_app(name="Stranger's app", imp=imp)
    make_consent(stranger, person_key="nobody@elsewhere.example")
    make_finding(stranger)
    return imp


def test_each_person_gets_one_digest_per_import_listing_their_shadow_apps(
    smtp: tuple[Mailbox, int], imported: DiscoveryImport, owner: User, outsider: User
) -> None:
    mailbox, _port = smtp
    assert tasks.digests_send(imported.pk) == 2
    assert tasks.digests_send(imported.pk) == 0  # the task again: nothing new to ask
    governance_tasks.outbox_flush()
    assert sorted(mailbox.recipients()) == sorted([owner.email, outsider.email])

    [mine] = mailbox.to(owner.email)
    assert mine["Subject"] == "2 apps connected to your account: do you use them for work?"
    text, html = _text(mine), _html(mine)
    assert "MeetingNotes AI by Notes Corp" in text and "R&D Summariser by Smith & Sons" in text
    assert "Approved app" not in text and "Stranger" not in text
    assert "http://127.0.0.1:8000/discovery/mine/" in text and "Claim" in text and "Not needed" in text
    assert "R&amp;D Summariser" in html and 'href="http://127.0.0.1:8000/discovery/mine/"' in html
    [theirs] = mailbox.to(outsider.email)
    assert "MeetingNotes AI" in _text(theirs) and "Summariser" not in _text(theirs)


def test_asked_consents_wait_for_an_answer_until_the_deadline(imported: DiscoveryImport, owner: User) -> None:
    before = timezone.now()
    services.digests_send(imported.pk)
    asked = DiscoveredConsent.objects.filter(response=ConsentResponse.PENDING)
    assert asked.count() == 3  # owner's two, outsider's one
    for consent in asked:
        assert consent.asked_at is not None and consent.asked_at >= before
        assert consent.respond_by == consent.asked_at + timedelta(days=14)
    # Not asked: the registered app's consent and the unknown person's.
    assert DiscoveredConsent.objects.filter(response=ConsentResponse.NOT_ASKED).count() == 2
    events = AuditEvent.objects.filter(action="discovery.consents_asked", target_id=str(imported.pk))
    assert sorted(event.owner_username for event in events) == ["outsider", "owner"]
    mine = events.get(owner=owner)
    assert isinstance(mine.after, dict)
    assert sorted(mine.after["apps"]) == ["MeetingNotes AI", "R&D Summariser"]


def test_a_later_import_asks_only_about_what_is_new_and_reminds_of_what_still_waits(
    smtp: tuple[Mailbox, int], imported: DiscoveryImport, owner: User, outsider: User, iam_admin: User
) -> None:
    mailbox, _port = smtp
    services.digests_send(imported.pk)
    first_deadline = DiscoveredConsent.objects.get(person=owner, app__name="MeetingNotes AI").respond_by
    later = make_import(started_by=iam_admin)
    _shadow(later, "Slide Wizard", owner)
    # The later import saw the earlier apps again.
    DiscoveredConsent.objects.filter(response=ConsentResponse.PENDING).update(last_import=later)
    assert services.digests_send(later.pk) == 1
    governance_tasks.outbox_flush()
    second = mailbox.to(owner.email)[-1]
    assert second["Subject"].startswith("3 apps")
    assert "Slide Wizard" in _text(second) and "MeetingNotes AI" in _text(second)
    assert len(mailbox.to(outsider.email)) == 1  # nothing new for them: no second email
    # The earlier question keeps its deadline.
    assert DiscoveredConsent.objects.get(person=owner, app__name="MeetingNotes AI").respond_by == first_deadline


def test_a_person_without_an_email_address_is_not_asked(imported: DiscoveryImport, outsider: User) -> None:
    User.objects.filter(pk=outsider.pk).update(email="")
    assert services.digests_send(imported.pk) == 1
    assert DiscoveredConsent.objects.get(person=outsider).response == ConsentResponse.NOT_ASKED


def test_someone_who_left_is_not_asked(imported: DiscoveryImport, outsider: User) -> None:
    User.objects.filter(pk=outsider.pk).update(is_active=False)
    assert services.digests_send(imported.pk) == 1
    assert DiscoveredConsent.objects.get(person=outsider).response == ConsentResponse.NOT_ASKED
    assert not OutboundEmail.objects.filter(recipient=outsider).exists()


def test_an_app_already_dismissed_is_not_asked_about(imported: DiscoveryImport, owner: User) -> None:
    Finding.objects.filter(title="MeetingNotes AI").update(status=FindingStatus.DISMISSED, closed_at=timezone.now())
    assert services.digests_send(imported.pk) == 1  # owner, about the other app; outsider has nothing left
    [email] = OutboundEmail.objects.all()
    assert email.recipient == owner and "MeetingNotes AI" not in email.body_text


def test_a_failed_import_asks_nobody(owner: User, iam_admin: User) -> None:
    imp = make_import(started_by=iam_admin, status=ImportStatus.FAILED)
    _shadow(imp, "MeetingNotes AI", owner)
    assert services.digests_send(imp.pk) == 0
    assert not OutboundEmail.objects.exists()


def test_with_escalation_as_the_default_the_digest_says_so(imported: DiscoveryImport, owner: User) -> None:
    with override_settings(DISCOVERY_DEFAULT_ACTION="escalate"):
        services.digests_send(imported.pk)
    email = OutboundEmail.objects.get(recipient=owner)
    assert "Without an answer by the date shown, the IAM team follows it up with you." in email.body_text
    assert "Without an answer by the date shown, the app's access" not in email.body_text


def test_an_import_queues_the_digests_and_the_people_it_matched_are_asked(
    smtp: tuple[Mailbox, int],
    iam_admin: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The whole way from a Google export: the importer matches Ada by her email, opens the shadow
    findings and queues the digest task; the task asks her once about every app she connected."""
    mailbox, _port = smtp
    ada = User.objects.create_user(username="ada", email="ada.lovelace@example.com", password="pw")
    queued: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: queued.append((task, args)))
    with django_capture_on_commit_callbacks(execute=True):
        imp = importer.import_path(
            actor=iam_admin, source="google", tenant="example.com", path=DATA / "google_tokens.jsonl", method="upload"
        )
    assert ("inventory.discovery.tasks.digests_send", (imp.pk,)) in queued
    tasks.digests_send(imp.pk)
    governance_tasks.outbox_flush()
    [email] = mailbox.to(ada.email)
    text = _text(email)
    assert "MeetingNotes AI" in text and "Slides Copilot" in text
    assert set(DiscoveredConsent.objects.filter(person=ada).values_list("response", flat=True)) == {
        ConsentResponse.PENDING
    }
