"""Revocations: a person's "Not needed", an IAM admin's revocation of an app (or of one person's
consent), and carrying one out at the provider.

A revocation is a ``Remediation`` naming the provider's revoke calls, audited as
``discovery.revoke_requested`` — the webhook event the ticketing system carries out. Where the
source's connector has a write token, the portal makes the calls itself after commit
(``remediation_execute``) and records how it went."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance import queue
from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import User
from inventory.discovery import revoke
from inventory.discovery.choices import ACTIVE_FINDING_STATUSES, ConsentResponse, FindingKind, FindingStatus
from inventory.discovery.models import DiscoveredConsent, Finding, Remediation, RemediationStatus
from inventory.discovery.pull import connector
from inventory.discovery.services.common import (
    accountable_for,
    admin_actor,
    app_of,
    finding_locked,
    finding_move,
    human_of,
)

log = logging.getLogger(__name__)

EXECUTE_TASK = "inventory.discovery.tasks.remediation_execute"
# A worker that claimed a revocation and died leaves it claimed; another may take it after this.
_CLAIM_STALE = timedelta(minutes=10)
_RESULT_MAX = 20_000
_UNDECIDED = (FindingStatus.OPEN, FindingStatus.ESCALATED)
# What an admin may still revoke: an undecided shadow or drift, one being revoked (again, after a
# failure), one whose scopes are in review.
_REVOCABLE = (FindingStatus.OPEN, FindingStatus.ESCALATED, FindingStatus.REVOKE_REQUESTED, FindingStatus.REVIEW_OPENED)


def remediation_create(
    finding: Finding,
    *,
    consent: DiscoveredConsent | None,
    calls: list[revoke.ProviderCall],
    reason: str,
    requested_by: User | None,
    people: Sequence[str],
    before: str,
    answer: str = "",
) -> tuple[Remediation, EventSpec]:
    """Record a revocation of ``finding``'s app (the locked finding already moved, ``before``
    its previous status) and return it with its ``discovery.revoke_requested`` event for the
    caller to write (alone or with others) in the same transaction."""
    remediation = Remediation.objects.create(
        finding=finding, consent=consent, provider_calls=calls, reason=reason, requested_by=requested_by
    )
    after = {
        "remediation": remediation.pk,
        "source": finding.source,
        "tenant": finding.tenant,
        "app_key": finding.app_key,
        "provider_calls": calls,
        "people": list(people),
        "status": finding.status,
    }
    if answer:
        after["answer"] = answer
    spec = EventSpec(
        action="discovery.revoke_requested",
        target=finding,
        owner=requested_by,
        before={"status": before},
        after=after,
        reason=reason,
    )
    return remediation, spec


def executable(remediation: Remediation) -> bool:
    """Whether the portal makes this revocation's calls itself: the source's connector has a
    write token and every call is one an API takes (GitHub's are done by hand)."""
    calls = remediation.provider_calls or []
    return bool(
        remediation.status == RemediationStatus.REQUESTED
        and calls
        and connector(remediation.finding.source).write_token
        and all(str(call.get("method", "")).upper() != "MANUAL" for call in calls if isinstance(call, dict))
    )


def remediation_queue(remediation: Remediation) -> None:
    """After commit, hand an executable revocation to the worker."""
    if executable(remediation):
        pk = remediation.pk
        transaction.on_commit(lambda: queue.enqueue(EXECUTE_TASK, pk, name=f"discovery-revoke-{pk}"))


def _active_shadow_locked(app_id: int) -> Finding:
    finding = (
        Finding.objects.select_for_update()
        .filter(app_id=app_id, kind=FindingKind.SHADOW, closed_at__isnull=True, status__in=ACTIVE_FINDING_STATUSES)
        .first()
    )
    if finding is None:
        raise Conflict("This app is no longer waiting for an answer.")
    return finding


def nobody_keeps(app_id: int) -> bool:
    """True when every present consent to the app has been answered "not needed" or defaulted:
    nobody (and no admin consent) keeps it."""
    kept = DiscoveredConsent.objects.filter(app_id=app_id, present=True).exclude(
        response__in=(ConsentResponse.NOT_NEEDED, ConsentResponse.DEFAULTED)
    )
    return not kept.exists()


def consent_not_needed(*, actor: Actor | User, consent: DiscoveredConsent, comment: str = "") -> Remediation:
    """The person's "Not needed": their consent is answered, and its revocation requested
    (``discovery.revoke_requested``, with the provider calls for their grant). When nobody keeps
    the app any more, the finding moves to ``revoke_requested``. Rules: only the person who
    consented answers, once; the app is an active shadow app."""
    resolved = Actor.coerce(actor)
    if consent.person_id is None or consent.person_id != resolved.user.pk:
        raise PermissionDenied("Only the person who consented answers for their consent.")
    comment = (comment or "").strip()
    with transaction.atomic():
        # The finding first, then the consent: the order every discovery service locks them in.
        finding = _active_shadow_locked(consent.app_id)
        locked = DiscoveredConsent.objects.select_for_update().get(pk=consent.pk)
        if locked.response not in (ConsentResponse.NOT_ASKED, ConsentResponse.PENDING):
            raise Conflict(f"You already answered: {ConsentResponse(locked.response).label.lower()}.")
        if not locked.present:
            raise Conflict("The provider no longer shows this consent.")
        locked.response = ConsentResponse.NOT_NEEDED
        locked.responded_at = timezone.now()
        locked.save(update_fields=["response", "responded_at"])
        before = finding.status
        if before in _UNDECIDED and nobody_keeps(locked.app_id):
            finding_move(finding, FindingStatus.REVOKE_REQUESTED)
        remediation, spec = remediation_create(
            finding,
            consent=locked,
            calls=revoke.revoke_calls(finding, locked),
            reason=comment or f"{resolved.user.label} does not need it.",
            requested_by=resolved.user,
            people=[locked.person_key],
            before=before,
            answer=ConsentResponse.NOT_NEEDED,
        )
        audit_record_many(actor=resolved, events=[spec])
        remediation_queue(remediation)
    consent.refresh_from_db()
    return remediation


def finding_revoke(
    *, actor: Actor | User, finding: Finding, reason: str = "", consent: DiscoveredConsent | None = None
) -> Remediation:
    """Ask for a revocation at the provider: of every present consent to the finding's app (the
    finding moves to ``revoke_requested``) or of one person's ``consent``. The remediation names
    the provider's calls (``revoke.revoke_calls``); ``discovery.revoke_requested`` carries them
    to the ticketing system; with a write token the portal makes them itself after commit.
    Rules: IAM admins only; a shadow or drift finding not yet decided otherwise; something left
    to revoke."""
    resolved = admin_actor(actor)
    owner = human_of(resolved)
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = finding_locked(
            finding, kinds=(FindingKind.SHADOW, FindingKind.DRIFT), statuses=_REVOCABLE, what="revoked"
        )
        app = app_of(locked)
        target: DiscoveredConsent | None = None
        if consent is not None:
            target = DiscoveredConsent.objects.filter(pk=consent.pk, app=app).first()
            if target is None:
                raise ValidationFailed.on("consent", "This consent is not one of this app's.")
            if not target.present:
                raise Unprocessable.on("consent", "The provider no longer shows this consent.")
            people = [target.person_key]
        else:
            people = list(app.consents.filter(present=True).order_by("person_key").values_list("person_key", flat=True))
        calls = revoke.revoke_calls(locked, target)
        if not calls:
            raise Conflict("The provider shows nothing left to revoke for this app.")
        before = locked.status
        if target is None:
            finding_move(locked, FindingStatus.REVOKE_REQUESTED)
        remediation, spec = remediation_create(
            locked,
            consent=target,
            calls=calls,
            reason=reason or f"Revocation asked by {owner.label}.",
            requested_by=owner,
            people=people,
            before=before,
        )
        audit_record_many(actor=resolved, events=[spec])
        remediation_queue(remediation)
    finding.refresh_from_db()
    return remediation


def remediation_execute(remediation_id: int) -> Remediation:
    """Carry out a requested revocation at the provider (``revoke.revoke_at_provider``) and
    record the outcome: ``done`` (``discovery.revoked``; the finding is ``revoked`` once every
    revocation asked for it is done) or ``failed`` (``discovery.revoke_failed``). Anything else
    (no write token, calls made by hand, already carried out, claimed by another worker) is
    returned unchanged: safe to run twice. The provider is called outside any transaction; the
    row is claimed first with a conditional UPDATE so that two workers never both call."""
    remediation = Remediation.objects.select_related("finding").get(pk=remediation_id)
    if not executable(remediation):
        return remediation
    now = timezone.now()
    claimed = (
        Remediation.objects.filter(pk=remediation.pk, status=RemediationStatus.REQUESTED)
        .filter(Q(executed_at__isnull=True) | Q(executed_at__lt=now - _CLAIM_STALE))
        .update(executed_at=now)
    )
    if not claimed:
        remediation.refresh_from_db()
        return remediation
    remediation.executed_at = now
    try:
        done, result = revoke.revoke_at_provider(remediation)
    except Exception as exc:  # any failure of the call is recorded, never left claimed
        log.exception("Revocation %s failed", remediation.pk)
        done, result = False, f"The provider call failed: {type(exc).__name__}."
    return _outcome_record(remediation.pk, claimed_at=now, done=done, result=result)


def _outcome_record(remediation_id: int, *, claimed_at: datetime, done: bool, result: str) -> Remediation:
    with transaction.atomic():
        locked = Remediation.objects.select_for_update().select_related("finding").get(pk=remediation_id)
        if locked.status != RemediationStatus.REQUESTED or locked.executed_at != claimed_at:
            return locked  # another worker took it over after this one was presumed dead
        finding = Finding.objects.select_for_update().get(pk=locked.finding_id)
        owner = locked.requested_by or accountable_for(finding)
        locked.status = RemediationStatus.DONE if done else RemediationStatus.FAILED
        locked.result = result[:_RESULT_MAX]
        locked.executed_at = timezone.now()
        locked.save(update_fields=["status", "result", "executed_at"])
        before = finding.status
        if done and before == FindingStatus.REVOKE_REQUESTED and _all_done(finding):
            finding_move(finding, FindingStatus.REVOKED)
        audit_record(
            actor=Actor.system(on_behalf_of=owner),
            action="discovery.revoked" if done else "discovery.revoke_failed",
            target=finding,
            owner=owner,
            before={"status": before, "remediation_status": RemediationStatus.REQUESTED},
            after={
                "remediation": locked.pk,
                "remediation_status": locked.status,
                "status": finding.status,
                "source": finding.source,
                "tenant": finding.tenant,
                "app_key": finding.app_key,
                "result": locked.result.splitlines()[0] if locked.result else "",
            },
        )
    return locked


def _all_done(finding: Finding) -> bool:
    """Whether every revocation asked for ``finding`` is done, but for those a later one covers
    (each of its calls made again by the later one): a revocation that failed and was asked for
    again must not keep the finding ``revoke_requested`` for ever."""
    later: set[tuple[str, str]] = set()  # the calls of the revocations after the one looked at
    for status, calls in finding.remediations.order_by("-pk").values_list("status", "provider_calls"):
        keys = {_call_key(call) for call in calls or [] if isinstance(call, dict)}
        if status != RemediationStatus.DONE and (not keys or not keys <= later):
            return False
        later |= keys
    return True


def _call_key(call: revoke.ProviderCall) -> tuple[str, str]:
    return str(call.get("method", "")).upper(), str(call.get("url", ""))
