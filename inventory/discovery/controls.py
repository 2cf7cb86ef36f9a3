"""Discovery's control (``governance.controls.registry``), registered from its ``AppConfig.ready``:
shadow-grant discovery. Its evidence reads two aggregates, whatever the number of findings and
imports: the shadow findings awaiting a decision, and each source's last successful import."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Max, Min, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from governance.controls.registry import LOWER, Control, Figure, Threshold, register_control
from inventory.discovery.choices import ACTIVE_FINDING_STATUSES, FindingKind, ImportStatus, Source
from inventory.discovery.models import DiscoveryImport, Finding
from inventory.discovery.selectors import STATUS_ACTIVE

# The work list's words: shadow findings that still need someone to act, oldest first.
WAITING_QUERY = {"kind": FindingKind.SHADOW, "status": STATUS_ACTIVE}
OLDEST_FIRST = "opened"
DETAIL_SOURCES = 5


def _days(span: timedelta) -> float:
    return round(span.total_seconds() / 86400, 1)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _waiting() -> QuerySet[Finding]:
    """Shadow findings awaiting a decision (open, escalated, revocation requested): what the work
    list shows by default for the shadow kind."""
    return Finding.objects.filter(kind=FindingKind.SHADOW, status__in=ACTIVE_FINDING_STATUSES)


def _finding_records(rows: QuerySet[Finding], *order: str) -> Callable[[], Iterator[dict[str, Any]]]:
    def records() -> Iterator[dict[str, Any]]:
        listed = rows.order_by(*order).values(
            "id",
            "title",
            "source",
            "tenant",
            "app_key",
            "status",
            "risk_tier",
            "people_affected",
            "opened_at",
            "assigned_owner__username",
        )
        for row in listed.iterator(chunk_size=2000):
            record = {name: value for name, value in row.items() if name != "assigned_owner__username"}
            yield {
                **record,
                "opened_at": _iso(row["opened_at"]),
                "assigned_owner": row["assigned_owner__username"] or "",
            }

    return records


def _findings_url(**extra: str) -> str:
    return f"{reverse('discovery:findings')}?{urlencode({**WAITING_QUERY, **extra})}"


def _import_rows(now: datetime) -> list[dict[str, Any]]:
    """Each source and tenant ever imported, stalest first: its last successful import (None:
    never) and the days since it — or, never having succeeded, since its first attempt."""
    rows = []
    for row in (
        DiscoveryImport.objects.order_by()
        .values("source", "tenant")
        .annotate(
            succeeded_at=Max("finished_at", filter=Q(status=ImportStatus.SUCCEEDED)),
            first_at=Min("created_at"),
        )
    ):
        since = row["succeeded_at"] or row["first_at"]
        rows.append(
            {
                "source": row["source"],
                "source_name": Source(row["source"]).label,
                "tenant": row["tenant"],
                "last_succeeded_at": _iso(row["succeeded_at"]),
                "days_since": _days(now - since),
            }
        )
    return sorted(rows, key=lambda row: (-row["days_since"], row["source"], row["tenant"]))


def _source_age(row: Mapping[str, Any]) -> str:
    """ "Slack (acme): 9.0 days", "Okta: never succeeded"."""
    name = f"{row['source_name']} ({row['tenant']})" if row["tenant"] else row["source_name"]
    return f"{name}: {row['days_since']} days" if row["last_succeeded_at"] else f"{name}: never succeeded"


def _import_detail(rows: Sequence[Mapping[str, Any]]) -> str:
    named = [_source_age(row) for row in rows[:DETAIL_SOURCES]]
    more = f" and {len(rows) - DETAIL_SOURCES} more" if len(rows) > DETAIL_SOURCES else ""
    return f"Days since each source's last successful import, stalest first: {'; '.join(named)}{more}."


def shadow_discovery_evidence() -> list[Figure]:
    now = timezone.now()
    sources = _import_rows(now)
    counts = _waiting().aggregate(waiting=Count("pk"), oldest=Min("opened_at"))
    never = "No source has been imported yet: discovery has nothing to measure."
    waiting, oldest = counts["waiting"], counts["oldest"]
    age = _days(now - oldest) if oldest is not None else 0.0
    return [
        Figure(
            key="shadow-discovery.waiting_shadow_apps",
            label="Shadow apps awaiting a decision",
            value=waiting if sources else None,
            threshold=Threshold(met=0, partly=10),
            unit="count",
            better=LOWER,
            detail=f"{waiting} apps that no registered integration claims await a decision (claim, sanction, "
            "revoke or dismiss)."
            if sources
            else never,
            records_url=_findings_url(),
            records=_finding_records(_waiting(), "-people_affected", "-risk_score", "id"),
        ),
        Figure(
            key="shadow-discovery.oldest_waiting_days",
            label="Age of the oldest shadow app awaiting a decision",
            value=age if sources else None,
            threshold=Threshold(met=30, partly=90),
            unit="days",
            better=LOWER,
            detail=(
                f"The oldest was found {age} days ago." if oldest is not None else "No shadow app awaits a decision."
            )
            if sources
            else never,
            records_url=_findings_url(ordering=OLDEST_FIRST),
            records=_finding_records(_waiting(), "opened_at", "id"),
        ),
        Figure(
            key="shadow-discovery.import_age_days",
            label="Days since the stalest source's last successful import",
            value=sources[0]["days_since"] if sources else None,
            threshold=Threshold(met=7, partly=30),
            unit="days",
            better=LOWER,
            detail=_import_detail(sources) if sources else never,
            records_url=reverse("discovery:imports"),
            records=lambda: iter(sources),
        ),
    ]


def register() -> None:
    """Register discovery's control."""
    register_control(
        Control(
            id="shadow-discovery",
            title="Shadow-grant discovery",
            description="The portal imports the OAuth grants the identity providers and SaaS suites record "
            "(uploaded or pulled on a schedule) and opens a finding for every app no registered integration "
            "claims, for IAM to claim, sanction, revoke or dismiss.",
            app="discovery",
            evidence=shadow_discovery_evidence,
            order=130,
        )
    )
