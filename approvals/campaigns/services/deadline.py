"""A running campaign's calendar, driven by the periodic sweep: reminders (once per reminder
point), the escalation of reviewers who have not decided, and at the deadline the default action
on every undecided item, in chunks, audited with the system as actor on behalf of the campaign's
owner; then the close. A draft that was never launched can be cancelled."""

from __future__ import annotations

import contextvars
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from approvals.campaigns import permissions, selectors
from approvals.campaigns.models import (
    UNDECIDED,
    Campaign,
    CampaignStatus,
    DefaultAction,
    ItemDecision,
    ItemStatus,
    ReviewItem,
)
from approvals.campaigns.services.common import campaign_transition, check_transition, system_actor
from approvals.campaigns.services.decisions import covered_grants, end_revoked_grants
from approvals.campaigns.services.notifications import campaign_links, email_reviewers, recipients_with_items
from governance.actors import Actor
from governance.audit import EventSpec, audit_append, audit_prepare, audit_record, audit_record_many
from governance.exceptions import Conflict, IllegalTransition, NotAllowed
from governance.models import User
from governance.services import email_enqueue
from inventory.services.grants import pk_in

# Items handled per transaction at the deadline; their grants are ended in slices of as many
# (one UPDATE and one history INSERT … SELECT per slice; one audit batch per chunk). Each chunk costs the
# same number of statements whatever its size, and one commit: larger chunks mean fewer of
# both, while a chunk's rows and events in memory stay under about 30 MB.
DEADLINE_CHUNK = 5000

# --- Reminders and escalation -------------------------------------------------------------------


def campaign_send_reminders(*, campaign: Campaign, now: datetime | None = None) -> int:
    """At each reminder point (days before the deadline) email the reviewers who still have
    undecided items — nobody else. A point is reminded once (unique keys); when the sweep
    missed a point it sends only the latest one passed."""
    now = now or timezone.now()
    if campaign.status != CampaignStatus.ACTIVE or campaign.deadline is None or now >= campaign.deadline:
        return 0
    passed = [days for days in campaign.reminder_days if campaign.deadline - timedelta(days=days) <= now]
    if not passed:
        return 0
    point = min(passed)
    recipients = recipients_with_items(campaign, undecided_only=True)
    with transaction.atomic():
        return email_reviewers(
            campaign,
            recipients,
            key_part=f"reminder-{point}d",
            template="campaign_reminder",
            subject="Reminder: {total} item(s) still to review in {name}",
            extra={"days_left": point},
        )


def _escalation_target(campaign: Campaign, reviewer: User | None) -> tuple[list[User], str]:
    """Who takes over from ``reviewer``: their manager, else the definition's fallback user or
    group, else the campaign's owner; and which of these it is."""
    definition = campaign.definition
    if reviewer is not None and reviewer.manager_id and reviewer.manager and reviewer.manager.is_active:
        return [reviewer.manager], "manager"
    if definition.fallback_user_id and definition.fallback_user and definition.fallback_user.is_active:
        return [definition.fallback_user], "fallback user"
    if definition.fallback_group_id:
        return list(User.objects.filter(groups=definition.fallback_group_id, is_active=True)), "fallback group"
    return [campaign.owner], "campaign owner"


def _escalation_due(campaign: Campaign, now: datetime) -> bool:
    """Between the escalation point and the deadline of a running campaign."""
    return not (
        campaign.status != CampaignStatus.ACTIVE
        or campaign.deadline is None
        or campaign.escalate_days_before is None
        or now < campaign.deadline - timedelta(days=campaign.escalate_days_before)
        or now >= campaign.deadline
    )


def _escalate_reviewer(campaign: Campaign, reviewer: User, now: datetime) -> bool:
    """Mark ``reviewer``'s open items escalated, tell whoever takes over, audit it; False when
    they had nothing left to escalate."""
    with transaction.atomic():
        marked = ReviewItem.objects.filter(
            campaign=campaign, reviewer=reviewer, status=ItemStatus.OPEN, escalated_at__isnull=True
        ).update(escalated_at=now)
        if not marked:
            return False
        targets, kind = _escalation_target(campaign, reviewer)
        for target in targets:
            email_enqueue(
                key=f"campaign-{campaign.pk}-escalation-{reviewer.pk}-{target.pk}",
                recipient=target,
                subject=f"Escalation: {reviewer.label} has {marked} undecided review item(s) in {campaign.name}",
                template="campaign_escalation",
                context={"campaign": campaign, "reviewer": reviewer, "count": marked, **campaign_links(campaign)},
            )
        audit_record(
            actor=system_actor(campaign),
            action="campaign.reviewer_escalated",
            target=campaign,
            owner=campaign.owner,
            after={
                "reviewer": reviewer.username,
                "open_items": marked,
                "escalated_to": [target.username for target in targets],
                "target_kind": kind,
            },
        )
    return True


def campaign_escalate_reviewers(*, campaign: Campaign, now: datetime | None = None) -> int:
    """At the escalation point, for each reviewer who still has open items: tell their manager
    (or the fallback) once, mark the items escalated and audit it. Returns reviewers escalated."""
    now = now or timezone.now()
    if not _escalation_due(campaign, now):
        return 0
    reviewer_ids = (
        ReviewItem.objects.filter(
            campaign=campaign, status=ItemStatus.OPEN, escalated_at__isnull=True, reviewer__isnull=False
        )
        .order_by()
        .values_list("reviewer_id", flat=True)
        .distinct()
    )
    escalated = 0
    for reviewer in User.objects.filter(pk__in=list(reviewer_ids)).select_related("manager"):
        if _escalate_reviewer(campaign, reviewer, now):
            escalated += 1
    return escalated


# --- The default action at the deadline -----------------------------------------------------------
#
# Each chunk is written with set-based statements: one locked read of the items as plain rows,
# one UPDATE for them, (for revocations) the grants ended by ``grants_end_many`` with one UPDATE
# and one INSERT … SELECT of history rows per slice of grants, and last all the chunk's events in
# one batch, so the chain is locked only from that append to the commit. The events, their order
# in the chain and their payloads are those the per-row path wrote: items in their usual order
# (integration, then id), then their grants in theirs.

# What the deadline reads of an item: no model instance per row. Its ``grant_ids`` only when it
# covers a whole integration (``covered_grants`` reads them only then): a JSON column decoded for
# nothing on every item of a campaign by grant.
_ITEM_COLUMNS = (
    "pk",
    "integration_id",
    "grant_id",
    Case(When(grant__isnull=True, then=F("grant_ids")), default=Value(None), output_field=models.JSONField()),
    "status",
    "reviewer_id",
    "reviewer_group_id",
)
_ITEM_LABEL = f"{ReviewItem._meta.app_label}.{ReviewItem._meta.model_name}"


def _item_repr(pk: int, integration_id: int, grant_id: int | None) -> str:
    """An item named as ``ReviewItem.__str__`` names it, from its columns."""
    return f"Review #{pk} {integration_id}/{grant_id}"


def _locked_undecided(campaign: Campaign, after_pk: int, size: int) -> list[tuple[Any, ...]]:
    """The next ``size`` undecided items after ``after_pk`` (by id), locked, as ``_ITEM_COLUMNS``."""
    return list(
        ReviewItem.objects.select_for_update()
        .filter(campaign=campaign, status__in=UNDECIDED, pk__gt=after_pk)
        .order_by("pk")
        .values_list(*_ITEM_COLUMNS)[:size]
    )


@dataclass(frozen=True)
class _Default:
    """The default action applied at a campaign's deadline, by whom and why."""

    campaign: Campaign
    action: str
    actor: Actor
    reason: str
    # The owners of the grants revoked so far, by id (read once for the whole deadline).
    owners: dict[int, User] = field(default_factory=dict)


def _defaulted_event(default: _Default, row: tuple[Any, ...], new_status: str) -> EventSpec:
    pk, integration_id, grant_id, grant_ids, status, reviewer_id, reviewer_group_id = row
    return EventSpec(
        action="review_item.defaulted",
        target_type=_ITEM_LABEL,
        target_id=str(pk),
        target_repr=_item_repr(pk, integration_id, grant_id),
        owner=default.campaign.owner,
        before={"status": status, "reviewer": reviewer_id, "reviewer_group": reviewer_group_id},
        after={
            "status": new_status,
            "default_action": default.action,
            "campaign": default.campaign.pk,
            "grants": covered_grants(grant_id, grant_ids),
        },
        reason=default.reason,
    )


def _default_writes(default: _Default, rows: list[tuple[Any, ...]], size: int) -> list[EventSpec]:
    """Revoke, or keep and flag, the locked undecided items of ``rows``: one UPDATE, revocations
    applied at once (``size`` grants ended per statement). Returns their events for the caller to
    append in the same transaction: each item's ``review_item.defaulted`` in the items' usual order
    (integration, then id), then its grants' ``grant.revoked``."""
    now = timezone.now()
    revoke = default.action == DefaultAction.REVOKE
    new_status = ItemStatus.REVOKED if revoke else ItemStatus.KEPT_FLAGGED
    # The rows are locked and undecided: matched by id alone.
    ReviewItem.objects.filter(pk_in([row[0] for row in rows])).update(
        status=new_status,
        by_default=True,
        decided_at=now,
        flagged=not revoke,
        decision=ItemDecision.REVOKE if revoke else ItemDecision.CERTIFY,
        comment=default.reason,
        **({"applied_at": now} if revoke else {}),
    )
    ordered = sorted(rows, key=lambda row: (row[1], row[0]))  # ReviewItem's ordering
    events = [_defaulted_event(default, row, new_status) for row in ordered]
    if revoke:
        covered = (covered_grants(row[2], row[3]) for row in ordered)
        end_revoked_grants(default.actor, covered, default.reason, default.owners, chunk=size, events=events)
    return events


def _default_chunk(default: _Default, after_pk: int, size: int) -> tuple[int, int]:
    """Default the next ``size`` undecided items after ``after_pk`` in one transaction, their
    events appended last. Returns how many it decided and the last id read."""
    with transaction.atomic():
        rows = _locked_undecided(default.campaign, after_pk, size)
        if not rows:
            return 0, after_pk
        audit_append(audit_prepare(actor=default.actor, events=_default_writes(default, rows, size)))
        return len(rows), rows[-1][0]


def _default_revoke_or_keep(campaign: Campaign, action: str, size: int, workers: int) -> int:
    default = _Default(
        campaign=campaign,
        action=action,
        actor=system_actor(campaign),
        reason=f"Not decided by the deadline of {campaign.name}",
    )
    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        more_than_one_chunk = (
            ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).order_by("pk")[size : size + 1].exists()
        )
        if more_than_one_chunk:
            return _default_in_parallel(default, size, workers)
    decided, last = 0, 0
    while True:
        count, last = _default_chunk(default, last, size)
        if not count:
            return decided
        decided += count


# --- Chunks written side by side (PostgreSQL) -----------------------------------------------------
#
# Each worker thread has its own connection and writes whole chunks, each in its own transaction,
# exactly as ``_default_chunk`` does. Chunks are handed out one at a time in id order and
# numbered. A chunk takes an advisory lock named by its number when it starts and holds it to its
# commit; before it appends its events it waits for the lock of the chunk before it, so chunks join
# the audit trail in the order they were handed out, as one after the other would (its items and
# grants are written meanwhile, while the chunk before it appends). Every wait of one chunk on
# another is on a database lock, where PostgreSQL's deadlock detection sees it; the one Python
# lock held across a statement (the claim's) is taken only by a transaction that holds nothing.
# A chunk whose grants overlap those of a chunk still running waits for the chunks before it
# first. After a failure no chunk is handed out and the chunks waiting behind the failed one roll
# back, so those committed come before it (only a failure of the commit itself may let the next
# chunk through first). Each chunk is written whole or not at all, and the next sweep takes up
# the rest. Each worker keeps its own cache of owners.

# The first key of the chunks' advisory locks is drawn at random for each deadline (its second is
# the chunk's number): two deadlines never share a lock, other than by a chance of 1 in 2^31.
_TURN_KEYS = random.SystemRandom()


@dataclass
class _Claims:
    """The chunks handed out so far to one deadline's workers. ``lock`` serialises the claims
    (it is held while a claim reads its items); ``failure`` is never held around a statement, so
    a failing chunk, which still holds its rows, its grants and perhaps the chain, never waits
    behind a claim that waits on the database."""

    key: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    failure: threading.Lock = field(default_factory=threading.Lock)
    # Under ``lock``: where the next claim starts, how many chunks were handed out, and the grants
    # covered by each chunk still running, by number.
    after_pk: int = 0
    handed_out: int = 0
    covering: dict[int, frozenset[int]] = field(default_factory=dict)
    # Under ``failure``: the items decided so far, and the number of the first chunk that failed
    # (or the next to hand out, when handing one out failed): the chunks after it roll back,
    # those before it go on.
    decided: int = 0
    failed_at: int | None = None


class _EarlierChunkFailed(Exception):
    """A chunk before this one failed: this one rolls back."""


def _hold_turn(claims: _Claims, number: int) -> None:
    """Take the advisory lock of chunk ``number`` until the transaction ends: at once for a
    chunk's own, or once the chunk that holds it has committed or rolled back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [claims.key, number % 2**31])


def _failed(claims: _Claims, number: int) -> None:
    """Record that chunk ``number`` failed (the earliest failure wins)."""
    with claims.failure:
        if claims.failed_at is None or number < claims.failed_at:
            claims.failed_at = number


def _failed_before(claims: _Claims, number: int) -> bool:
    with claims.failure:
        return claims.failed_at is not None and claims.failed_at < number


def _claim(default: _Default, size: int, claims: _Claims) -> tuple[int, list[tuple[Any, ...]], bool] | None:
    """The next chunk for this worker's transaction, locked, with its number and whether its
    grants overlap a chunk still running; None when every item is handed out (or one failed).
    The chunk's own advisory lock is the last thing taken: once it is, the chunk is handed out."""
    with claims.lock:
        with claims.failure:
            if claims.failed_at is not None:
                return None
        rows = _locked_undecided(default.campaign, claims.after_pk, size)
        if not rows:
            return None
        covered = frozenset(pk for row in rows for pk in covered_grants(row[2], row[3]))
        overlaps = any(covered & other for other in claims.covering.values())
        number = claims.handed_out
        _hold_turn(claims, number)
        claims.handed_out += 1
        claims.after_pk = rows[-1][0]
        claims.covering[number] = covered
        return number, rows, overlaps


def _write_in_turn(
    default: _Default, size: int, claims: _Claims, number: int, rows: list[tuple[Any, ...]], overlaps: bool
) -> None:
    """Write chunk ``number``'s items and grants, prepare its events, then append them once the
    chunk before it has committed (or roll back if a chunk before it failed)."""
    if overlaps:
        _hold_turn(claims, number - 1)  # the grants of the chunks before are theirs to end first
        if _failed_before(claims, number):
            raise _EarlierChunkFailed
    batch = audit_prepare(actor=default.actor, events=_default_writes(default, rows, size))
    if number:
        _hold_turn(claims, number - 1)
    if _failed_before(claims, number):
        raise _EarlierChunkFailed
    audit_append(batch)


def _side_by_side_chunk(default: _Default, size: int, claims: _Claims) -> bool:
    """Claim and write one chunk in this worker's transaction; False when none was left. A
    failure is recorded before the rollback lets the next chunk append (a failure of the commit
    itself, after it)."""
    number = None
    try:
        with transaction.atomic():
            claimed = _claim(default, size, claims)
            if claimed is None:
                return False
            number, rows, overlaps = claimed
            try:
                _write_in_turn(default, size, claims, number, rows, overlaps)
            except _EarlierChunkFailed:
                raise
            except BaseException:
                _failed(claims, number)
                raise
    except _EarlierChunkFailed:
        raise
    except BaseException:
        _failed(claims, claims.handed_out if number is None else number)
        raise
    finally:
        if number is not None:  # the transaction has ended: nothing is held while waiting here
            with claims.lock:
                claims.covering.pop(number, None)
    with claims.failure:
        claims.decided += len(rows)
    return True


def _side_by_side_worker(default: _Default, size: int, claims: _Claims) -> None:
    try:
        while _side_by_side_chunk(default, size, claims):
            pass
    except _EarlierChunkFailed:
        pass
    finally:
        connection.close()  # this thread's own


def _default_in_parallel(default: _Default, size: int, workers: int) -> int:
    """The default action by ``workers`` threads writing chunks side by side; how many items it
    decided. Once every worker has stopped, a failure is raised (that of the first worker, in
    the order they were started, to have failed)."""
    claims = _Claims(key=_TURN_KEYS.randrange(2**31))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deadline") as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, _side_by_side_worker, replace(default, owners={}), size, claims)
            for _worker in range(workers)
        ]
    for future in futures:
        future.result()
    return claims.decided


# How an escalated item is reassigned: the new reviewer or group, and the kind of target.
Reassignment = tuple[int | None, int | None, str]


def _reassignment(campaign: Campaign, reviewer: User | None) -> Reassignment:
    """Whoever takes over from ``reviewer`` (``_escalation_target``), as the item's new columns."""
    targets, kind = _escalation_target(campaign, reviewer)
    if kind == "fallback group":
        return None, campaign.definition.fallback_group_id, kind
    return targets[0].pk, None, kind


def _by_reviewer(values: dict[int | None, Any], output_field: models.Field[Any, Any]) -> Any:
    """A value per item chosen by the item's reviewer before the UPDATE (None: no reviewer);
    the value itself when it is the same for all (an all-NULL CASE has no type to assign)."""
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    whens = [
        When(reviewer__isnull=True, then=Value(value))
        if reviewer is None
        else When(reviewer=reviewer, then=Value(value))
        for reviewer, value in values.items()
    ]
    return Case(*whens, output_field=output_field)


def _reassign_chunk(
    campaign: Campaign, rows: list[tuple[Any, ...]], people: dict[int, User], plan: dict[int | None, Reassignment]
) -> list[EventSpec]:
    """Give each item of ``rows`` to whoever takes over from its reviewer, open again: one UPDATE
    whose values follow the reviewer. ``plan`` keeps each reviewer's reassignment across chunks."""
    for reviewer_id in {row[5] for row in rows} - plan.keys():
        plan[reviewer_id] = _reassignment(campaign, people.get(reviewer_id or 0))
    chunk_plan = {reviewer_id: plan[reviewer_id] for reviewer_id in {row[5] for row in rows}}
    ReviewItem.objects.filter(pk_in([row[0] for row in rows])).update(
        reviewer=_by_reviewer({key: value[0] for key, value in chunk_plan.items()}, models.BigIntegerField()),
        reviewer_group=_by_reviewer({key: value[1] for key, value in chunk_plan.items()}, models.BigIntegerField()),
        assigned_reason=_by_reviewer(
            {key: f"escalated at the deadline to the {value[2]}" for key, value in chunk_plan.items()},
            models.CharField(),
        ),
        escalated_at=timezone.now(),
        status=ItemStatus.OPEN,
    )
    events = []
    for pk, integration_id, grant_id, _ids, _status, reviewer_id, reviewer_group_id in rows:
        new_reviewer, new_group, kind = plan[reviewer_id]
        events.append(
            EventSpec(
                action="review_item.escalated",
                target_type=_ITEM_LABEL,
                target_id=str(pk),
                target_repr=_item_repr(pk, integration_id, grant_id),
                owner=campaign.owner,
                before={"reviewer": reviewer_id, "reviewer_group": reviewer_group_id},
                after={"reviewer": new_reviewer, "reviewer_group": new_group, "target_kind": kind},
            )
        )
    return events


def _extend_after_escalation(campaign: Campaign, actor: Actor, items: int) -> None:
    """Push the deadline back by the grace period, audit it and tell the new reviewers."""
    grace = timedelta(days=campaign.definition.escalation_grace_days)
    Campaign.objects.filter(pk=campaign.pk).update(escalated_at=timezone.now(), deadline=F("deadline") + grace)
    campaign.refresh_from_db()
    audit_record(
        actor=actor,
        action="campaign.escalated",
        target=campaign,
        owner=campaign.owner,
        after={"items": items, "new_deadline": campaign.deadline},
    )
    email_reviewers(
        campaign,
        recipients_with_items(campaign, undecided_only=True),
        key_part="escalated-assigned",
        template="campaign_assigned",
        subject="Escalated to you: {total} item(s) to review in {name}",
        extra={"escalated": True},
    )


def _default_escalate(campaign: Campaign, size: int) -> int:
    """Reassign every undecided item to its reviewer's manager (or the fallback) and extend the
    deadline by the grace period; the next deadline revokes what is still open."""
    actor = system_actor(campaign)
    undecided_reviewers = ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).values("reviewer_id")
    people = {user.pk: user for user in User.objects.filter(pk__in=undecided_reviewers).select_related("manager")}
    plan: dict[int | None, Reassignment] = {}
    done = 0
    last = 0
    with transaction.atomic():
        while True:
            rows = _locked_undecided(campaign, last, size)
            if not rows:
                break
            audit_record_many(actor=actor, events=_reassign_chunk(campaign, rows, people, plan))
            done += len(rows)
            last = rows[-1][0]
        _extend_after_escalation(campaign, actor, done)
    return done


# --- The close ------------------------------------------------------------------------------------


def _apply_held_revocations(campaign: Campaign, actor: Actor, size: int) -> int:
    """Reviewers' revocations kept for the close (apply mode "at close"), applied in chunks:
    the grants ended in bulk, the items marked applied with one UPDATE."""
    reason = f"Recertification {campaign.name}: revoked by the reviewer, applied at the close"
    held = 0
    owners: dict[int, User] = {}
    while True:
        with transaction.atomic():
            rows = list(
                ReviewItem.objects.select_for_update()
                .filter(campaign=campaign, status=ItemStatus.REVOKED, applied_at__isnull=True)
                .order_by("pk")
                .values_list("pk", "grant_id", "grant_ids")[:size]
            )
            if not rows:
                return held
            covered = (covered_grants(grant_id, grant_ids) for _pk, grant_id, grant_ids in rows)
            end_revoked_grants(actor, covered, reason, owners, chunk=size)
            ReviewItem.objects.filter(pk_in([row[0] for row in rows])).update(applied_at=timezone.now())
        held += len(rows)


def _close(campaign: Campaign, actor: Actor, *, action: str, defaulted: int, held: int, early: bool) -> None:
    """active -> closed, audited with the items' final counts (and whether a person closed it
    before its deadline)."""
    with transaction.atomic():
        campaign_transition(
            campaign=campaign,
            to_status=CampaignStatus.CLOSED,
            refusal="The campaign was closed by another worker.",
            closed_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action="campaign.closed",
            target=campaign,
            owner=campaign.owner,
            before={"status": CampaignStatus.ACTIVE},
            after={
                "status": CampaignStatus.CLOSED,
                "by_status": selectors.item_counts(campaign),
                "defaulted": defaulted,
                "default_action": action,
                "applied_at_close": held,
                **({"closed_early": True} if early else {}),
            },
        )


def campaign_close(
    *, campaign: Campaign, size: int = DEADLINE_CHUNK, closed_by: Actor | None = None, workers: int | None = None
) -> Campaign:
    """At the deadline: apply the default action to every undecided item (in chunks; each item
    audited with the system as actor on behalf of the owner), apply revocations held for the
    close, then close the campaign (active -> closed). With the "escalate" default, the first
    deadline that finds undecided items reassigns them and extends the deadline instead.
    ``closed_by`` is the person who closes it early (``campaign_close_early``); the sweep leaves
    it out and the close is the system's. On PostgreSQL, outside a transaction, ``workers``
    connections (``CAMPAIGN_DEADLINE_WORKERS`` when None) write the default action's chunks side
    by side, with the same result as one after the other."""
    campaign = Campaign.objects.select_related("definition", "owner").get(pk=campaign.pk)
    check_transition(
        campaign.status, CampaignStatus.CLOSED, "Only a running campaign can be closed (this one is {current})."
    )
    action = campaign.default_action
    if action == DefaultAction.ESCALATE:
        if (
            campaign.escalated_at is None
            and ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).exists()
        ):
            _default_escalate(campaign, size)
            return campaign  # still running until the extended deadline
        action = DefaultAction.REVOKE
    defaulted = _default_revoke_or_keep(
        campaign, action, size, settings.CAMPAIGN_DEADLINE_WORKERS if workers is None else workers
    )
    actor = system_actor(campaign)
    held = _apply_held_revocations(campaign, actor, size)
    _close(campaign, closed_by or actor, action=action, defaulted=defaulted, held=held, early=closed_by is not None)
    return campaign


def campaign_close_early(*, actor: Actor | User, campaign: Campaign) -> Campaign:
    """Close a running campaign whose items are all decided before its deadline (IAM admins and
    the campaign's owner), through the same close as the deadline: revocations held for the
    close are applied and the close is audited, with the person as actor. Idempotent: a
    campaign already closed (by the sweep or a second click) is returned as it is. While an item
    is undecided it refuses — the default action is the deadline's to apply, never a click's."""
    resolved = Actor.coerce(actor)
    if not permissions.can_launch(resolved.user, campaign):
        raise NotAllowed("Only IAM admins and the campaign's owner can close it.")
    campaign.refresh_from_db()
    if campaign.status == CampaignStatus.CLOSED:
        return campaign
    check_transition(
        campaign.status, CampaignStatus.CLOSED, "Only a running campaign can be closed (this one is {current})."
    )
    undecided = ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).count()
    if undecided:
        raise Conflict(f"{undecided} item(s) are still undecided: the campaign closes at its deadline.")
    try:
        return campaign_close(campaign=campaign, closed_by=resolved)
    except IllegalTransition:
        # Closed meanwhile by the sweep or another click: the outcome asked for holds.
        campaign.refresh_from_db()
        if campaign.status == CampaignStatus.CLOSED:
            return campaign
        raise


def campaign_tick(*, campaign_id: int, now: datetime | None = None) -> dict[str, int]:
    """One pass of the periodic sweep over a running campaign: reminders, escalation, and the
    deadline. Idempotent: unique email keys and conditional updates."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("definition", "owner").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.ACTIVE or campaign.deadline is None:
        return {}
    result = {
        "reminded": campaign_send_reminders(campaign=campaign, now=now),
        "escalated": campaign_escalate_reviewers(campaign=campaign, now=now),
        "closed": 0,
    }
    if now >= campaign.deadline:
        closed = campaign_close(campaign=campaign)
        result["closed"] = int(closed.status == CampaignStatus.CLOSED)
    return result


def campaign_cancel(*, actor: Actor | User, campaign: Campaign, reason: str) -> Campaign:
    """Drop a draft that was never launched (draft -> cancelled): IAM admins and the owner."""
    resolved = Actor.coerce(actor)
    if not permissions.can_launch(resolved.user, campaign):
        raise NotAllowed("Only IAM admins and the campaign's owner can cancel it.")
    with transaction.atomic():
        campaign_transition(
            campaign=campaign, to_status=CampaignStatus.CANCELLED, refusal="Only a draft campaign can be cancelled."
        )
        audit_record(actor=resolved, action="campaign.cancelled", target=campaign, owner=campaign.owner, reason=reason)
    return campaign
