"""Launching a campaign run. A run is created as a draft (its definition's behaviour copied), then
claimed for launch (draft -> launching, audited) and handed to the background task, which makes
its review items in keyset-paginated chunks, each committed with the cursor: an interrupted launch
resumes after the cursor, and the unique constraints plus ``ON CONFLICT DO NOTHING`` make a
replayed chunk harmless. One email per reviewer (a unique outbox key per campaign and reviewer),
the ``review_item.assigned`` events and one ``campaign.launched`` event close the launch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import BooleanField, Case, F, Field, Q, QuerySet, Value, When
from django.utils import timezone

from approvals.campaigns import permissions, selectors
from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, Granularity, ItemStatus, ReviewItem
from approvals.campaigns.services.common import campaign_transition, system_actor
from approvals.campaigns.services.notifications import (
    Assignee,
    ReviewLoad,
    email_reviewers,
    recipients_for,
    review_loads,
)
from approvals.campaigns.services.reviewers import assignment_sql
from governance import queue
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from governance.webhooks.events import emit_many as webhook_emit_many
from governance.webhooks.events import send_after_commit
from governance.webhooks.events import subscribers as webhook_subscribers
from governance.webhooks.models import DeliveryStatus, WebhookDelivery
from inventory.choices import RiskTier, Sensitivity
from inventory.models import Grant

# Grants turned into items per committed chunk (one statement each; larger chunks make fewer
# statements and keep the launch's memory flat, since no row passes through Python).
LAUNCH_CHUNK = 10000

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
    if campaign.granularity == Granularity.GRANT:
        _launch_per_grant(campaign, selection, chunk_size)
    else:
        _launch_per_integration(campaign, selection, chunk_size)
    _analyse_items()
    return _activate_and_announce(campaign)


def _record_expected(campaign: Campaign, selection: QuerySet[Grant]) -> None:
    """How many items the launch will make (the page shows progress against it)."""
    if campaign.granularity == Granularity.GRANT:
        expected = selection.count()
    else:
        expected = selection.order_by().values("integration_id").distinct().count()
    Campaign.objects.filter(pk=campaign.pk).update(total_expected=expected)


# --- Items ---------------------------------------------------------------------------------------
#
# Each chunk is one ``INSERT ... SELECT``: the database reads the chunk's grants, assigns their
# reviewers (the rule in SQL, ``reviewers.assignment_sql``) and writes the items, so no grant
# passes through Python. A chunk is a range of the keyset (grant ids, or integration ids per
# integration): the range's upper end is found first, then the range is inserted.


def _quote_table(model: type[Any]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _grant_rows(selection: QuerySet[Grant]) -> tuple[str, list[Any]]:
    """The selected grants as SQL with the columns ``reviewers.assignment_sql`` reads plus the
    item's own: ``item_grant``, ``item_integration`` and ``item_critical``."""
    critical = Q(scope__sensitivity=Sensitivity.CRITICAL) | Q(integration__risk_tier=RiskTier.CRITICAL)
    rows = (
        selection.order_by()
        .annotate(
            item_grant=F("pk"),
            item_integration=F("integration_id"),
            business_id=F("integration__business_owner_id"),
            technical_id=F("integration__technical_owner_id"),
            backup_id=F("integration__backup_owner_id"),
            system_id=F("scope__system_id"),
            item_critical=Case(When(critical, then=Value(True)), default=Value(False), output_field=BooleanField()),
        )
        .values_list(
            "item_grant",
            "item_integration",
            "business_id",
            "technical_id",
            "backup_id",
            "system_id",
            "item_critical",
        )
    )
    sql, params = rows.query.sql_with_params()
    return sql, list(params)


def _integration_rows(selection: QuerySet[Grant]) -> tuple[str, list[Any]]:
    """One row per integration of the selected grants: its grant ids in id order, critical if any
    of them is, and the owners and system of its first grant (window functions keep the order
    that an aggregate over a group would not promise)."""
    grants_sql, params = _grant_rows(selection)
    as_json = "JSONB_AGG" if connection.vendor == "postgresql" else "JSON_GROUP_ARRAY"
    sql = (
        "SELECT item_integration, CAST(NULL AS BIGINT) AS item_grant, item_grant_ids, any_critical = 1 AS item_critical,"
        " business_id, technical_id, backup_id, system_id FROM ("
        " SELECT grant_row.*, ROW_NUMBER() OVER (PARTITION BY item_integration ORDER BY item_grant) AS grant_order,"
        f" {as_json}(item_grant) OVER whole AS item_grant_ids,"
        " MAX(CASE WHEN item_critical THEN 1 ELSE 0 END) OVER whole AS any_critical"
        f" FROM ({grants_sql}) grant_row"
        " WINDOW whole AS (PARTITION BY item_integration ORDER BY item_grant"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
        ") windowed WHERE grant_order = 1"
    )
    return sql, params


def _insert_items_sql(campaign: Campaign, rows: tuple[str, list[Any]], *, per_grant: bool) -> tuple[str, list[Any]]:
    """``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` of the open items of ``rows``, each
    assigned by the campaign's reviewer rule: a replayed chunk inserts nothing twice."""
    rows_sql, rows_params = rows
    assigned_sql, assigned_params = assignment_sql(campaign.definition, campaign.owner_id, rows_sql)
    grant_ids = "%s" if per_grant else "assigned.item_grant_ids"
    grant_ids_params = [_grant_ids_column([])] if per_grant else []
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in _ITEM_COLUMNS)
    sql = (
        f"INSERT INTO {_quote_table(ReviewItem)} ({columns})"
        f" SELECT %s, assigned.item_integration, assigned.item_grant, {grant_ids}, assigned.reviewer_id,"
        " assigned.reviewer_group_id, assigned.assigned_reason, assigned.item_critical, %s, '', '', FALSE, FALSE"
        f" FROM ({assigned_sql}) assigned WHERE TRUE ON CONFLICT DO NOTHING"
    )
    return sql, [campaign.pk, *grant_ids_params, ItemStatus.OPEN, *assigned_params, *rows_params]


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


def _grant_ids_column(grant_ids: list[int]) -> Any:
    """``grant_ids`` as the database stores it (a JSON value)."""
    return ReviewItem._meta.get_field("grant_ids").get_db_prep_save(grant_ids, connection)


def _next_range(keys: QuerySet[Any, Any], size: int) -> tuple[int | None, int]:
    """The last key and the number of keys of the next chunk: ``keys`` is a queryset of one
    ordered column ``bound`` after the cursor."""
    sql, params = keys[:size].query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        _join_by_key(cursor)
        cursor.execute(f"SELECT MAX(bounded.bound), COUNT(*) FROM ({sql}) bounded", params)
        last, count = cursor.fetchone()
    return last, count


def _save_chunk(campaign: Campaign, insert: tuple[str, list[Any]], cursor: int, scanned: int) -> None:
    # The items and the cursor commit together: a resumed launch starts after the last chunk
    # that committed, and a replayed chunk is absorbed by the unique constraints.
    sql, params = insert
    with transaction.atomic():
        with connection.cursor() as db:
            _join_by_key(db)
            db.execute(sql, params)
        Campaign.objects.filter(pk=campaign.pk).update(cursor=cursor, processed=F("processed") + scanned)


def _join_by_key(db: Any) -> None:
    """A chunk reads only its own rows: on PostgreSQL, hash and merge joins are off for the
    chunk's transaction, so the rows joined to the chunk's grants (integrations, scopes, people,
    recent decisions) are looked up by key. A hash join reads the whole joined table for every
    chunk, which makes the launch's time grow with the square of the estate."""
    if connection.vendor == "postgresql":
        db.execute("SELECT set_config('enable_hashjoin', 'off', TRUE), set_config('enable_mergejoin', 'off', TRUE)")


def _analyse_items() -> None:
    """On PostgreSQL, refresh the review items' statistics once the items are made: until then
    the planner takes the new campaign for an empty one and reads its items through an index of
    every campaign's items (the end of the launch and the pages that follow)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as db:
            db.execute(f"ANALYZE {_quote_table(ReviewItem)}")


def _launch_per_grant(campaign: Campaign, selection: QuerySet[Grant], chunk: int) -> None:
    cursor = campaign.cursor
    while True:
        keys = selection.filter(pk__gt=cursor).annotate(bound=F("pk")).order_by("bound").values_list("bound")
        last, scanned = _next_range(keys, chunk)
        if last is None:
            return
        rows = _grant_rows(selection.filter(pk__gt=cursor, pk__lte=last))
        _save_chunk(campaign, _insert_items_sql(campaign, rows, per_grant=True), last, scanned)
        cursor = last


def _launch_per_integration(campaign: Campaign, selection: QuerySet[Grant], chunk: int) -> None:
    cursor = campaign.cursor
    per_chunk = max(chunk // 10, 1)  # integrations per chunk (each has a handful of grants)
    while True:
        keys = (
            selection.filter(integration_id__gt=cursor)
            .annotate(bound=F("integration_id"))
            .order_by("bound")
            .values_list("bound")
            .distinct()
        )
        last, scanned = _next_range(keys, per_chunk)
        if last is None:
            return
        rows = _integration_rows(selection.filter(integration_id__gt=cursor, integration_id__lte=last))
        _save_chunk(campaign, _insert_items_sql(campaign, rows, per_grant=False), last, scanned)
        cursor = last


# --- The end of a launch ----------------------------------------------------------------------------


ASSIGNED_EVENT = "review_item.assigned"


def _emit_assigned(campaign: Campaign) -> int:
    """``review_item.assigned`` for every item, once (the launch finishes once). On PostgreSQL
    the database writes the deliveries (one ``INSERT ... SELECT``: no item passes through
    Python); elsewhere they are streamed. Returns how many deliveries were queued."""
    if connection.vendor != "postgresql":
        return _emit_assigned_streamed(campaign)
    subscriptions = webhook_subscribers(ASSIGNED_EVENT)
    if not subscriptions:
        return 0
    # Few deliveries are sent at once after commit, as ``emit_many`` does; many wait for the sweep.
    send_now = campaign.items_total * len(subscriptions) <= SEND_AT_ONCE
    sql, params = _assigned_deliveries_sql(campaign, subscriptions, returning=send_now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written: int = cursor.rowcount
        if send_now:
            send_after_commit([row[0] for row in cursor.fetchall()])
    return written


# The most deliveries a launch queues for sending at once (``emit_many`` sends a written batch
# of up to 50 after commit).
SEND_AT_ONCE = 50


def _assigned_deliveries_sql(campaign: Campaign, subscriptions: list[int], *, returning: bool) -> tuple[str, list[Any]]:
    """The rows ``emit_many`` writes for the items' events, as SQL: per item (in id order), one
    delivery per subscription, with the same details, retry window and status."""
    quote = connection.ops.quote_name
    now = timezone.now()
    columns = [str(cast("Field[Any, Any]", WebhookDelivery._meta.get_field(name)).column) for name in _DELIVERY_FIELDS]
    sql = (
        f"INSERT INTO {_quote_table(WebhookDelivery)} ({', '.join(quote(column) for column in columns)})"
        " SELECT subscription.id, gen_random_uuid(), %s, %s, NULL, %s, CAST(item.id AS TEXT),"
        " jsonb_build_object('campaign', item.campaign_id, 'reviewer', reviewer.username,"
        " 'reviewer_group', reviewer_group.name, 'integration', item.integration_id),"
        " %s, 0, %s, %s, '', %s"
        f" FROM {_quote_table(ReviewItem)} item"
        f" LEFT JOIN {_quote_table(User)} reviewer ON reviewer.id = item.reviewer_id"
        f" LEFT JOIN {_quote_table(Group)} reviewer_group ON reviewer_group.id = item.reviewer_group_id"
        " CROSS JOIN UNNEST(%s::bigint[]) WITH ORDINALITY AS subscription(id, position)"
        " WHERE item.campaign_id = %s ORDER BY item.id, subscription.position"
    )
    if returning:
        sql += " RETURNING id"
    params = [
        ASSIGNED_EVENT,
        now,
        ReviewItem._meta.label_lower,
        DeliveryStatus.PENDING,
        now,
        now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
        now,
        subscriptions,
        campaign.pk,
    ]
    return sql, params


_DELIVERY_FIELDS = (
    "subscription",
    "event_id",
    "event_type",
    "occurred_at",
    "audit_event",
    "target_type",
    "target_id",
    "details",
    "status",
    "attempts",
    "next_attempt_at",
    "give_up_at",
    "last_error",
    "created_at",
)


def _emit_assigned_streamed(campaign: Campaign) -> int:
    """``review_item.assigned`` for every item, streamed through ``emit_many``."""
    rows = (
        ReviewItem.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("pk", "reviewer__username", "reviewer_group__name", "integration_id")
    )
    return webhook_emit_many(
        event_type=ASSIGNED_EVENT,
        target_type=ReviewItem._meta.label_lower,
        targets=(
            (str(pk), {"campaign": campaign.pk, "reviewer": user, "reviewer_group": group, "integration": integration})
            for pk, user, group, integration in rows.iterator(chunk_size=2000)
        ),
    )


def _item_counts(loads: dict[Assignee, ReviewLoad]) -> dict[str, int]:
    """How many items the campaign holds, and how many people and groups they are assigned to."""
    return {
        "items": sum(load.total for load in loads.values()),
        "reviewers": len({reviewer for reviewer, _group in loads if reviewer is not None}),
        "groups": len({group for _reviewer, group in loads if group is not None}),
    }


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
        loads = review_loads(campaign, undecided_only=False)
        counts = _item_counts(loads)
        Campaign.objects.filter(pk=campaign.pk).update(items_total=counts["items"])
        campaign.items_total = counts["items"]
        recipients = recipients_for(loads)
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
