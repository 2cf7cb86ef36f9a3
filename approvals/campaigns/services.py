"""Writes of recertification campaigns. Every function takes ``actor=``, validates, changes the
rows and audits in the same transaction (DESIGN.md invariant 1).

- ``definition_save`` keeps a definition and its django-q2 schedule in step.
- ``campaign_create`` / ``campaign_launch_request`` / ``campaign_launch_run``: a run is created
  as a draft, claimed for launch (draft -> launching, a conditional UPDATE), and its items are
  made by the background task in keyset-paginated chunks, each chunk committed with the cursor;
  an interrupted launch resumes after the cursor and the unique constraints plus
  ``ignore_conflicts`` make a replayed chunk harmless. One email per reviewer (unique outbox
  key per campaign and reviewer) and one ``campaign.launched`` event close the launch.
- ``review_item_decide``: certify or revoke (a reason is required to revoke); revocations apply
  at once through ``inventory.services.grants_end_many`` or at the close, as the definition says.
- ``campaign_tick``: reminders (once per reminder point), escalation, and at the deadline the
  default action on every undecided item, in chunks, audited with the system as actor on
  behalf of the campaign owner.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from approvals.campaigns import permissions
from approvals.campaigns.models import (
    UNDECIDED,
    ApplyMode,
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    Decision,
    DefaultAction,
    Granularity,
    ItemStatus,
    ReviewerRule,
    ReviewItem,
    SecondStage,
)
from governance.actors import Actor
from governance.audit import EventSpec, audit_record, audit_record_many, snapshot
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, Unprocessable, ValidationFailed
from governance.models import OutboundEmail, User
from governance.services import email_enqueue
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters, single_line_errors
from governance.webhooks.events import emit_many as webhook_emit_many
from inventory.models import (
    Grant,
    GrantStatus,
    IntegrationKind,
    ResourceSystem,
    RiskTier,
    Sensitivity,
)
from inventory.services import grants_end_many

log = logging.getLogger(__name__)

LAUNCH_CHUNK = 2000
DEADLINE_CHUNK = 1000
EMAIL_LIST_LIMIT = 25

# --- Definitions ---------------------------------------------------------------------------------

DEFINITION_FIELDS = (
    "name",
    "description",
    "owner",
    "is_active",
    "risk_tiers",
    "kinds",
    "vendors",
    "sensitivities",
    "not_reviewed_days",
    "reviewer_rule",
    "reviewer_group",
    "fallback_group",
    "fallback_user",
    "forbid_self_review",
    "granularity",
    "second_stage",
    "second_stage_group",
    "duration_days",
    "default_action",
    "escalation_grace_days",
    "apply_mode",
    "reminder_days",
    "escalate_days_before",
    "recurrence",
)
M2M_FIELDS = ("resource_systems", "business_owners")
_AUDITED = DEFINITION_FIELDS


def _check_choices(errors: dict[str, list[str]], field: str, values: Any, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    if not isinstance(values, list) or any(v not in allowed for v in values):
        errors.setdefault(field, []).append(f"Choose among: {', '.join(sorted(allowed))}.")


def cron_valid(expr: str) -> bool:
    from croniter import croniter

    return len(expr.split()) == 5 and croniter.is_valid(expr)


def _validate_definition(values: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if not str(values.get("name") or "").strip():
        errors.setdefault("name", []).append("A name is required.")
    for field, messages in single_line_errors(values, ("name", "vendors", "recurrence")).items():
        errors.setdefault(field, []).extend(messages)
    if values.get("owner") is None:
        errors.setdefault("owner", []).append("An accountable owner is required.")
    _check_choices(errors, "risk_tiers", values.get("risk_tiers", []), RiskTier.values)
    _check_choices(errors, "kinds", values.get("kinds", []), IntegrationKind.values)
    _check_choices(errors, "sensitivities", values.get("sensitivities", []), Sensitivity.values)
    vendors = values.get("vendors", [])
    if not isinstance(vendors, list) or not all(isinstance(v, str) and v.strip() for v in vendors):
        errors.setdefault("vendors", []).append("A list of vendor names.")
    if values.get("reviewer_rule") == ReviewerRule.GROUP and values.get("reviewer_group") is None:
        errors.setdefault("reviewer_group", []).append("Name the group that reviews when the rule is a named group.")
    # Rules between fields, or beyond a value's form (a cron expression croniter refuses): an API
    # caller whose input matches the schema gets these as a 422 (Unprocessable), the rest as a 400.
    unprocessable: dict[str, list[str]] = {}
    duration = values.get("duration_days") or 0
    if duration < 1:
        errors.setdefault("duration_days", []).append("At least one day.")
    reminders = values.get("reminder_days", [])
    if not isinstance(reminders, list) or not all(isinstance(d, int) and d > 0 for d in reminders):
        errors.setdefault("reminder_days", []).append("Whole days before the deadline, each shorter than the duration.")
    elif not all(d < max(duration, 1) for d in reminders):
        unprocessable.setdefault("reminder_days", []).append(
            "Whole days before the deadline, each shorter than the duration."
        )
    escalate = values.get("escalate_days_before")
    if escalate is not None and escalate <= 0:
        errors.setdefault("escalate_days_before", []).append(
            "Whole days before the deadline, shorter than the duration."
        )
    elif escalate is not None and escalate >= max(duration, 1):
        unprocessable.setdefault("escalate_days_before", []).append(
            "Whole days before the deadline, shorter than the duration."
        )
    recurrence = str(values.get("recurrence") or "").strip()
    if recurrence and not cron_valid(recurrence):
        unprocessable.setdefault("recurrence", []).append(
            "A five-field cron expression, e.g. 0 6 1 1,4,7,10 * (quarterly)."
        )
    if errors:
        for field, messages in unprocessable.items():
            errors.setdefault(field, []).extend(messages)
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, errors=errors)
    if unprocessable:
        first = next(iter(unprocessable.values()))[0]
        raise Unprocessable(first, errors=unprocessable)


def definition_save(
    *, actor: Actor | User, values: Mapping[str, Any], definition: CampaignDefinition | None = None
) -> CampaignDefinition:
    """Create or change a definition (IAM admins) and create, update or remove its schedule
    (``campaign-definition-<id>``) in the same transaction."""
    resolved = Actor.coerce(actor)
    if not resolved.is_system and not permissions.can_manage_definitions(resolved.user):
        raise NotAllowed("Only IAM admins keep campaign definitions.")
    merged: dict[str, Any] = {}
    if definition is not None:
        merged = {f: getattr(definition, f) for f in DEFINITION_FIELDS}
    else:
        merged = {
            "is_active": True,
            "risk_tiers": [],
            "kinds": [],
            "vendors": [],
            "sensitivities": [],
            "reviewer_rule": ReviewerRule.BUSINESS_OWNER,
            "forbid_self_review": True,
            "granularity": Granularity.GRANT,
            "second_stage": SecondStage.NONE,
            "duration_days": 14,
            "default_action": DefaultAction.REVOKE,
            "escalation_grace_days": 7,
            "apply_mode": ApplyMode.IMMEDIATE,
            "reminder_days": [],
            "recurrence": "",
            "description": "",
            "owner": resolved.user if not resolved.is_system else None,
        }
    merged.update({k: v for k, v in values.items() if k in DEFINITION_FIELDS})
    merged["recurrence"] = str(merged.get("recurrence") or "").strip()
    merged["name"] = str(merged.get("name") or "").strip()
    _validate_definition(merged)
    with transaction.atomic():
        if CampaignDefinition.objects.filter(name=merged["name"]).exclude(pk=getattr(definition, "pk", None)).exists():
            raise Unprocessable.on("name", "A definition with this name exists.")
        before = snapshot(definition, _AUDITED) if definition is not None else None
        obj = definition or CampaignDefinition()
        for field, value in merged.items():
            setattr(obj, field, value)
        obj.updated_at = timezone.now()
        obj.save()
        for m2m in M2M_FIELDS:
            if m2m in values:
                getattr(obj, m2m).set(values[m2m])
        after = snapshot(obj, _AUDITED)
        audit_record(
            actor=resolved,
            action="campaign_definition.created" if before is None else "campaign_definition.changed",
            target=obj,
            owner=obj.owner,
            before=before,
            after=after,
        )
        definition_schedule_sync(obj)
    return obj


def definition_schedule_sync(definition: CampaignDefinition) -> None:
    """One django-q2 schedule per definition with a recurrence (unique name); none otherwise.
    The scheduled function makes a new run and launches it."""
    from croniter import croniter
    from django_q.models import Schedule

    if definition.recurrence and definition.is_active:
        next_run = croniter(definition.recurrence, timezone.now()).get_next(datetime)
        Schedule.objects.update_or_create(
            name=definition.schedule_name,
            defaults={
                "func": "approvals.campaigns.tasks.campaign_run_scheduled",
                "args": repr(definition.pk),
                "schedule_type": Schedule.CRON,
                "cron": definition.recurrence,
                "repeats": -1,
                "next_run": next_run,
                # The slot's date names the run, so a schedule firing twice makes one campaign.
                "intended_date_kwarg": "intended_date",
            },
        )
    else:
        Schedule.objects.filter(name=definition.schedule_name).delete()


# --- Campaign runs -------------------------------------------------------------------------------

_CAMPAIGN_AUDITED = ("name", "status", "deadline", "granularity", "default_action", "apply_mode", "second_stage")


def campaign_create(
    *, actor: Actor | User, definition: CampaignDefinition, name: str = "", run_key: str = ""
) -> Campaign:
    """A draft run of ``definition``; its behaviour is copied so later edits do not change it.
    With a ``run_key`` (a scheduled slot) the same slot returns the run it already made."""
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
    """Claim a draft for launch (draft -> launching, a conditional UPDATE that must touch one
    row) and hand the work to the background task after commit. Returns at once."""
    resolved = Actor.coerce(actor)
    if not resolved.is_system and not permissions.can_launch(resolved.user, campaign):
        raise NotAllowed("Only IAM admins and the campaign's owner can launch it.")
    with transaction.atomic():
        now = timezone.now()
        duration = campaign.definition.duration_days
        updated = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.DRAFT).update(
            status=CampaignStatus.LAUNCHING,
            launched_at=now,
            deadline=now + timedelta(days=duration),
            created_by=campaign.created_by or (None if resolved.is_system else resolved.user),
        )
        if updated != 1:
            current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
            raise IllegalTransition(f"Only a draft campaign can be launched (this one is {current}).")
        campaign.refresh_from_db()
        if enqueue:
            transaction.on_commit(lambda: _enqueue_launch(campaign.pk))
    return campaign


def _enqueue_launch(campaign_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("approvals.campaigns.tasks.campaign_launch", campaign_id, task_name=f"campaign-launch-{campaign_id}")
    except Exception:  # the sweep resumes launches left in "launching"
        log.exception("Could not enqueue the launch of campaign %s", campaign_id)


def selection_for(definition: CampaignDefinition, *, now: datetime | None = None) -> QuerySet[Grant]:
    """The active grants a definition covers (all of them when no criterion is set)."""
    now = now or timezone.now()
    qs = Grant.objects.filter(status=GrantStatus.ACTIVE)
    if definition.risk_tiers:
        qs = qs.filter(integration__risk_tier__in=definition.risk_tiers)
    if definition.kinds:
        qs = qs.filter(integration__kind__in=definition.kinds)
    if definition.vendors:
        qs = qs.filter(integration__vendor__in=definition.vendors)
    if definition.sensitivities:
        qs = qs.filter(scope__sensitivity__in=definition.sensitivities)
    systems = list(definition.resource_systems.values_list("pk", flat=True)) if definition.pk else []
    if systems:
        qs = qs.filter(scope__system_id__in=systems)
    owners = list(definition.business_owners.values_list("pk", flat=True)) if definition.pk else []
    if owners:
        qs = qs.filter(integration__business_owner_id__in=owners)
    if definition.not_reviewed_days:
        since = now - timedelta(days=definition.not_reviewed_days)
        recent = ReviewItem.objects.filter(integration_id=OuterRef("integration_id"), decided_at__gte=since)
        qs = qs.exclude(Exists(recent))
    return qs


@dataclass(frozen=True)
class Assignment:
    reviewer_id: int | None
    group_id: int | None
    reason: str


class ReviewerResolver:
    """Applies a definition's reviewer rule and fallback to plain values (no query per item):
    the people's active flags and managers and the resource systems' owners are read once."""

    def __init__(self, definition: CampaignDefinition, campaign_owner_id: int) -> None:
        self.d = definition
        self.campaign_owner_id = campaign_owner_id
        self.people: dict[int, tuple[bool, int | None]] = {
            pk: (active, manager) for pk, active, manager in User.objects.values_list("pk", "is_active", "manager_id")
        }
        self.system_owners: dict[int, list[int]] = defaultdict(list)
        if definition.reviewer_rule == ReviewerRule.SYSTEM_OWNER:
            through = ResourceSystem.owners.through
            for system_id, user_id in through.objects.order_by("user_id").values_list("resourcesystem_id", "user_id"):
                if self.active(user_id):
                    self.system_owners[system_id].append(user_id)

    def active(self, user_id: int | None) -> bool:
        return user_id is not None and self.people.get(user_id, (False, None))[0]

    def fallback(self, problem: str) -> Assignment:
        d = self.d
        if d.fallback_user_id and self.active(d.fallback_user_id):
            return Assignment(d.fallback_user_id, None, f"fallback: {problem}")
        if d.fallback_group_id:
            return Assignment(None, d.fallback_group_id, f"fallback group: {problem}")
        return Assignment(self.campaign_owner_id, None, f"campaign owner (no fallback set): {problem}")

    def resolve(
        self, *, business: int | None, technical: int | None, backup: int | None, system: int | None
    ) -> Assignment:
        rule = self.d.reviewer_rule
        if rule == ReviewerRule.GROUP:
            if self.d.reviewer_group_id:
                return Assignment(None, self.d.reviewer_group_id, "named group")
            return self.fallback("no group named")
        if rule == ReviewerRule.BUSINESS_OWNER:
            label, candidate = "business owner", business
        elif rule == ReviewerRule.TECHNICAL_OWNER:
            label, candidate = "technical owner", technical
        elif rule == ReviewerRule.OWNER_MANAGER:
            label, candidate = "business owner's manager", self.people.get(business or 0, (False, None))[1]
        else:
            owners = self.system_owners.get(system or 0, [])
            label, candidate = "resource system owner", owners[0] if owners else None
        if candidate is None:
            return self.fallback(f"no {label}")
        if not self.active(candidate):
            return self.fallback(f"the {label} left")
        active_owners = {u for u in (business, technical, backup) if self.active(u)}
        if self.d.forbid_self_review and active_owners == {candidate}:
            # The only owner would review their own integration alone.
            return self.fallback(f"the {label} is the integration's only owner")
        return Assignment(candidate, None, label)


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


def _is_critical(sensitivity: str, tier: str) -> bool:
    return sensitivity == Sensitivity.CRITICAL or tier == RiskTier.CRITICAL


def campaign_launch_run(*, campaign_id: int, chunk_size: int = LAUNCH_CHUNK) -> Campaign | None:
    """The background half of a launch: make the items in chunks, then email each reviewer once
    and mark the campaign running. Safe to run again after an interruption (see module doc).
    Returns None when the campaign is not launching (already done: nothing to do)."""
    campaign = Campaign.objects.select_related("definition", "owner").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.LAUNCHING:
        return None
    definition = campaign.definition
    selection = selection_for(definition, now=campaign.launched_at)
    if campaign.total_expected == 0 and campaign.cursor == 0:
        if campaign.granularity == Granularity.GRANT:
            expected = selection.count()
        else:
            expected = selection.order_by().values("integration_id").distinct().count()
        Campaign.objects.filter(pk=campaign.pk).update(total_expected=expected)
    resolver = ReviewerResolver(definition, campaign.owner_id)
    if campaign.granularity == Granularity.GRANT:
        _launch_per_grant(campaign, selection, resolver, chunk_size)
    else:
        _launch_per_integration(campaign, selection, resolver, chunk_size)
    return _launch_finish(campaign)


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


def _insert_items(rows: list[tuple[Any, ...]]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` with ``executemany``: the effect of
    ``bulk_create(ignore_conflicts=True)`` without a model instance per row and a statement per
    50 rows (SQLite's 999-parameter batches), which dominated a 100k launch. ``rows`` follow
    ``_ITEM_COLUMNS``."""
    if not rows:
        return
    qn = connection.ops.quote_name
    head = f"INSERT INTO {qn(ReviewItem._meta.db_table)} ({', '.join(qn(c) for c in _ITEM_COLUMNS)}) VALUES "
    one = f"({', '.join(['%s'] * len(_ITEM_COLUMNS))})"
    sql = head + one + " ON CONFLICT DO NOTHING"
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


def _item_row(
    campaign: Campaign, integration_id: int, grant_id: int | None, grant_ids: list[int], a: Assignment, critical: bool
) -> tuple[Any, ...]:
    json_value = ReviewItem._meta.get_field("grant_ids").get_db_prep_save(grant_ids, connection)
    return (
        campaign.pk,
        integration_id,
        grant_id,
        json_value,
        a.reviewer_id,
        a.group_id,
        a.reason,
        critical,
        ItemStatus.OPEN,
        "",
        "",
        False,
        False,
    )


def _save_chunk(campaign: Campaign, rows: list[tuple[Any, ...]], cursor: int, scanned: int) -> None:
    # The items and the cursor commit together: a resumed launch starts after the last chunk
    # that committed, and a replayed chunk is absorbed by the unique constraints.
    with transaction.atomic():
        _insert_items(rows)
        Campaign.objects.filter(pk=campaign.pk).update(cursor=cursor, processed=F("processed") + scanned)


def _launch_per_grant(campaign: Campaign, selection: QuerySet[Grant], resolver: ReviewerResolver, chunk: int) -> None:
    cursor = campaign.cursor
    empty = ReviewItem._meta.get_field("grant_ids").get_db_prep_save([], connection)
    while True:
        rows = list(selection.filter(pk__gt=cursor).order_by("pk").values_list(*_GRANT_FIELDS)[:chunk])
        if not rows:
            return
        items = []
        for pk, integration_id, business, technical, backup, system, sensitivity, tier in rows:
            a = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            items.append(
                (
                    campaign.pk,
                    integration_id,
                    pk,
                    empty,
                    a.reviewer_id,
                    a.group_id,
                    a.reason,
                    _is_critical(sensitivity, tier),
                    ItemStatus.OPEN,
                    "",
                    "",
                    False,
                    False,
                )
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
            _pk, _i, business, technical, backup, system, _s, _tier = rows[0]
            a = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            items.append(
                _item_row(
                    campaign, integration_id, None, [r[0] for r in rows], a, any(_is_critical(r[6], r[7]) for r in rows)
                )
            )
        cursor = ids[-1]
        _save_chunk(campaign, items, cursor, len(ids))


def _recipients_with_items(campaign: Campaign, *, undecided_only: bool) -> dict[int, list[tuple[str, int]]]:
    """user id -> [(integration name, number of items)] for everyone who must review something
    in ``campaign`` (group assignments expanded to the group's active members)."""
    qs = ReviewItem.objects.filter(campaign=campaign)
    if undecided_only:
        qs = qs.filter(status=ItemStatus.OPEN)
    rows = (
        qs.values("reviewer_id", "reviewer_group_id", "integration__name")
        .annotate(n=Count("pk"))
        .order_by("reviewer_id", "reviewer_group_id", "integration__name")
    )
    by_user: dict[int, list[tuple[str, int]]] = defaultdict(list)
    by_group: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for row in rows.iterator(chunk_size=2000):
        if row["reviewer_id"]:
            by_user[row["reviewer_id"]].append((row["integration__name"], row["n"]))
        elif row["reviewer_group_id"]:
            by_group[row["reviewer_group_id"]].append((row["integration__name"], row["n"]))
    if by_group:
        members = User.objects.filter(groups__in=list(by_group), is_active=True).values_list("pk", "groups")
        for user_id, group_id in members:
            if group_id in by_group:
                by_user[user_id].extend(by_group[group_id])
    return by_user


def _campaign_links(campaign: Campaign) -> dict[str, str]:
    return {
        "review_path": reverse("campaigns:review") + f"?campaign={campaign.pk}",
        "campaign_path": reverse("campaigns:campaign-detail", args=[campaign.pk]),
    }


def _email_reviewers(
    campaign: Campaign,
    recipients: Mapping[int, list[tuple[str, int]]],
    *,
    key_part: str,
    subject: str,
    template: str,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """One email per recipient; returns how many were newly queued (unique keys: never twice)."""
    if not recipients:
        return 0
    keys = {uid: f"campaign-{campaign.pk}-{key_part}-{uid}" for uid in recipients}
    already = set(OutboundEmail.objects.filter(key__in=list(keys.values())).values_list("key", flat=True))
    users = User.objects.in_bulk([uid for uid, key in keys.items() if key not in already])
    queued = 0
    for uid, user in users.items():
        lines = recipients[uid]
        total = sum(n for _name, n in lines)
        context = {
            "campaign": campaign,
            "lines": lines[:EMAIL_LIST_LIMIT],
            "more": max(len(lines) - EMAIL_LIST_LIMIT, 0),
            "total": total,
            **_campaign_links(campaign),
            **(extra or {}),
        }
        if email_enqueue(
            key=keys[uid],
            recipient=user,
            subject=subject.format(total=total, name=campaign.name),
            template=template,
            context=context,
        ):
            queued += 1
    return queued


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


def _launch_finish(campaign: Campaign) -> Campaign:
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.LAUNCHING).update(
            status=CampaignStatus.ACTIVE, launch_finished_at=timezone.now()
        )
        if updated != 1:
            raise Conflict("The campaign is no longer launching (another worker finished it).")
        campaign.refresh_from_db()
        counts = ReviewItem.objects.filter(campaign=campaign).aggregate(
            items=Count("pk"),
            reviewers=Count("reviewer_id", distinct=True),
            groups=Count("reviewer_group_id", distinct=True),
        )
        Campaign.objects.filter(pk=campaign.pk).update(items_total=counts["items"])
        campaign.items_total = counts["items"]
        recipients = _recipients_with_items(campaign, undecided_only=False)
        emails = _email_reviewers(
            campaign,
            recipients,
            key_part="assigned",
            subject="Recertification: {total} item(s) to review in {name}",
            template="campaign_assigned",
        )
        _emit_assigned(campaign)
        actor = Actor.coerce(campaign.created_by) if campaign.created_by else _system(campaign)
        audit_record(
            actor=actor,
            action="campaign.launched",
            target=campaign,
            owner=campaign.owner,
            after={
                "items": counts["items"],
                "reviewers": counts["reviewers"],
                "groups": counts["groups"],
                "recipients": len(recipients),
                "emails_queued": emails,
                "deadline": campaign.deadline,
                "granularity": campaign.granularity,
            },
        )
    return campaign


# --- Decisions -----------------------------------------------------------------------------------


def _apply_revocations(actor: Actor, items: Sequence[ReviewItem], reason: str) -> int:
    """End the grants of revoked items at once (bulk, audited as ``grant.revoked``) and mark
    the items applied. Grants already ended are skipped by ``grants_end_many``."""
    grant_ids = sorted({gid for item in items for gid in item.covered_grant_ids()})
    ended = grants_end_many(
        actor=actor, grant_ids=grant_ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
    )
    now = timezone.now()
    ReviewItem.objects.filter(pk__in=[i.pk for i in items]).update(applied_at=now)
    for item in items:
        item.applied_at = now
    return ended


_ITEM_AUDITED = ("status", "decision", "reviewer", "reviewer_group", "flagged", "applied_at")


def review_item_decide(*, actor: Actor | User, item: ReviewItem, decision: str, comment: str = "") -> ReviewItem:
    """A reviewer certifies (keeps) or revokes an item; revoking needs a reason. In the second
    stage the confirmation group confirms or overturns a keep. The integration's only owner never
    decides it alone when the definition forbids self-review. Locks the item; a decided item is
    a conflict."""
    resolved = Actor.coerce(actor)
    user = resolved.user
    if decision not in Decision.values:
        raise ValidationFailed.on("decision", "Choose certify or revoke.")
    comment = (comment or "").strip()
    if decision == Decision.REVOKE and not comment:
        raise ValidationFailed.on("comment", "Give a reason to revoke.")
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update().select_related("campaign__definition", "integration").get(pk=item.pk)
        )
        campaign = locked.campaign
        if campaign.status != CampaignStatus.ACTIVE:
            raise Conflict(f"The campaign is not running (it is {campaign.get_status_display().lower()}).")
        before = snapshot(locked, _ITEM_AUDITED)
        now = timezone.now()
        if locked.status == ItemStatus.OPEN:
            if not permissions.can_decide(user, locked):
                raise NotAllowed("Only the assigned reviewer decides this item.")
            integration = locked.integration
            owners = integration.owner_ids()
            if campaign.definition.forbid_self_review and owners == {user.pk}:
                raise NotAllowed("You are this integration's only owner: someone else must review it.")
            keep_needs_confirmation = campaign.second_stage == SecondStage.CRITICAL_KEEPS and locked.critical
            if decision == Decision.CERTIFY:
                locked.status = ItemStatus.AWAITING_CONFIRMATION if keep_needs_confirmation else ItemStatus.CERTIFIED
            else:
                locked.status = ItemStatus.REVOKED
            locked.decision, locked.decided_by, locked.decided_at, locked.comment = decision, user, now, comment
            action = "review_item.decided"
        elif locked.status == ItemStatus.AWAITING_CONFIRMATION:
            if not permissions.can_confirm(user, locked, campaign.definition.second_stage_group_id):
                raise NotAllowed("Only the confirmation group confirms this keep.")
            if locked.decided_by_id == user.pk:
                raise NotAllowed("The second stage must be someone other than the first reviewer.")
            locked.status = ItemStatus.CERTIFIED if decision == Decision.CERTIFY else ItemStatus.REVOKED
            locked.decision = decision
            locked.confirmed_by, locked.confirmed_at = user, now
            if comment:
                locked.comment = f"{locked.comment}\n[second stage] {comment}".strip()
            action = "review_item.confirmed"
        else:
            raise Conflict(f"This item is already decided ({locked.get_status_display().lower()}).")
        locked.save(
            update_fields=["status", "decision", "decided_by", "decided_at", "comment", "confirmed_by", "confirmed_at"]
        )
        audit_record(
            actor=resolved,
            action=action,
            target=locked,
            owner=campaign.owner,
            before=before,
            after={**snapshot(locked, _ITEM_AUDITED), "decision": decision, "campaign": campaign.pk},
            reason=comment,
        )
        if locked.status == ItemStatus.REVOKED and campaign.apply_mode == ApplyMode.IMMEDIATE:
            _apply_revocations(resolved, [locked], f"Recertification {campaign.name}: {comment}")
    return locked


@dataclass
class BulkResult:
    decided: list[int]
    failed: dict[int, str]


def review_items_decide_many(
    *, actor: Actor | User, items: Iterable[ReviewItem], decision: str, comment: str = ""
) -> BulkResult:
    """Decide many items with one comment; each is its own decision (locked, audited). Items
    that cannot be decided are reported, never skipped quietly."""
    from governance.exceptions import DomainError

    result = BulkResult(decided=[], failed={})
    for item in items:
        try:
            review_item_decide(actor=actor, item=item, decision=decision, comment=comment)
            result.decided.append(item.pk)
        except DomainError as exc:
            result.failed[item.pk] = exc.detail
    return result


# --- Reminders, escalation, deadline ------------------------------------------------------------


def _system(campaign: Campaign) -> Actor:
    return Actor.system(on_behalf_of=campaign.owner)


def campaign_send_reminders(*, campaign: Campaign, now: datetime | None = None) -> int:
    """At each reminder point (days before the deadline) email the reviewers who still have
    undecided items — nobody else. A point is reminded once (unique keys); when the sweep
    missed a point it sends only the latest one passed."""
    now = now or timezone.now()
    if campaign.status != CampaignStatus.ACTIVE or campaign.deadline is None or now >= campaign.deadline:
        return 0
    passed = [d for d in campaign.reminder_days if campaign.deadline - timedelta(days=d) <= now]
    if not passed:
        return 0
    point = min(passed)
    recipients = _recipients_with_items(campaign, undecided_only=True)
    with transaction.atomic():
        return _email_reviewers(
            campaign,
            recipients,
            key_part=f"reminder-{point}d",
            template="campaign_reminder",
            subject="Reminder: {total} item(s) still to review in {name}",
            extra={"days_left": point},
        )


def _escalation_target(campaign: Campaign, reviewer: User | None) -> tuple[list[User], str]:
    definition = campaign.definition
    if reviewer is not None and reviewer.manager_id and reviewer.manager and reviewer.manager.is_active:
        return [reviewer.manager], "manager"
    if definition.fallback_user_id and definition.fallback_user and definition.fallback_user.is_active:
        return [definition.fallback_user], "fallback user"
    if definition.fallback_group_id:
        return list(User.objects.filter(groups=definition.fallback_group_id, is_active=True)), "fallback group"
    return [campaign.owner], "campaign owner"


def campaign_escalate_reviewers(*, campaign: Campaign, now: datetime | None = None) -> int:
    """At the escalation point, for each reviewer who still has open items: tell their manager
    (or the fallback) once, mark the items escalated and audit it. Returns reviewers escalated."""
    now = now or timezone.now()
    if (
        campaign.status != CampaignStatus.ACTIVE
        or campaign.deadline is None
        or campaign.escalate_days_before is None
        or now < campaign.deadline - timedelta(days=campaign.escalate_days_before)
        or now >= campaign.deadline
    ):
        return 0
    reviewer_ids = list(
        ReviewItem.objects.filter(
            campaign=campaign, status=ItemStatus.OPEN, escalated_at__isnull=True, reviewer__isnull=False
        )
        .order_by()
        .values_list("reviewer_id", flat=True)
        .distinct()
    )
    escalated = 0
    for reviewer in User.objects.filter(pk__in=reviewer_ids).select_related("manager"):
        with transaction.atomic():
            marked = ReviewItem.objects.filter(
                campaign=campaign, reviewer=reviewer, status=ItemStatus.OPEN, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not marked:
                continue
            targets, kind = _escalation_target(campaign, reviewer)
            for target in targets:
                email_enqueue(
                    key=f"campaign-{campaign.pk}-escalation-{reviewer.pk}-{target.pk}",
                    recipient=target,
                    subject=f"Escalation: {reviewer.label} has {marked} undecided review item(s) in {campaign.name}",
                    template="campaign_escalation",
                    context={"campaign": campaign, "reviewer": reviewer, "count": marked, **_campaign_links(campaign)},
                )
            audit_record(
                actor=_system(campaign),
                action="campaign.reviewer_escalated",
                target=campaign,
                owner=campaign.owner,
                after={
                    "reviewer": reviewer.username,
                    "open_items": marked,
                    "escalated_to": [t.username for t in targets],
                    "target_kind": kind,
                },
            )
            escalated += 1
    return escalated


@dataclass(frozen=True)
class DefaultPreview:
    action: str
    items: int
    grants: int
    sentence: str


def default_action_preview(campaign: Campaign) -> DefaultPreview:
    """Exactly what the default action will do at the deadline to what is undecided now."""
    open_items = ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED)
    items = open_items.count()
    if campaign.granularity == Granularity.GRANT:
        grants = items
    else:
        grants = sum(len(ids) for ids in open_items.values_list("grant_ids", flat=True).iterator(chunk_size=2000))
    action = campaign.default_action
    if action == DefaultAction.ESCALATE and campaign.escalated_at is not None:
        action = DefaultAction.REVOKE  # after the grace period, what is still open is revoked
    if action == DefaultAction.REVOKE:
        sentence = f"These {grants} grant(s) will be revoked."
    elif action == DefaultAction.KEEP_FLAG:
        sentence = f"These {grants} grant(s) will be kept and flagged for follow-up."
    else:
        sentence = (
            f"These {items} item(s) ({grants} grant(s)) will be escalated to the reviewers' managers or the fallback, "
            f"with {campaign.definition.escalation_grace_days} more day(s); then what is still open is revoked."
        )
    return DefaultPreview(action=action, items=items, grants=grants, sentence=sentence)


def _undecided_chunks(campaign: Campaign, size: int) -> Iterable[list[int]]:
    while True:
        ids = list(
            ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return
        yield ids


def _default_revoke_or_keep(campaign: Campaign, action: str, size: int) -> int:
    actor = _system(campaign)
    done = 0
    reason = f"Not decided by the deadline of {campaign.name}"
    for ids in _undecided_chunks(campaign, size):
        with transaction.atomic():
            chunk = list(ReviewItem.objects.select_for_update().filter(pk__in=ids, status__in=UNDECIDED))
            if not chunk:
                continue
            now = timezone.now()
            new_status = ItemStatus.REVOKED if action == DefaultAction.REVOKE else ItemStatus.KEPT_FLAGGED
            ReviewItem.objects.filter(pk__in=[i.pk for i in chunk], status__in=UNDECIDED).update(
                status=new_status,
                by_default=True,
                decided_at=now,
                flagged=new_status == ItemStatus.KEPT_FLAGGED,
                decision=Decision.REVOKE if new_status == ItemStatus.REVOKED else Decision.CERTIFY,
                comment=reason,
            )
            events = []
            for item in chunk:
                before = {"status": item.status, "reviewer": item.reviewer_id, "reviewer_group": item.reviewer_group_id}
                item.status, item.by_default, item.decided_at = new_status, True, now
                events.append(
                    EventSpec(
                        action="review_item.defaulted",
                        target=item,
                        owner=campaign.owner,
                        before=before,
                        after={
                            "status": new_status,
                            "default_action": action,
                            "campaign": campaign.pk,
                            "grants": item.covered_grant_ids(),
                        },
                        reason=reason,
                    )
                )
            audit_record_many(actor=actor, events=events)
            if new_status == ItemStatus.REVOKED:
                _apply_revocations(actor, chunk, reason)
            done += len(chunk)
    return done


def _default_escalate(campaign: Campaign, size: int) -> int:
    """Reassign every undecided item to its reviewer's manager (or the fallback) and extend the
    deadline by the grace period; the next deadline revokes what is still open."""
    actor = _system(campaign)
    grace = timedelta(days=campaign.definition.escalation_grace_days)
    people = {
        u.pk: u
        for u in User.objects.filter(
            pk__in=ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).values("reviewer_id")
        ).select_related("manager")
    }
    done = 0
    last = 0
    with transaction.atomic():
        while True:
            chunk = list(
                ReviewItem.objects.select_for_update()
                .filter(campaign=campaign, status__in=UNDECIDED, pk__gt=last)
                .order_by("pk")[:size]
            )
            if not chunk:
                break
            now = timezone.now()
            events = []
            for item in chunk:
                targets, kind = _escalation_target(campaign, people.get(item.reviewer_id or 0))
                before = {"reviewer": item.reviewer_id, "reviewer_group": item.reviewer_group_id}
                if kind == "fallback group":
                    item.reviewer, item.reviewer_group_id = None, campaign.definition.fallback_group_id
                else:
                    item.reviewer, item.reviewer_group_id = targets[0], None
                item.escalated_at = now
                item.assigned_reason = f"escalated at the deadline to the {kind}"
                item.status = ItemStatus.OPEN
                events.append(
                    EventSpec(
                        action="review_item.escalated",
                        target=item,
                        owner=campaign.owner,
                        before=before,
                        after={
                            "reviewer": item.reviewer_id,
                            "reviewer_group": item.reviewer_group_id,
                            "target_kind": kind,
                        },
                    )
                )
            ReviewItem.objects.bulk_update(
                chunk, ["reviewer", "reviewer_group", "escalated_at", "assigned_reason", "status"]
            )
            audit_record_many(actor=actor, events=events)
            done += len(chunk)
            last = chunk[-1].pk
        Campaign.objects.filter(pk=campaign.pk).update(escalated_at=timezone.now(), deadline=F("deadline") + grace)
        campaign.refresh_from_db()
        audit_record(
            actor=actor,
            action="campaign.escalated",
            target=campaign,
            owner=campaign.owner,
            after={"items": done, "new_deadline": campaign.deadline},
        )
        recipients = _recipients_with_items(campaign, undecided_only=True)
        _email_reviewers(
            campaign,
            recipients,
            key_part="escalated-assigned",
            template="campaign_assigned",
            subject="Escalated to you: {total} item(s) to review in {name}",
            extra={"escalated": True},
        )
    return done


def campaign_close(*, campaign: Campaign, size: int = DEADLINE_CHUNK) -> Campaign:
    """At the deadline: apply the default action to every undecided item (in chunks; each item
    audited with the system as actor on behalf of the owner), apply revocations held for the
    close, then close the campaign (active -> closed, must touch one row)."""
    campaign = Campaign.objects.select_related("definition", "owner").get(pk=campaign.pk)
    if campaign.status != CampaignStatus.ACTIVE:
        raise IllegalTransition(f"Only a running campaign can be closed (this one is {campaign.status}).")
    action = campaign.default_action
    if action == DefaultAction.ESCALATE:
        if (
            campaign.escalated_at is None
            and ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).exists()
        ):
            _default_escalate(campaign, size)
            return campaign  # still running until the extended deadline
        action = DefaultAction.REVOKE
    defaulted = _default_revoke_or_keep(campaign, action, size)
    actor = _system(campaign)
    # Reviewers' revocations kept for the close (apply mode "at close").
    held = 0
    while True:
        chunk = list(
            ReviewItem.objects.filter(campaign=campaign, status=ItemStatus.REVOKED, applied_at__isnull=True).order_by(
                "pk"
            )[:size]
        )
        if not chunk:
            break
        with transaction.atomic():
            _apply_revocations(
                actor, chunk, f"Recertification {campaign.name}: revoked by the reviewer, applied at the close"
            )
        held += len(chunk)
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.ACTIVE).update(
            status=CampaignStatus.CLOSED, closed_at=timezone.now()
        )
        if updated != 1:
            raise Conflict("The campaign was closed by another worker.")
        campaign.refresh_from_db()
        summary = dict(
            ReviewItem.objects.filter(campaign=campaign).order_by().values_list("status").annotate(n=Count("pk"))
        )
        audit_record(
            actor=actor,
            action="campaign.closed",
            target=campaign,
            owner=campaign.owner,
            before={"status": CampaignStatus.ACTIVE},
            after={
                "status": CampaignStatus.CLOSED,
                "by_status": summary,
                "defaulted": defaulted,
                "default_action": action,
                "applied_at_close": held,
            },
        )
    return campaign


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
    """Drop a draft that was never launched (draft -> cancelled)."""
    resolved = Actor.coerce(actor)
    if not permissions.can_launch(resolved.user, campaign):
        raise NotAllowed("Only IAM admins and the campaign's owner can cancel it.")
    with transaction.atomic():
        if (
            Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.DRAFT).update(status=CampaignStatus.CANCELLED)
            != 1
        ):
            raise IllegalTransition("Only a draft campaign can be cancelled.")
        audit_record(actor=resolved, action="campaign.cancelled", target=campaign, owner=campaign.owner, reason=reason)
    campaign.refresh_from_db()
    return campaign


def group_choices() -> QuerySet[Group]:
    return Group.objects.order_by("name")
