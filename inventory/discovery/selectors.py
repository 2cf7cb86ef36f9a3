"""Reads of discovery, always for a user: what they may see is decided here and nowhere else, so
the pages and the API use the same rule.

IAM admins act on findings, reviewers and auditors read them; everyone else sees only what
concerns them: their own consents, and the findings of the apps they consented to or were
assigned to answer for. Imports and scope mappings are IAM's business (IAM admins, reviewers and
auditors). Visibility is derived in the query from roles and columns, never from lists of ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncWeek
from django.utils import timezone

from governance.models import AuditEvent
from governance.roles import sees_everything
from inventory.discovery.choices import ACTIVE_FINDING_STATUSES, ConsentResponse, FindingKind, Source
from inventory.discovery.models import (
    DiscoveredConsent,
    DiscoveryImport,
    Finding,
    Remediation,
    ScopeMapping,
)

# The work list's sort orders: each key (``-`` first: descending) and the columns it sorts by.
# The default follows the findings' rank index: most people affected, then highest risk.
FINDING_ORDERINGS: dict[str, tuple[str, ...]] = {
    "-people": ("-people_affected", "-risk_score", "id"),
    "people": ("people_affected", "risk_score", "id"),
    "-risk": ("-risk_score", "-people_affected", "id"),
    "risk": ("risk_score", "people_affected", "id"),
    "-opened": ("-opened_at", "-id"),
    "opened": ("opened_at", "id"),
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
}
DEFAULT_ORDERING = "-people"

# The status filter's words beside a single status value.
STATUS_ACTIVE = "active"
STATUS_CLOSED = "closed"
STATUS_ALL = "all"

# The dashboard's span and how many unregistered apps it ranks.
DASHBOARD_WEEKS = 12
TOP_APPS = 10


def sees_discovery(user: Any) -> bool:
    """IAM admins, reviewers and auditors read the whole of discovery (dashboard, work list,
    imports, scope mappings); everyone else only their own consents."""
    return bool(getattr(user, "is_authenticated", False)) and sees_everything(user)


def findings_for(user: Any) -> QuerySet[Finding]:
    """The findings ``user`` may see: all of them for IAM admins, reviewers and auditors; for
    anyone else those of the apps they consented to, and those they were assigned to answer for
    (an unseen finding answers 404)."""
    if not getattr(user, "is_authenticated", False):
        return Finding.objects.none()
    if sees_everything(user):
        return Finding.objects.all()
    consented = DiscoveredConsent.objects.filter(app=OuterRef("app_id"), person=user)
    return Finding.objects.filter(Q(assigned_owner=user) | Q(Exists(consented)))


def finding_detail(user: Any) -> QuerySet[Finding]:
    """``findings_for`` with what a finding's page and the API's detail read beside it."""
    return findings_for(user).select_related(
        "app", "app__integration", "integration", "assigned_owner", "opened_by_import", "last_import"
    )


@dataclass(frozen=True)
class FindingFilters:
    """What the work list (and the API's list) narrows the findings to; empty means any.

    ``status``: ``"active"`` (the default: open, escalated, revocation requested), ``"closed"``
    (every other status), ``"all"`` (or empty) or one ``FindingStatus`` value. ``person``: a
    username, email or the provider's person key of someone who consented. ``text``: part of the
    title, the app key or the publisher. ``ordering``: a key of ``FINDING_ORDERINGS`` (an
    unknown key sorts by the default)."""

    source: str = ""
    kind: str = ""
    status: str = STATUS_ACTIVE
    risk_tier: str = ""
    people_min: int | None = None
    person: str = ""
    text: str = ""
    ordering: str = DEFAULT_ORDERING


def _status_q(status: str) -> Q:
    if status == STATUS_ACTIVE:
        return Q(status__in=ACTIVE_FINDING_STATUSES)
    if status == STATUS_CLOSED:
        return ~Q(status__in=ACTIVE_FINDING_STATUSES)
    if status in ("", STATUS_ALL):
        return Q()
    return Q(status=status)


def _consented_by(person: str) -> Exists:
    """Findings whose app someone consented to who is ``person`` (username, email or the
    provider's key for them), matched without regard to case."""
    match = Q(person__username__iexact=person) | Q(person_key__iexact=person) | Q(person_email__iexact=person)
    return Exists(DiscoveredConsent.objects.filter(match, app=OuterRef("app_id")))


def finding_list(user: Any, filters: FindingFilters) -> QuerySet[Finding]:
    """The findings ``user`` may see, narrowed by ``filters`` and sorted, with the app, the
    integration and the assigned owner read in the same query (a page of them is one query)."""
    qs = findings_for(user).filter(_status_q(filters.status))
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.risk_tier:
        qs = qs.filter(risk_tier=filters.risk_tier)
    if filters.people_min is not None:
        qs = qs.filter(people_affected__gte=filters.people_min)
    if filters.person:
        qs = qs.filter(_consented_by(filters.person))
    if filters.text:
        text = filters.text
        qs = qs.filter(Q(title__icontains=text) | Q(app_key__icontains=text) | Q(app__publisher__icontains=text))
    order = FINDING_ORDERINGS.get(filters.ordering, FINDING_ORDERINGS[DEFAULT_ORDERING])
    return qs.select_related("app", "integration", "assigned_owner").order_by(*order)


def finding_consents(user: Any, finding: Finding) -> QuerySet[DiscoveredConsent]:
    """Who consented to the finding's app, as ``user`` may see them: everyone for IAM admins,
    reviewers and auditors, else only their own consent. Present consents first, admin consents
    (for everyone) before people's."""
    if finding.app_id is None or not getattr(user, "is_authenticated", False):
        return DiscoveredConsent.objects.none()
    qs = DiscoveredConsent.objects.filter(app_id=finding.app_id)
    if not sees_everything(user):
        qs = qs.filter(person=user)
    return qs.select_related("person").order_by("-present", "consent_type", "person_key", "id")


def finding_remediations(finding: Finding) -> QuerySet[Remediation]:
    """The revocations asked for the finding, newest first, with who asked and for whose consent."""
    return finding.remediations.select_related("requested_by", "consent").order_by("-requested_at", "-id")


def finding_history(finding: Finding, remediation_ids: list[int]) -> QuerySet[AuditEvent]:
    """The audit events of the finding and of its revocations (``remediation_ids``), oldest
    first: one query."""
    about = Q(target_type="discovery.finding", target_id=str(finding.pk))
    if remediation_ids:
        about |= Q(target_type="discovery.remediation", target_id__in=[str(pk) for pk in remediation_ids])
    return AuditEvent.objects.filter(about).order_by("id")


# --- Imports and scope mappings -------------------------------------------------------------------


def imports_for(user: Any) -> QuerySet[DiscoveryImport]:
    """Imports, newest first, for IAM admins, reviewers and auditors; nobody else sees any."""
    if not sees_discovery(user):
        return DiscoveryImport.objects.none()
    return DiscoveryImport.objects.select_related("started_by").order_by("-created_at", "-id")


def last_imports(user: Any) -> dict[str, DiscoveryImport]:
    """The latest import of each source (by source value), in one query."""
    latest = imports_for(user).order_by().values("source").annotate(last=Max("id")).values("last")
    return {imp.source: imp for imp in imports_for(user).filter(pk__in=Subquery(latest))}


def scope_mappings_for(user: Any) -> QuerySet[ScopeMapping]:
    """The scope mappings IAM keeps, by source and provider scope, for those who read discovery."""
    if not sees_discovery(user):
        return ScopeMapping.objects.none()
    return ScopeMapping.objects.select_related("scope", "scope__system", "updated_by").order_by(
        "source", "provider_scope"
    )


# --- A person's own consents ---------------------------------------------------------------------


def consents_of(user: Any) -> QuerySet[DiscoveredConsent]:
    """The apps ``user`` connected (their present consents), by app name, each annotated with the
    app's latest shadow finding (``shadow_finding_id``, ``shadow_finding_status``: None when the
    app is registered or was never a shadow app)."""
    if not getattr(user, "is_authenticated", False):
        return DiscoveredConsent.objects.none()
    shadow = Finding.objects.filter(app=OuterRef("app_id"), kind=FindingKind.SHADOW).order_by("-opened_at", "-id")
    return (
        DiscoveredConsent.objects.filter(person=user, present=True)
        .select_related("app", "app__integration")
        .annotate(
            shadow_finding_id=Subquery(shadow.values("pk")[:1]),
            shadow_finding_status=Subquery(shadow.values("status")[:1]),
        )
        .order_by("app__name", "app_id")
    )


def awaiting_answer(user: Any) -> QuerySet[DiscoveredConsent]:
    """``user``'s consents to apps nobody registered that still wait for their answer (Claim or
    Not needed): an active shadow finding, and no answer given."""
    if not getattr(user, "is_authenticated", False):
        return DiscoveredConsent.objects.none()
    active_shadow = Finding.objects.filter(
        app=OuterRef("app_id"), kind=FindingKind.SHADOW, status__in=ACTIVE_FINDING_STATUSES
    )
    return DiscoveredConsent.objects.filter(
        Exists(active_shadow),
        person=user,
        present=True,
        response__in=(ConsentResponse.NOT_ASKED, ConsentResponse.PENDING),
    )


# --- The dashboard -------------------------------------------------------------------------------


def _week_start(moment: datetime) -> datetime:
    """Monday 00:00 of ``moment``'s week, in the current time zone."""
    local = timezone.localtime(moment)
    day = local - timedelta(days=local.weekday())
    return day.replace(hour=0, minute=0, second=0, microsecond=0)


def _by_kind_and_source(findings: QuerySet[Finding]) -> list[dict[str, Any]]:
    """Active findings counted per kind (rows) and source (cells: ``{"source", "count"}`` in
    ``Source`` order), with totals."""
    counts = {
        (row["kind"], row["source"]): row["n"]
        for row in findings.filter(status__in=ACTIVE_FINDING_STATUSES)
        .order_by()
        .values("kind", "source")
        .annotate(n=Count("id"))
    }
    return [
        {
            "kind": kind,
            "label": label,
            "cells": [{"source": source, "count": counts.get((kind, source), 0)} for source in Source.values],
            "total": sum(counts.get((kind, source), 0) for source in Source.values),
        }
        for kind, label in FindingKind.choices
    ]


def _weekly(findings: QuerySet[Finding], now: datetime) -> list[dict[str, Any]]:
    """The last ``DASHBOARD_WEEKS`` weeks, oldest first: findings opened each week per kind, and
    how many were closed that week (two queries)."""
    first = _week_start(now) - timedelta(weeks=DASHBOARD_WEEKS - 1)
    opened: dict[tuple[Any, str], int] = {}
    for row in (
        findings.filter(opened_at__gte=first)
        .annotate(week=TruncWeek("opened_at"))
        .order_by()
        .values("week", "kind")
        .annotate(n=Count("id"))
    ):
        opened[(timezone.localtime(row["week"]).date(), row["kind"])] = row["n"]
    closed = {
        timezone.localtime(row["week"]).date(): row["n"]
        for row in findings.filter(closed_at__gte=first)
        .annotate(week=TruncWeek("closed_at"))
        .order_by()
        .values("week")
        .annotate(n=Count("id"))
    }
    weeks = []
    for index in range(DASHBOARD_WEEKS):
        start = (first + timedelta(weeks=index)).date()
        per_kind = {kind: opened.get((start, kind), 0) for kind in FindingKind.values}
        weeks.append(
            {"start": start, "opened": per_kind, "total": sum(per_kind.values()), "closed": closed.get(start, 0)}
        )
    return weeks


def dashboard(user: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """What the discovery dashboard shows ``user``, in five queries whatever the numbers: active
    findings by kind and source (``by_kind``, cells in ``Source`` order), findings opened and
    closed per week over the last twelve weeks (``weeks``), the top unregistered apps by people
    affected and risk (``top_apps``: active shadow findings with their app) and the latest
    import of each source (``last_imports``: ``(source value, label, import or None)``)."""
    findings = findings_for(user) if sees_discovery(user) else Finding.objects.none()
    by_kind = _by_kind_and_source(findings)
    top_apps = list(
        findings.filter(kind=FindingKind.SHADOW, status__in=ACTIVE_FINDING_STATUSES)
        .select_related("app")
        .order_by("-people_affected", "-risk_score", "id")[:TOP_APPS]
    )
    latest = last_imports(user)
    return {
        "sources": Source.choices,
        "by_kind": by_kind,
        "source_totals": [sum(row["cells"][index]["count"] for row in by_kind) for index in range(len(Source.values))],
        "active_total": sum(row["total"] for row in by_kind),
        "weeks": _weekly(findings, now or timezone.now()),
        "top_apps": top_apps,
        "last_imports": [(value, label, latest.get(value)) for value, label in Source.choices],
    }


__all__ = [
    "DEFAULT_ORDERING",
    "FINDING_ORDERINGS",
    "STATUS_ACTIVE",
    "STATUS_ALL",
    "STATUS_CLOSED",
    "FindingFilters",
    "awaiting_answer",
    "consents_of",
    "dashboard",
    "finding_consents",
    "finding_detail",
    "finding_history",
    "finding_list",
    "finding_remediations",
    "findings_for",
    "imports_for",
    "last_imports",
    "scope_mappings_for",
    "sees_discovery",
]
