"""Asking the people who consented to shadow apps, and what happens when they do not answer.

``digests_send`` runs after each import: every person with a newly found consent to an app
nobody registered gets one email (not one per app) listing the apps that wait for their answer —
Claim or Not needed — by a deadline. ``deadlines_apply`` runs daily: a consent nobody answered
for by its deadline gets the default action (``DISCOVERY_DEFAULT_ACTION``): a revocation request
for the app, or the finding escalated to IAM. Both are idempotent: a run repeated, or killed
half-way and run again, changes nothing twice and sends no email twice."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, audit_record_many
from governance.models import User
from governance.services import email_enqueue
from inventory.discovery import revoke
from inventory.discovery.choices import ConsentResponse, ConsentType, DefaultAction, FindingKind, FindingStatus
from inventory.discovery.models import DiscoveredConsent, DiscoveryImport, Finding, ImportStatus
from inventory.discovery.services.common import accountable_for, default_owner, finding_move, iam_admins
from inventory.discovery.services.revocations import nobody_keeps, remediation_create, remediation_queue

# The page where a person answers for their apps.
MINE_PATH = "/discovery/mine/"
# People asked per transaction (each gets one email), findings handled per transaction.
_PEOPLE_PER_BATCH = 200
_FINDINGS_PER_BATCH = 100
# An email lists this many apps; the page lists them all.
_APPS_PER_EMAIL = 30
# Findings whose people are asked: not registered, nobody decided yet (a revocation requested
# for some of its people still leaves the others to answer).
_ASKING = (FindingStatus.OPEN, FindingStatus.ESCALATED, FindingStatus.REVOKE_REQUESTED)


def _asking_shadow() -> Exists:
    return Exists(
        Finding.objects.filter(
            app=OuterRef("app_id"), kind=FindingKind.SHADOW, closed_at__isnull=True, status__in=_ASKING
        )
    )


def _new_consents(imp: DiscoveryImport) -> QuerySet[DiscoveredConsent]:
    """The import's consents of matched people (active: someone who left is not asked) to
    active shadow apps, not asked yet."""
    return DiscoveredConsent.objects.filter(
        _asking_shadow(),
        last_import=imp,
        present=True,
        person__is_active=True,
        consent_type=ConsentType.USER,
        response=ConsentResponse.NOT_ASKED,
    )


def _batches(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def digests_send(import_id: int) -> int:
    """One email per person the import found with a consent to a shadow app not asked about yet,
    listing every app that waits for their answer (key per import and person: run twice, sent
    once). The new consents become ``pending`` with ``asked_at`` and ``respond_by`` (now +
    ``DISCOVERY_RESPONSE_DAYS``); audited ``discovery.consents_asked`` per person. A person
    without an email address is not asked. Returns how many emails were queued."""
    imp = DiscoveryImport.objects.filter(pk=import_id, status=ImportStatus.SUCCEEDED).first()
    if imp is None:
        return 0
    person_ids = list(_new_consents(imp).order_by("person_id").values_list("person_id", flat=True).distinct())
    now = timezone.now()
    respond_by = now + timedelta(days=settings.DISCOVERY_RESPONSE_DAYS)
    actor = Actor.system(on_behalf_of=imp.started_by or default_owner())
    sent = 0
    for batch in _batches(person_ids, _PEOPLE_PER_BATCH):
        with transaction.atomic():
            sent += _digest_batch(actor, imp, batch, now, respond_by)
    return sent


def _digest_batch(actor: Actor, imp: DiscoveryImport, person_ids: Sequence[int], now: datetime, due: datetime) -> int:
    people = {person.pk: person for person in User.objects.filter(pk__in=person_ids)}
    # Locked: a person answering right now keeps their answer.
    new_ids = set(
        _new_consents(imp)
        .filter(person_id__in=person_ids)
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    waiting = (
        DiscoveredConsent.objects.filter(
            _asking_shadow(),
            person_id__in=person_ids,
            present=True,
            response__in=(ConsentResponse.NOT_ASKED, ConsentResponse.PENDING),
        )
        .select_related("app")
        .order_by("person_id", "app__name", "app_id")
    )
    by_person: dict[int, list[DiscoveredConsent]] = defaultdict(list)
    for consent in waiting:
        if consent.person_id is not None and (consent.pk in new_ids or consent.response == ConsentResponse.PENDING):
            by_person[consent.person_id].append(consent)
    asked: list[int] = []
    events: list[EventSpec] = []
    for person_id, consents in by_person.items():
        person = people[person_id]
        if not any(consent.pk in new_ids for consent in consents):
            continue  # answered meanwhile: nothing new to ask them
        rows = [_digest_row(consent, consent.respond_by if consent.pk not in new_ids else due) for consent in consents]
        if not _digest_email(imp, person, rows):
            continue
        fresh = [consent for consent in consents if consent.pk in new_ids]
        asked += [consent.pk for consent in fresh]
        events.append(
            EventSpec(
                action="discovery.consents_asked",
                target=imp,
                owner=person,
                after={
                    "person": person.username,
                    "apps": [consent.app.name for consent in fresh],
                    "app_keys": [consent.app.app_key for consent in fresh],
                    "respond_by": due,
                },
            )
        )
    DiscoveredConsent.objects.filter(pk__in=asked).update(
        response=ConsentResponse.PENDING, asked_at=now, respond_by=due
    )
    if events:
        audit_record_many(actor=actor, events=events)
    return len(events)


def _digest_row(consent: DiscoveredConsent, respond_by: datetime | None) -> dict[str, Any]:
    app = consent.app
    return {"app": app, "scopes": len(consent.scopes or app.scopes or []), "respond_by": respond_by}


def _digest_email(imp: DiscoveryImport, person: User, rows: list[dict[str, Any]]) -> bool:
    """Queue the person's digest; False when they have no address (then nobody was asked)."""
    total = len(rows)
    email = email_enqueue(
        key=f"discovery-digest:{imp.pk}:{person.pk}",
        recipient=person,
        subject=f"{total} app{'s' if total != 1 else ''} connected to your account: do you use "
        f"{'them' if total != 1 else 'it'} for work?",
        template="discovery_digest",
        context={
            "rows": rows[:_APPS_PER_EMAIL],
            "total": total,
            "more": max(0, total - _APPS_PER_EMAIL),
            "source_label": imp.get_source_display(),
            "respond_by": min((row["respond_by"] for row in rows if row["respond_by"]), default=None),
            "default_revokes": DefaultAction(settings.DISCOVERY_DEFAULT_ACTION) == DefaultAction.REVOKE,
            "link": MINE_PATH,
        },
    )
    return email is not None


# --- Deadlines ---------------------------------------------------------------------------------


def _due(now: datetime) -> QuerySet[DiscoveredConsent]:
    return DiscoveredConsent.objects.filter(response=ConsentResponse.PENDING, respond_by__lt=now)


def deadlines_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Apply the default action to every pending consent past its deadline whose shadow finding
    is still active: the consents become ``defaulted``; with ``DISCOVERY_DEFAULT_ACTION``
    "revoke" each app gets one revocation request naming those consents (the finding moves to
    ``revoke_requested``), with "escalate" the finding moves to ``escalated`` and the IAM admins
    are told by email. Idempotent. Returns the counts (consents, revocations, escalations)."""
    now = now or timezone.now()
    action = DefaultAction(settings.DISCOVERY_DEFAULT_ACTION)
    active = Finding.objects.filter(kind=FindingKind.SHADOW, closed_at__isnull=True, status__in=_ASKING)
    finding_ids = list(
        active.filter(Exists(_due(now).filter(app_id=OuterRef("app_id")))).order_by("pk").values_list("pk", flat=True)
    )
    counts = {"consents": 0, "revocations": 0, "escalations": 0}
    for batch in _batches(finding_ids, _FINDINGS_PER_BATCH):
        with transaction.atomic():
            for key, value in _deadline_batch(batch, now, action).items():
                counts[key] += value
    return counts


def _deadline_batch(finding_ids: Sequence[int], now: datetime, action: DefaultAction) -> dict[str, int]:
    # The findings first, then their consents: the order every discovery service locks them in.
    findings = list(
        Finding.objects.select_for_update(of=("self",))
        .select_related("app", "assigned_owner", "opened_by_import__started_by")
        .filter(pk__in=finding_ids, kind=FindingKind.SHADOW, closed_at__isnull=True, status__in=_ASKING)
        .order_by("pk")
    )
    due = list(_due(now).filter(app_id__in=[finding.app_id for finding in findings]).select_for_update().order_by("pk"))
    by_app: dict[int, list[DiscoveredConsent]] = defaultdict(list)
    for consent in due:
        by_app[consent.app_id].append(consent)
    DiscoveredConsent.objects.filter(pk__in=[consent.pk for consent in due]).update(response=ConsentResponse.DEFAULTED)
    counts = {"consents": len(due), "revocations": 0, "escalations": 0}
    events: list[EventSpec] = []
    escalated: list[Finding] = []
    for finding in findings:
        consents = by_app.get(finding.app_id or 0, [])
        if not consents:
            continue
        owner = accountable_for(finding)
        if action == DefaultAction.REVOKE:
            spec = _default_revoke(finding, consents, owner)
        else:
            spec = _default_escalate(finding, consents, owner)
        counts["revocations"] += spec.action == "discovery.revoke_requested"
        if spec.action == "discovery.finding_escalated":
            escalated.append(finding)
        events.append(spec)
    if events:
        audit_record_many(actor=Actor.system(on_behalf_of=None), events=events)
    counts["escalations"] = len(escalated)
    _escalation_emails(escalated)
    return counts


def _default_revoke(finding: Finding, consents: list[DiscoveredConsent], owner: User | None) -> EventSpec:
    """One revocation request for the app, naming the consents nobody answered for. As with a
    "Not needed", the finding moves to ``revoke_requested`` only once nobody keeps the app: the
    people still asked may answer, and their own deadlines apply (the caller has already marked
    ``consents`` defaulted)."""
    present = [consent for consent in consents if consent.present]
    calls = [call for consent in present for call in revoke.revoke_calls(finding, consent)]
    people = [consent.person_key for consent in consents]
    before = finding.status
    if before != FindingStatus.REVOKE_REQUESTED and finding.app_id is not None and nobody_keeps(finding.app_id):
        finding_move(finding, FindingStatus.REVOKE_REQUESTED)
    if not calls:
        return _defaulted_event(finding, people, owner, before)
    remediation, spec = remediation_create(
        finding,
        consent=present[0] if len(present) == 1 else None,
        calls=calls,
        reason="Nobody answered by the deadline: the default action is a revocation.",
        requested_by=owner,
        people=people,
        before=before,
        answer=ConsentResponse.DEFAULTED,
    )
    remediation_queue(remediation)
    return spec


def _default_escalate(finding: Finding, consents: list[DiscoveredConsent], owner: User | None) -> EventSpec:
    people = [consent.person_key for consent in consents]
    before = finding.status
    if before != FindingStatus.OPEN:
        return _defaulted_event(finding, people, owner, before)
    finding_move(finding, FindingStatus.ESCALATED)
    return EventSpec(
        action="discovery.finding_escalated",
        target=finding,
        owner=owner,
        before={"status": before},
        after={"status": finding.status, "people": people, "answer": ConsentResponse.DEFAULTED},
        reason="Nobody answered by the deadline: the finding goes to IAM.",
    )


def _defaulted_event(finding: Finding, people: list[str], owner: User | None, before: str) -> EventSpec:
    """The consents defaulted, with nothing more to do (already escalated, nothing to revoke)."""
    return EventSpec(
        action="discovery.consents_defaulted",
        target=finding,
        owner=owner,
        before={"status": before},
        after={"status": finding.status, "people": people},
        reason="Nobody answered by the deadline.",
    )


def _escalation_emails(findings: list[Finding]) -> None:
    """One email to each IAM admin listing the findings this batch escalated."""
    if not findings:
        return
    digest = hashlib.sha256(",".join(str(finding.pk) for finding in findings).encode()).hexdigest()[:16]
    total = len(findings)
    for admin in iam_admins():
        email_enqueue(
            key=f"discovery-escalated:{digest}:{admin.pk}",
            recipient=admin,
            subject=f"{total} shadow app{'s' if total != 1 else ''} escalated: nobody answered in time",
            template="discovery_escalated",
            context={"findings": findings, "total": total, "link": "/discovery/findings/?status=escalated"},
        )
