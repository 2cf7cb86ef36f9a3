"""Campaign definitions: what a recertification covers, who reviews it and what happens to what
nobody decides. IAM admins keep them; a definition and its django-q2 schedule change together."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.campaigns import permissions
from approvals.campaigns.models import (
    DEFINITION_FIELDS,
    DEFINITION_M2M_FIELDS,
    ApplyMode,
    CampaignDefinition,
    DefaultAction,
    Granularity,
    ReviewerRule,
    SecondStage,
)
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import Conflict, NotAllowed, Unprocessable, ValidationFailed
from governance.models import User
from governance.validators import single_line_errors
from inventory.choices import IntegrationKind, RiskTier, Sensitivity

# The definition's own columns (the many-to-many fields are set after the row is saved); a change
# audits them before and after.
SCALAR_FIELDS = tuple(field for field in DEFINITION_FIELDS if field not in DEFINITION_M2M_FIELDS)

Errors = dict[str, list[str]]


def _check_choices(errors: Errors, field: str, values: Any, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    if not isinstance(values, list) or any(value not in allowed for value in values):
        errors.setdefault(field, []).append(f"Choose among: {', '.join(sorted(allowed))}.")


def cron_valid(expr: str) -> bool:
    from croniter import croniter

    return len(expr.split()) == 5 and bool(croniter.is_valid(expr))


def _selection_errors(values: Mapping[str, Any]) -> Errors:
    """Rules on each value's form: the name, the owner, the selection and the reviewer group."""
    errors: Errors = {}
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
    return errors


def _timing_errors(values: Mapping[str, Any]) -> tuple[Errors, Errors]:
    """Rules on the duration, reminders, escalation point and recurrence: the errors of a value's
    form, and those between fields or beyond a value's form (a cron expression croniter refuses),
    which an API caller whose input matches the schema gets as a 422 (Unprocessable)."""
    errors: Errors = {}
    unprocessable: Errors = {}
    duration = values.get("duration_days") or 0
    if duration < 1:
        errors.setdefault("duration_days", []).append("At least one day.")
    reminders = values.get("reminder_days", [])
    reminder_message = "Whole days before the deadline, each shorter than the duration."
    if not isinstance(reminders, list) or not all(isinstance(d, int) and d > 0 for d in reminders):
        errors.setdefault("reminder_days", []).append(reminder_message)
    elif not all(d < max(duration, 1) for d in reminders):
        unprocessable.setdefault("reminder_days", []).append(reminder_message)
    escalate = values.get("escalate_days_before")
    escalate_message = "Whole days before the deadline, shorter than the duration."
    if escalate is not None and escalate <= 0:
        errors.setdefault("escalate_days_before", []).append(escalate_message)
    elif escalate is not None and escalate >= max(duration, 1):
        unprocessable.setdefault("escalate_days_before", []).append(escalate_message)
    recurrence = str(values.get("recurrence") or "").strip()
    if recurrence and not cron_valid(recurrence):
        unprocessable.setdefault("recurrence", []).append(
            "A five-field cron expression, e.g. 0 6 1 1,4,7,10 * (quarterly)."
        )
    return errors, unprocessable


def _validate_definition(values: Mapping[str, Any]) -> None:
    """Every error of the input at once: a 400 (ValidationFailed) when any value breaks its
    form, with the rules beyond the form added; a 422 (Unprocessable) when only those fail."""
    errors = _selection_errors(values)
    timing, unprocessable = _timing_errors(values)
    for field, messages in timing.items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        for field, messages in unprocessable.items():
            errors.setdefault(field, []).extend(messages)
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    if unprocessable:
        raise Unprocessable(next(iter(unprocessable.values()))[0], errors=unprocessable)


def _new_definition_values(resolved: Actor) -> dict[str, Any]:
    """What a new definition holds for every field its editor leaves out."""
    return {
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


def _merged_values(resolved: Actor, values: Mapping[str, Any], definition: CampaignDefinition | None) -> dict[str, Any]:
    """The definition's columns after the change: its current values (or the defaults of a new
    one) with ``values`` applied, names and recurrence trimmed."""
    if definition is not None:
        merged = {field: getattr(definition, field) for field in SCALAR_FIELDS}
    else:
        merged = _new_definition_values(resolved)
    merged.update({key: value for key, value in values.items() if key in SCALAR_FIELDS})
    merged["recurrence"] = str(merged.get("recurrence") or "").strip()
    merged["name"] = str(merged.get("name") or "").strip()
    return merged


def definition_save(
    *, actor: Actor | User, values: Mapping[str, Any], definition: CampaignDefinition | None = None
) -> CampaignDefinition:
    """Create or change a definition (IAM admins) and create, update or remove its schedule
    (``campaign-definition-<id>``) in the same transaction. Names are unique."""
    resolved = Actor.coerce(actor)
    if not resolved.is_system and not permissions.can_manage_definitions(resolved.user):
        raise NotAllowed("Only IAM admins keep campaign definitions.")
    merged = _merged_values(resolved, values, definition)
    _validate_definition(merged)
    with transaction.atomic():
        namesakes = CampaignDefinition.objects.filter(name=merged["name"])
        if definition is not None:
            namesakes = namesakes.exclude(pk=definition.pk)
        if namesakes.exists():
            raise Unprocessable.on("name", "A definition with this name exists.")
        before = snapshot(definition, SCALAR_FIELDS) if definition is not None else None
        saved = definition or CampaignDefinition()
        for field, value in merged.items():
            setattr(saved, field, value)
        saved.updated_at = timezone.now()
        saved.save()
        for m2m in DEFINITION_M2M_FIELDS:
            if m2m in values:
                getattr(saved, m2m).set(values[m2m])
        audit_record(
            actor=resolved,
            action="campaign_definition.created" if before is None else "campaign_definition.changed",
            target=saved,
            owner=saved.owner,
            before=before,
            after=snapshot(saved, SCALAR_FIELDS),
        )
        definition_schedule_sync(saved)
    return saved


def definition_delete(*, actor: Actor | User, definition: CampaignDefinition) -> CampaignDefinition:
    """Delete a definition that never ran (IAM admins), with its schedule, audited; returns it as
    it was. One with runs is kept for their record: deactivate it instead (a conflict)."""
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_definitions(resolved.user):
        raise NotAllowed("Only IAM admins keep campaign definitions.")
    with transaction.atomic():
        locked = CampaignDefinition.objects.select_for_update().filter(pk=definition.pk).first()
        if locked is None:
            return definition  # deleted meanwhile: the outcome asked for holds
        if locked.campaigns.exists():
            raise Conflict("This definition has campaigns on record: untick “Active” to stop its runs instead.")
        audit_record(
            actor=resolved,
            action="campaign_definition.deleted",
            target=locked,
            owner=locked.owner,
            before=snapshot(locked, SCALAR_FIELDS),
        )
        locked.is_active = False
        definition_schedule_sync(locked)
        locked.delete()
    return locked


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
