"""The inventory's controls (``governance.controls.registry``), registered from its
``AppConfig.ready``: named owners, explainable risk tiering, time-bound grants, orphan handling,
the kill switch and workload identity.

A control's figures are measured with one or two aggregate queries over indexed columns,
whatever the size of the inventory. The records behind a figure are named subsets (``INTEGRATION_SUBSETS``,
``GRANT_SUBSETS``): the same condition counts them, streams them into the evidence pack and
filters the portal's lists (``?evidence=<key>`` on the integration list and the grant
endpoint), so a figure, its records and its link always agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from governance.controls.kernel_controls import share
from governance.controls.registry import HIGHER, LOWER, Control, Figure, Threshold, register_control
from governance.models import AuditEvent, User
from inventory import risk
from inventory.choices import GrantStatus, IntegrationStatus, RiskTier
from inventory.dashboard_panels import standing_credentials
from inventory.models import Credential, Grant, Integration

# How the audit trail names integrations, and the events that flag and suspend them.
INTEGRATION_TARGET = "inventory.integration"
ORPHANED_ACTION = "integration.orphaned"
SUSPENDED_ACTION = "integration.suspended"

# An orphaned integration must have a new owner within this many days.
ORPHAN_DAYS = 30
# The daily risk review rescores every integration: a score may lag a credential's 90th day
# without rotation by up to a day; two days' lag means the review did not run.
RISK_REVIEW_GRACE = timedelta(days=2)
# The expiry sweep ends grants every five minutes: an active grant an hour past its end is a gap.
EXPIRY_GRACE = timedelta(hours=1)
# The kill switch's record is read over this many days of suspensions.
SUSPENSION_WINDOW_DAYS = 90
HIGH_TIERS = (RiskTier.HIGH, RiskTier.CRITICAL)


# --- The records behind figures: named subsets ----------------------------------------------------


@dataclass(frozen=True)
class Subset:
    """A named condition on integrations (or grants): a figure counts it, the evidence pack
    streams it, the list filters by it (``?evidence=<key>``). ``condition`` is built when
    asked, so moments in it ("30 days ago") are always now's."""

    key: str
    label: str
    condition: Callable[[], Q]


def _active_people() -> QuerySet[User, Any]:
    """The ids of active people (not service accounts): a subquery the database runs once and
    hashes, rather than once per integration."""
    return User.objects.filter(is_active=True, is_service_account=False).values("pk")


def _owner_inactive() -> Q:
    return ~Q(business_owner_id__in=_active_people())


def _no_second_owner() -> Q:
    """Nobody beside the business owner answers for it: no technical or backup owner who is an
    active person other than the business owner. (Negated, each owner column's test also
    requires it to be set, so an empty role counts as no owner.)"""
    people = _active_people()
    technical = Q(technical_owner_id__in=people) & ~Q(technical_owner_id=F("business_owner_id"))
    backup = Q(backup_owner_id__in=people) & ~Q(backup_owner_id=F("business_owner_id"))
    return ~(technical | backup)


def _tier_explained() -> Q:
    """Its stored tier is the tier of its stored score, and a score above zero lists the factors
    that make it (each with the sentence a reviewer checks)."""
    bands = Q()
    ceiling: int | None = None
    for floor, tier in risk.TIER_THRESHOLDS:  # highest first
        band = Q(risk_tier=tier, risk_score__gte=floor)
        if ceiling is not None:
            band &= Q(risk_score__lt=ceiling)
        bands |= band
        ceiling = floor
    return bands & (Q(risk_score=0) | ~Q(risk_factors=[]))


def _tier_unexplained() -> Q:
    return ~_tier_explained()


def _score_outdated() -> Q:
    """A credential passed its rotation age (with the daily review's grace) and the stored
    factors still do not count it: the score is older than the rules' view of today."""
    overdue = timezone.now() - risk.ROTATION_MAX_AGE - RISK_REVIEW_GRACE
    stale = Credential.objects.filter(integration=OuterRef("pk")).filter(
        Q(last_rotated_at__lt=overdue) | Q(last_rotated_at__isnull=True, created_at__lt=overdue)
    )
    return Q(Exists(stale)) & ~Q(risk_factors__icontains='"credential_not_rotated"')


def _identity_unproven() -> Q:
    """No workload binding, or one no token has proved yet (``IdentityStatus`` other than proven)."""
    return Q(workload_binding__first_verified_at__isnull=True)


def _high_risk_unproven() -> Q:
    return Q(risk_tier__in=HIGH_TIERS) & _identity_unproven()


def _holds_grants() -> Q:
    return Q(Exists(Grant.objects.filter(integration=OuterRef("pk"), status=GrantStatus.ACTIVE)))


def _orphan_events() -> QuerySet[AuditEvent]:
    """The ``integration.orphaned`` events of the outer integration (by the audit trail's index
    on target type and id)."""
    return AuditEvent.objects.filter(
        target_type=INTEGRATION_TARGET, target_id=Cast(OuterRef("pk"), CharField()), action=ORPHANED_ACTION
    )


def orphaned_since() -> Coalesce:
    """When the integration was last flagged orphaned: its latest ``integration.orphaned`` event
    (the flag is set only with one), or, without one, its registration — the oldest it can be."""
    latest = _orphan_events().order_by("-id").values("created_at")[:1]
    return Coalesce(Subquery(latest, output_field=DateTimeField()), F("created_at"))


def _in_service_orphan() -> Q:
    return Q(orphaned=True) & ~Q(status=IntegrationStatus.RETIRED)


def _orphaned_long() -> Q:
    """Orphaned (and not retired) for more than ``ORPHAN_DAYS`` days: flagged before the cutoff
    and not again since."""
    cutoff = timezone.now() - timedelta(days=ORPHAN_DAYS)
    flagged_before = Q(Exists(_orphan_events())) | Q(created_at__lt=cutoff)
    return _in_service_orphan() & ~Q(Exists(_orphan_events().filter(created_at__gte=cutoff))) & flagged_before


def _holds_standing_credentials() -> Q:
    """A long-lived credential (the dashboard's standing credentials) is recorded on it now."""
    return Q(Exists(standing_credentials(timezone.now()).filter(integration=OuterRef("pk"))))


INTEGRATION_SUBSETS: dict[str, Subset] = {
    subset.key: subset
    for subset in (
        Subset("owner_inactive", "Business owner is not an active person", _owner_inactive),
        Subset("no_second_owner", "No active technical or backup owner", _no_second_owner),
        Subset("tier_unexplained", "Risk tier not explained by its score and factors", _tier_unexplained),
        Subset("score_outdated", "Risk score misses an overdue credential rotation", _score_outdated),
        Subset("identity_unproven", "Workload identity not proven", _identity_unproven),
        Subset("high_risk_unproven", "High or critical risk, identity not proven", _high_risk_unproven),
        Subset("holds_grants", "Holds an active grant", _holds_grants),
        Subset("orphaned_long", f"Orphaned for more than {ORPHAN_DAYS} days (not retired)", _orphaned_long),
        Subset("standing_credentials", "Holds a long-lived credential", _holds_standing_credentials),
    )
}


def _overdue_grant() -> Q:
    return Q(expires_at__lt=timezone.now() - EXPIRY_GRACE)


GRANT_SUBSETS: dict[str, Subset] = {
    subset.key: subset
    for subset in (
        Subset("open_ended", "No end date", lambda: Q(expires_at__isnull=True)),
        Subset("overdue", "Past its end date by more than an hour", _overdue_grant),
    )
}


def subset_choices(subsets: Mapping[str, Subset]) -> list[tuple[str, str]]:
    """The ``evidence`` filter's choices."""
    return [(subset.key, subset.label) for subset in subsets.values()]


# --- Shared helpers -------------------------------------------------------------------------------


def _list_url(**query: str) -> str:
    return f"{reverse('inventory:list')}?{urlencode(query)}"


def _grants_url(evidence: str) -> str:
    return f"{reverse('grant-list')}?{urlencode({'active': 'true', 'evidence': evidence})}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _active() -> QuerySet[Integration]:
    return Integration.objects.filter(status=IntegrationStatus.ACTIVE)


def integration_records(rows: QuerySet[Integration], **extra: Any) -> Callable[[], Iterator[dict[str, Any]]]:
    """The records of ``rows`` for the evidence pack, streamed: one flat dict per integration
    (owners by username, dates in ISO 8601), plus ``extra`` annotations."""

    def records() -> Iterator[dict[str, Any]]:
        columns = ("id", "name", "status", "risk_tier", "risk_score")
        people = ("business_owner__username", "technical_owner__username", "backup_owner__username")
        listed = rows.annotate(**extra).order_by("name", "id").values(*columns, *people, "updated_at", *extra)
        for row in listed.iterator(chunk_size=2000):
            record = {column: row[column] for column in columns}
            record.update({name.split("__")[0]: row[name] or "" for name in people})
            record["updated_at"] = _iso(row["updated_at"])
            record.update({name: _iso(row[name]) if isinstance(row[name], datetime) else row[name] for name in extra})
            yield record

    return records


def _grant_records(rows: QuerySet[Grant]) -> Callable[[], Iterator[dict[str, Any]]]:
    def records() -> Iterator[dict[str, Any]]:
        listed = rows.order_by("integration__name", "integration_id", "id").values(
            "id",
            "integration_id",
            "integration__name",
            "scope__code",
            "status",
            "granted_at",
            "expires_at",
            "source_type",
            "source_id",
        )
        for row in listed.iterator(chunk_size=2000):
            yield {
                "id": row["id"],
                "integration_id": row["integration_id"],
                "integration": row["integration__name"],
                "scope": row["scope__code"],
                "status": row["status"],
                "granted_at": _iso(row["granted_at"]),
                "expires_at": _iso(row["expires_at"]),
                "source": f"{row['source_type']}:{row['source_id']}",
            }

    return records


@dataclass(frozen=True)
class _Share:
    """A share of active integrations meeting a condition; the records are those that miss it."""

    key: str
    label: str
    threshold: Threshold
    gap: str  # a key of INTEGRATION_SUBSETS
    sentence: str  # "{met} of {total} active integrations ..."


def _active_share(spec: _Share, total: int, missing: int) -> Figure:
    subset = INTEGRATION_SUBSETS[spec.gap]
    if total == 0:
        return Figure(
            key=spec.key,
            label=spec.label,
            value=None,
            threshold=spec.threshold,
            detail="No integration is active: nothing to measure.",
        )
    return Figure(
        key=spec.key,
        label=spec.label,
        value=share(total - missing, total),
        threshold=spec.threshold,
        unit="%",
        better=HIGHER,
        detail=spec.sentence.format(met=total - missing, total=total)
        + (f" The list shows the {missing} that do not." if missing else ""),
        records_url=_list_url(status=IntegrationStatus.ACTIVE, evidence=subset.key),
        records=integration_records(_active().filter(subset.condition())),
    )


def _active_count(key: str, label: str, gap: str, count: int, sentence: str) -> Figure:
    """A count of active integrations that should be none."""
    subset = INTEGRATION_SUBSETS[gap]
    return Figure(
        key=key,
        label=label,
        value=count,
        threshold=Threshold(met=0),
        unit="count",
        better=LOWER,
        detail=sentence.format(count=count),
        records_url=_list_url(status=IntegrationStatus.ACTIVE, evidence=subset.key),
        records=integration_records(_active().filter(subset.condition())),
    )


# --- Named owners ---------------------------------------------------------------------------------

OWNER_SHARE = _Share(
    key="named-owners.active_owner_share",
    label="Active integrations whose business owner is an active person",
    threshold=Threshold(met=98, partly=90),
    gap="owner_inactive",
    sentence="{met} of {total} active integrations have an active person as business owner.",
)
SECOND_OWNER_SHARE = _Share(
    key="named-owners.second_owner_share",
    label="Active integrations with a second named owner (technical or backup)",
    threshold=Threshold(met=90, partly=75),
    gap="no_second_owner",
    sentence="{met} of {total} active integrations have an active technical or backup owner beside the business owner.",
)


def named_owners_evidence() -> list[Figure]:
    counts = _active().aggregate(
        total=Count("pk"),
        owner_gap=Count("pk", filter=_owner_inactive()),
        second_gap=Count("pk", filter=_no_second_owner()),
    )
    return [
        _active_share(OWNER_SHARE, counts["total"], counts["owner_gap"]),
        _active_share(SECOND_OWNER_SHARE, counts["total"], counts["second_gap"]),
    ]


# --- Explainable risk tiering ---------------------------------------------------------------------

EXPLAINED_SHARE = _Share(
    key="risk-tiering.explained_share",
    label="Active integrations whose risk tier is explained by its recorded factors",
    threshold=Threshold(met=100, partly=95),
    gap="tier_unexplained",
    sentence="{met} of {total} active integrations carry the tier of their score, and the factors behind any "
    "score above zero.",
)


def risk_tiering_evidence() -> list[Figure]:
    counts = _active().aggregate(
        total=Count("pk"),
        unexplained=Count("pk", filter=_tier_unexplained()),
        outdated=Count("pk", filter=_score_outdated()),
    )
    return [
        _active_share(EXPLAINED_SHARE, counts["total"], counts["unexplained"]),
        _active_count(
            "risk-tiering.outdated_scores",
            "Active integrations whose score missed the daily risk review",
            "score_outdated",
            counts["outdated"],
            "{count} active integrations hold a credential more than "
            f"{(risk.ROTATION_MAX_AGE + RISK_REVIEW_GRACE).days} days without rotation that their risk score "
            "does not count yet (the daily review rescores every integration).",
        ),
    ]


# --- Time-bound grants ----------------------------------------------------------------------------


def time_bound_grants_evidence() -> list[Figure]:
    active = Grant.objects.filter(status=GrantStatus.ACTIVE)
    open_ended, overdue = GRANT_SUBSETS["open_ended"], GRANT_SUBSETS["overdue"]
    counts = active.aggregate(
        total=Count("pk"),
        open_ended=Count("pk", filter=open_ended.condition()),
        overdue=Count("pk", filter=overdue.condition()),
    )
    total = counts["total"]
    dated = Figure(
        key="time-bound-grants.end_date_share",
        label="Active grants with an end date",
        value=share(total - counts["open_ended"], total),
        threshold=Threshold(met=95, partly=80),
        detail=(
            f"{total - counts['open_ended']} of {total} active grants end on a set date."
            + (f" The list shows the {counts['open_ended']} without one." if counts["open_ended"] else "")
            if total
            else "No grant is active: nothing to measure."
        ),
        records_url=_grants_url(open_ended.key),
        records=_grant_records(active.filter(open_ended.condition())),
    )
    late = Figure(
        key="time-bound-grants.overdue_grants",
        label="Active grants past their end date",
        value=counts["overdue"],
        threshold=Threshold(met=0),
        unit="count",
        better=LOWER,
        detail=f"{counts['overdue']} active grants are more than an hour past their end date (the expiry sweep "
        "ends them every five minutes).",
        records_url=_grants_url(overdue.key),
        records=_grant_records(active.filter(overdue.condition())),
    )
    return [dated, late]


# --- Orphan handling ------------------------------------------------------------------------------


def orphan_handling_evidence() -> list[Figure]:
    in_service = Integration.objects.exclude(status=IntegrationStatus.RETIRED)
    long_subset = INTEGRATION_SUBSETS["orphaned_long"]
    counts = in_service.aggregate(
        total=Count("pk"),
        flagged=Count("pk", filter=Q(orphaned=True)),
        overdue=Count("pk", filter=long_subset.condition()),
    )
    orphans = in_service.filter(orphaned=True)
    first = orphans.annotate(since=orphaned_since()).order_by("since").values_list("since", flat=True).first()
    total, orphaned = counts["total"], counts["flagged"]
    oldest = f" The oldest has waited {(timezone.now() - first).days} days." if first is not None else ""
    return [
        Figure(
            key="orphan-handling.orphaned_long",
            label=f"Integrations orphaned for more than {ORPHAN_DAYS} days",
            value=counts["overdue"],
            threshold=Threshold(met=0),
            unit="count",
            better=LOWER,
            detail=f"{counts['overdue']} integrations in service (not retired) have had no new owner for more than "
            f"{ORPHAN_DAYS} days since an owner left.",
            records_url=_list_url(evidence=long_subset.key),
            records=integration_records(in_service.filter(long_subset.condition()), orphaned_since=orphaned_since()),
        ),
        Figure(
            key="orphan-handling.orphaned_share",
            label="Integrations in service that are orphaned",
            value=share(orphaned, total, better=LOWER),
            threshold=Threshold(met=1, partly=5),
            unit="%",
            better=LOWER,
            detail=(f"{orphaned} of {total} integrations in service (not retired) are orphaned.{oldest}")
            if total
            else "No integration is in service: nothing to measure.",
            records_url=reverse("inventory:orphans"),
            records=integration_records(orphans, orphaned_since=orphaned_since()),
        ),
    ]


# --- Kill switch ----------------------------------------------------------------------------------


def _window_start() -> datetime:
    """Midnight (the portal's time zone) of the day ``SUSPENSION_WINDOW_DAYS`` days ago: the
    audit trail's date filter reads the same days."""
    day = timezone.localdate() - timedelta(days=SUSPENSION_WINDOW_DAYS)
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _suspensions() -> QuerySet[Any]:
    """The suspensions in the window, each with when the grants it revoked ended
    (``revoked_at``: None when it had none): the service ends them with the reason
    "Suspended: <the suspension's reason>"."""
    revoked = Grant.objects.filter(
        integration_id=Cast(OuterRef("target_id"), BigIntegerField()),
        status=GrantStatus.REVOKED,
        end_reason=Concat(Value("Suspended: "), OuterRef("reason")),
        ended_at__gte=OuterRef("created_at"),
    ).order_by("ended_at")
    return AuditEvent.objects.filter(
        action=SUSPENDED_ACTION, target_type=INTEGRATION_TARGET, created_at__gte=_window_start()
    ).annotate(revoked_at=Subquery(revoked.values("ended_at")[:1], output_field=DateTimeField()))


def _suspension_records(events: QuerySet[Any]) -> Callable[[], Iterator[dict[str, Any]]]:
    def records() -> Iterator[dict[str, Any]]:
        listed = events.order_by("created_at", "id").values(
            "id", "target_id", "target_repr", "actor_username", "created_at", "revoked_at"
        )
        for row in listed.iterator(chunk_size=2000):
            took = row["revoked_at"] - row["created_at"] if row["revoked_at"] else None
            yield {
                "audit_event": row["id"],
                "integration_id": row["target_id"],
                "integration": row["target_repr"],
                "suspended_by": row["actor_username"],
                "suspended_at": _iso(row["created_at"]),
                "grants_revoked_at": _iso(row["revoked_at"]),
                "seconds_to_revoke": round(took.total_seconds(), 3) if took is not None else None,
            }

    return records


def kill_switch_evidence() -> list[Figure]:
    suspended = Integration.objects.filter(status=IntegrationStatus.SUSPENDED)
    holding = INTEGRATION_SUBSETS["holds_grants"]
    counts = suspended.aggregate(total=Count("pk"), holding=Count("pk", filter=holding.condition()))
    events = _suspensions()
    timing = events.aggregate(
        suspensions=Count("pk"),
        timed=Count("pk", filter=Q(revoked_at__isnull=False)),
        slowest=Max(ExpressionWrapper(F("revoked_at") - F("created_at"), output_field=DurationField())),
    )
    total, holding_count = counts["total"], counts["holding"]
    slowest: timedelta | None = timing["slowest"]
    return [
        Figure(
            key="kill-switch.suspended_without_access",
            label="Suspended integrations holding no active grant",
            value=share(total - holding_count, total),
            threshold=Threshold(met=100),
            detail=f"{total - holding_count} of {total} suspended integrations hold no active grant (and the token "
            "endpoint and introspection refuse every suspended integration)."
            if total
            else "No integration is suspended: nothing to measure.",
            records_url=_list_url(status=IntegrationStatus.SUSPENDED, evidence=holding.key),
            records=integration_records(suspended.filter(holding.condition())),
        ),
        Figure(
            key="kill-switch.hours_to_revoke",
            label=f"Slowest revocation of grants after a suspension (last {SUSPENSION_WINDOW_DAYS} days)",
            value=round(slowest.total_seconds() / 3600, 2) if slowest is not None else None,
            threshold=Threshold(met=0.25, partly=24),
            unit="hours",
            better=LOWER,
            detail=f"{timing['timed']} of {timing['suspensions']} suspensions since {_window_start():%Y-%m-%d} "
            f"revoked grants; the slowest ended them {slowest.total_seconds():.1f} seconds after the suspension."
            if slowest is not None
            else f"No suspension since {_window_start():%Y-%m-%d} revoked a grant: nothing to time.",
            records_url=f"{reverse('audit-list')}?{urlencode({'action': SUSPENDED_ACTION, 'since': f'{_window_start():%Y-%m-%d}'})}",
            records=_suspension_records(events),
        ),
    ]


# --- Workload identity ----------------------------------------------------------------------------

PROVEN_SHARE = _Share(
    key="workload-identity.proven_share",
    label="Active integrations with a proven workload identity",
    threshold=Threshold(met=95, partly=75),
    gap="identity_unproven",
    sentence="{met} of {total} active integrations are bound to a trusted issuer's identity that a token has proved.",
)


def workload_identity_evidence() -> list[Figure]:
    counts = _active().aggregate(
        total=Count("pk"),
        unproven=Count("pk", filter=_identity_unproven()),
        high_unproven=Count("pk", filter=_high_risk_unproven()),
    )
    return [
        _active_share(PROVEN_SHARE, counts["total"], counts["unproven"]),
        _active_count(
            "workload-identity.high_risk_unproven",
            "Active high or critical risk integrations without a proven identity",
            "high_risk_unproven",
            counts["high_unproven"],
            "{count} active integrations of high or critical risk have no workload identity a token has proved.",
        ),
    ]


def register() -> None:
    """Register the inventory's controls."""
    for control in (
        Control(
            id="named-owners",
            title="Inventory with named owners",
            description="Every integration is registered with a business owner who must be an active person; "
            "ownership changes hands only when the new owner accepts, and a leaver's integrations are flagged "
            "for IAM at once.",
            app="inventory",
            evidence=named_owners_evidence,
            order=10,
        ),
        Control(
            id="risk-tiering",
            title="Explainable risk tiering",
            description="Each integration's risk tier comes from one published rule set whose factors are stored "
            "with it, each a sentence a reviewer can check; a daily review rescores every integration and a raised "
            "tier reopens review.",
            app="inventory",
            evidence=risk_tiering_evidence,
            order=20,
        ),
        Control(
            id="time-bound-grants",
            title="Time-bound grants",
            description="Approvers set when each grant ends; a sweep every five minutes ends grants past their "
            "date, with owners warned beforehand.",
            app="inventory",
            evidence=time_bound_grants_evidence,
            order=50,
        ),
        Control(
            id="orphan-handling",
            title="Orphan handling",
            description="Deactivating an owner flags every integration they own as orphaned, audited, on the IAM "
            "work list, and cancels what waits on them; the flag clears only when an active person accepts the "
            "role.",
            app="inventory",
            evidence=orphan_handling_evidence,
            order=70,
        ),
        Control(
            id="kill-switch",
            title="Kill switch",
            description="Owners and IAM admins suspend an integration with one action: every active grant is "
            "revoked in the same transaction, the owners are told, and the runtime refuses its tokens at once.",
            app="inventory",
            evidence=kill_switch_evidence,
            order=80,
        ),
        Control(
            id="workload-identity",
            title="Workload identity verification",
            description="An integration obtains access only by presenting a token of its own workload identity, "
            "bound to a trusted issuer (OpenID Connect, SPIFFE or a static key set) and verified against the "
            "issuer's keys at every exchange.",
            app="inventory",
            evidence=workload_identity_evidence,
            order=100,
        ),
    ):
        register_control(control)
