"""Launching a campaign run. A run is created as a draft (its definition's behaviour copied), then
claimed for launch (draft -> launching, audited) and handed to the background task, which makes
its review items in keyset-paginated chunks, each committed with the cursor: an interrupted launch
resumes after the cursor, and the unique constraints plus ``ON CONFLICT DO NOTHING`` make a
replayed chunk harmless. One email per reviewer (a unique outbox key per campaign and reviewer),
the ``review_item.assigned`` events and one ``campaign.launched`` event close the launch."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from approvals.campaigns import permissions, selectors
from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, Granularity, ItemStatus, ReviewItem
from approvals.campaigns.services.common import campaign_transition, system_actor
from approvals.campaigns.services.notifications import email_reviewers, recipients_with_items
from approvals.campaigns.services.reviewers import Assignment, ReviewerResolver
from governance import queue
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from governance.webhooks.events import emit_many as webhook_emit_many
from inventory.choices import RiskTier, Sensitivity
from inventory.models import Grant

# Grants turned into items per committed chunk.
LAUNCH_CHUNK = 2000

_CAMPAIGN_AUDITED = ("name", "status", "deadline", "granularity", "default_action", "apply_mode", "second_stage")


def campaign_create(
    *, actor: Actor | User, definition: CampaignDefinition, name: str = "", run_key: str = ""
) -> Campaign:
    """A draft run of ``definition`` (IAM admins); its behaviour is copied so later edits do not
    change it. With a ``run_key`` (a scheduled slot) the same slot returns the run it already made."""
    resolved = Actor.coerce(actor)
    if not resolved.is_system and not permissions.can_manage_definitions(resolved.user):
        raise NotAllowed("Only IAM admins start campaigns.")
    if not definition.is_active:
        raise Unprocessable.on("definition", "This definition is inactive.")
    if has_control_characters(name or ""):
        raise ValidationFailed.on("name", SINGLE_LINE_MESSAGE)
    with transaction.atomic():
        if run_key:
            existing = Campaign.objects.filter(definition=definition, run_key=run_key).first()
            if existing is not None:
                return existing
        now = timezone.now()
        campaign = Campaign.objects.create(
            definition=definition,
            name=(name or "").strip() or f"{definition.name} — {now:%Y-%m-%d}",
            owner=definition.owner,
            run_key=run_key,
            granularity=definition.granularity,
            default_action=definition.default_action,
            apply_mode=definition.apply_mode,
            second_stage=definition.second_stage,
            reminder_days=sorted(set(definition.reminder_days), reverse=True),
            escalate_days_before=definition.escalate_days_before,
            created_by=None if resolved.is_system else resolved.user,
        )
        audit_record(
            actor=resolved,
            action="campaign.created",
            target=campaign,
            owner=campaign.owner,
            after=snapshot(campaign, _CAMPAIGN_AUDITED),
        )
    return campaign


def campaign_launch_request(*, actor: Actor | User, campaign: Campaign, enqueue: bool = True) -> Campaign:
    """Claim a draft for launch (draft -> launching, audited as ``campaign.launch_requested``):
    IAM admins and the campaign's owner. The deadline runs from now. The items are made by the
    background task, enqueued after commit; returns at once."""
    resolved = Actor.coerce(actor)
    if not resolved.is_system and not permissions.can_launch(resolved.user, campaign):
        raise NotAllowed("Only IAM admins and the campaign's owner can launch it.")
    with transaction.atomic():
        now = timezone.now()
        deadline = now + timedelta(days=campaign.definition.duration_days)
        previous = campaign_transition(
            campaign=campaign,
            to_status=CampaignStatus.LAUNCHING,
            refusal="Only a draft campaign can be launched (this one is {current}).",
            launched_at=now,
            deadline=deadline,
            created_by_id=campaign.created_by_id or (None if resolved.is_system else resolved.user.pk),
        )
        audit_record(
            actor=resolved,
            action="campaign.launch_requested",
            target=campaign,
            owner=campaign.owner,
            before={"status": previous},
            after={"status": campaign.status, "launched_at": campaign.launched_at, "deadline": campaign.deadline},
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue_launch(campaign.pk))
    return campaign


def _enqueue_launch(campaign_id: int) -> None:
    """Queue the making of the items (the sweep resumes a launch left in "launching" if it could not be queued)."""
    queue.enqueue("approvals.campaigns.tasks.campaign_launch", campaign_id, name=f"campaign-launch-{campaign_id}")


def campaign_launch_run(*, campaign_id: int, chunk_size: int = LAUNCH_CHUNK) -> Campaign | None:
    """The background half of a launch: make the items in chunks, then email each reviewer once
    and mark the campaign running. Safe to run again after an interruption: it resumes after the
    last committed chunk. Returns None when the campaign is not launching (nothing to do)."""
    campaign = Campaign.objects.select_related("definition", "owner").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.LAUNCHING:
        return None
    selection = selectors.selection_for(campaign.definition, now=campaign.launched_at)
    if campaign.total_expected == 0 and campaign.cursor == 0:
        _record_expected(campaign, selection)
    resolver = ReviewerResolver(campaign.definition, campaign.owner_id)
    if campaign.granularity == Granularity.GRANT:
        _launch_per_grant(campaign, selection, resolver, chunk_size)
    else:
        _launch_per_integration(campaign, selection, resolver, chunk_size)
    return _activate_and_announce(campaign)


def _record_expected(campaign: Campaign, selection: QuerySet[Grant]) -> None:
    """How many items the launch will make (the page shows progress against it)."""
    if campaign.granularity == Granularity.GRANT:
        expected = selection.count()
    else:
        expected = selection.order_by().values("integration_id").distinct().count()
    Campaign.objects.filter(pk=campaign.pk).update(total_expected=expected)


# --- Items ---------------------------------------------------------------------------------------

_GRANT_FIELDS = (
    "pk",
    "integration_id",
    "integration__business_owner_id",
    "integration__technical_owner_id",
    "integration__backup_owner_id",
    "scope__system_id",
    "scope__sensitivity",
    "integration__risk_tier",
)

_ITEM_COLUMNS = (
    "campaign_id",
    "integration_id",
    "grant_id",
    "grant_ids",
    "reviewer_id",
    "reviewer_group_id",
    "assigned_reason",
    "critical",
    "status",
    "decision",
    "comment",
    "by_default",
    "flagged",
)

ItemRow = tuple[Any, ...]


def _is_critical(sensitivity: str, tier: str) -> bool:
    return sensitivity == Sensitivity.CRITICAL or tier == RiskTier.CRITICAL


def _grant_ids_column(grant_ids: list[int]) -> Any:
    """``grant_ids`` as the database stores it (a JSON value)."""
    return ReviewItem._meta.get_field("grant_ids").get_db_prep_save(grant_ids, connection)


def _item_row(
    campaign: Campaign,
    integration_id: int,
    grant_id: int | None,
    grant_ids_column: Any,
    assignment: Assignment,
    critical: bool,
) -> ItemRow:
    """A new open item as a row of ``_ITEM_COLUMNS``."""
    return (
        campaign.pk,
        integration_id,
        grant_id,
        grant_ids_column,
        assignment.reviewer_id,
        assignment.group_id,
        assignment.reason,
        critical,
        ItemStatus.OPEN,
        "",
        "",
        False,
        False,
    )


def _insert_items(rows: list[ItemRow]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` with ``executemany``: the effect of
    ``bulk_create(ignore_conflicts=True)`` without a model instance per row and a statement per
    50 rows (SQLite's 999-parameter batches), which dominated a 100k launch. ``rows`` follow
    ``_ITEM_COLUMNS``."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in _ITEM_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_ITEM_COLUMNS))
    sql = f"INSERT INTO {quote(ReviewItem._meta.db_table)} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    if connection.vendor == "postgresql":
        # Django's psycopg cursor binds on the client and parses every statement; a plain
        # psycopg cursor prepares the INSERT once and pipelines the rows.
        import psycopg

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as raw:
            raw.executemany(sql, rows)
    else:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def _save_chunk(campaign: Campaign, rows: list[ItemRow], cursor: int, scanned: int) -> None:
    # The items and the cursor commit together: a resumed launch starts after the last chunk
    # that committed, and a replayed chunk is absorbed by the unique constraints.
    with transaction.atomic():
        _insert_items(rows)
        Campaign.objects.filter(pk=campaign.pk).update(cursor=cursor, processed=F("processed") + scanned)


def _launch_per_grant(campaign: Campaign, selection: QuerySet[Grant], resolver: ReviewerResolver, chunk: int) -> None:
    cursor = campaign.cursor
    no_grant_ids = _grant_ids_column([])
    while True:
        rows = list(selection.filter(pk__gt=cursor).order_by("pk").values_list(*_GRANT_FIELDS)[:chunk])
        if not rows:
            return
        items = []
        for pk, integration_id, business, technical, backup, system, sensitivity, tier in rows:
            assignment = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            items.append(
                _item_row(campaign, integration_id, pk, no_grant_ids, assignment, _is_critical(sensitivity, tier))
            )
        cursor = rows[-1][0]
        _save_chunk(campaign, items, cursor, len(rows))


def _launch_per_integration(
    campaign: Campaign, selection: QuerySet[Grant], resolver: ReviewerResolver, chunk: int
) -> None:
    cursor = campaign.cursor
    per_chunk = max(chunk // 10, 1)  # integrations per chunk (each has a handful of grants)
    while True:
        ids = list(
            selection.filter(integration_id__gt=cursor)
            .order_by("integration_id")
            .values_list("integration_id", flat=True)
            .distinct()[:per_chunk]
        )
        if not ids:
            return
        grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in (
            selection.filter(integration_id__in=ids).order_by("integration_id", "pk").values_list(*_GRANT_FIELDS)
        ):
            grouped[row[1]].append(row)
        items = []
        for integration_id in ids:
            rows = grouped.get(integration_id, [])
            if not rows:
                continue
            _pk, _integration, business, technical, backup, system, _sensitivity, _tier = rows[0]
            assignment = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            grant_ids = _grant_ids_column([row[0] for row in rows])
            critical = any(_is_critical(row[6], row[7]) for row in rows)
            items.append(_item_row(campaign, integration_id, None, grant_ids, assignment, critical))
        cursor = ids[-1]
        _save_chunk(campaign, items, cursor, len(ids))


# --- The end of a launch ----------------------------------------------------------------------------


def _emit_assigned(campaign: Campaign) -> int:
    """``review_item.assigned`` for every item, once (the launch finishes once), streamed."""
    rows = (
        ReviewItem.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("pk", "reviewer__username", "reviewer_group__name", "integration_id")
    )
    return webhook_emit_many(
        event_type="review_item.assigned",
        target_type=ReviewItem._meta.label_lower,
        targets=(
            (str(pk), {"campaign": campaign.pk, "reviewer": user, "reviewer_group": group, "integration": integration})
            for pk, user, group, integration in rows.iterator(chunk_size=2000)
        ),
    )


def _activate_and_announce(campaign: Campaign) -> Campaign:
    """Mark the campaign running (launching -> active), record how many items it holds, email
    every reviewer once, emit the items' events and audit ``campaign.launched`` — together."""
    with transaction.atomic():
        campaign_transition(
            campaign=campaign,
            to_status=CampaignStatus.ACTIVE,
            refusal="The campaign is no longer launching (another worker finished it).",
            launch_finished_at=timezone.now(),
        )
        counts = ReviewItem.objects.filter(campaign=campaign).aggregate(
            items=Count("pk"),
            reviewers=Count("reviewer_id", distinct=True),
            groups=Count("reviewer_group_id", distinct=True),
        )
        Campaign.objects.filter(pk=campaign.pk).update(items_total=counts["items"])
        campaign.items_total = counts["items"]
        recipients = recipients_with_items(campaign, undecided_only=False)
        emails = email_reviewers(
            campaign,
            recipients,
            key_part="assigned",
            subject="Recertification: {total} item(s) to review in {name}",
            template="campaign_assigned",
        )
        _emit_assigned(campaign)
        actor = Actor.coerce(campaign.created_by) if campaign.created_by else system_actor(campaign)
        audit_record(
            actor=actor,
            action="campaign.launched",
            target=campaign,
            owner=campaign.owner,
            after={
                **counts,
                "recipients": len(recipients),
                "emails_queued": emails,
                "deadline": campaign.deadline,
                "granularity": campaign.granularity,
            },
        )
    return campaign
