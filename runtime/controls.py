"""The runtime's controls (``governance.controls.registry``), registered from its
``AppConfig.ready``: just-in-time short-lived credentials and policy as code.

Token issuances run to millions a month: their figures are aggregates in one query each, and
their records are the integrations with their counts, not the events (the activity page the
figure links to lists the events themselves, filtered the same way).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from governance.controls.kernel_controls import list_link, share, when, window_start
from governance.controls.registry import LOWER, Control, Figure, Threshold, register_control
from inventory.dashboard_panels import standing_credentials
from inventory.models import Credential
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion, ReplayStatus, TokenEvent, TokenOutcome

# Token issuances are judged over the last month.
WINDOW_DAYS = 30
# A just-in-time token lives at most this long (the token endpoint's own cap).
SHORT_LIVED = timedelta(minutes=15)


def issued_since(since: datetime) -> QuerySet[TokenEvent]:
    return TokenEvent.objects.filter(outcome=TokenOutcome.ISSUED, at__gte=since)


def _short_lived() -> Q:
    return Q(expires_at__isnull=False, expires_at__lte=F("at") + SHORT_LIVED)


def _by_integration(since: datetime, **counts: Any) -> Iterator[Mapping[str, Any]]:
    """The window's issuances grouped by integration, with ``counts`` (name → aggregate)."""
    rows = (
        issued_since(since)
        .order_by()
        .values("integration_id", "integration__name")
        .annotate(issued=Count("pk"), **counts)
        .order_by("integration__name", "integration_id")
    )
    for row in rows.iterator():
        yield {
            "integration_id": row["integration_id"],
            "integration": row["integration__name"] or "",
            **{name: value for name, value in row.items() if name not in ("integration_id", "integration__name")},
        }


# --- Just-in-time short-lived credentials --------------------------------------------------------

JIT = "jit-credentials"
# Long-lived credentials are those the dashboard's standing-credentials trend counts (every type
# but a workload identity token, not expired, of an integration not retired): one definition.


def standing_now() -> QuerySet[Credential]:
    """Long-lived credentials still recorded now."""
    return standing_credentials(timezone.now())


def _short_lived_share(since: datetime) -> Figure:
    counts = issued_since(since).aggregate(total=Count("pk"), short=Count("pk", filter=_short_lived()))
    total, short = counts["total"], counts["short"]
    minutes = int(SHORT_LIVED.total_seconds() // 60)
    detail = (
        f"{short} of {total} access tokens issued in the last {WINDOW_DAYS} days lived {minutes} minutes or less"
        + (f"; {total - short} lived longer." if total > short else ".")
        if total
        else f"No access token was issued in the last {WINDOW_DAYS} days."
    )
    return Figure(
        key=f"{JIT}.short_lived",
        label=f"Token issuances living {minutes} minutes or less ({WINDOW_DAYS} days)",
        value=share(short, total),
        threshold=Threshold(met=100, partly=99),
        detail=detail,
        records_url=list_link("runtime:activity", outcome=TokenOutcome.ISSUED, since=since),
        records=lambda: _by_integration(
            since, short_lived=Count("pk", filter=_short_lived()), longer=Count("pk", filter=~_short_lived())
        ),
    )


def _standing() -> Figure:
    counts = standing_now().aggregate(
        n=Count("pk"),
        integrations=Count("integration_id", distinct=True),
        undated=Count("pk", filter=Q(expires_at=None)),
    )
    detail = (
        f"{counts['n']} long-lived credentials (API keys, OAuth clients and grants, service accounts, certificates) "
        f"are still recorded on {counts['integrations']} integrations that are not retired; {counts['undated']} "
        "have no expiry date."
        if counts["n"]
        else "No long-lived credential is recorded on any integration that is not retired."
    )
    return Figure(
        key=f"{JIT}.standing_credentials",
        label="Long-lived credentials still recorded",
        value=counts["n"],
        threshold=Threshold(met=0, partly=10),
        unit="count",
        better=LOWER,
        detail=detail,
        records_url=list_link("inventory:list", evidence="standing_credentials"),
        records=_standing_rows,
    )


CREDENTIAL_FIELDS = (
    "id",
    "integration_id",
    "integration__name",
    "integration__status",
    "type",
    "identifier",
    "created_at",
    "expires_at",
    "last_rotated_at",
)


def _standing_rows() -> Iterator[Mapping[str, Any]]:
    rows = standing_now().order_by("integration_id", "pk")
    yield from rows.values(*CREDENTIAL_FIELDS).iterator()


def jit_evidence() -> list[Figure]:
    """Two queries: the window's issuances by lifetime, and the long-lived credentials."""
    return [_short_lived_share(window_start(WINDOW_DAYS)), _standing()]


# --- Policy as code -------------------------------------------------------------------------------

POLICY = "policy-as-code"


def _decided_by_policy() -> Q:
    """An issuance the enforced policy version decided (its number and decisions recorded)."""
    return Q(policy_version__isnull=False)


def versions_put_in_force() -> QuerySet[PolicyVersion]:
    """Every version ever put in force but the one the portal ships (seeded without an author),
    with ``replayed`` (a replay of its exact text finished before it was put in force) and
    ``shadowed`` (it ran log-only first)."""
    replays = PolicyReplay.objects.filter(
        candidate=OuterRef("pk"),
        status=ReplayStatus.DONE,
        candidate_sha256=OuterRef("sha256"),
        finished_at__lte=OuterRef("enforced_at"),
    )
    return (
        PolicyVersion.objects.filter(enforced_at__isnull=False, created_by__isnull=False)
        .annotate(replayed=Exists(replays))
        .annotate(shadowed=Q(shadow_at__isnull=False, shadow_at__lte=F("enforced_at")))
    )


def _enforced_share(since: datetime) -> Figure:
    counts = issued_since(since).aggregate(total=Count("pk"), decided=Count("pk", filter=_decided_by_policy()))
    total, decided = counts["total"], counts["decided"]
    detail = (
        f"{decided} of {total} access tokens issued in the last {WINDOW_DAYS} days were decided by the enforced "
        "runtime policy version (each scope a logged decision)"
        + (f"; {total - decided} were issued without one." if total > decided else ".")
        if total
        else f"No access token was issued in the last {WINDOW_DAYS} days."
    )
    return Figure(
        key=f"{POLICY}.enforced_decisions",
        label=f"Token issuances decided by the enforced policy ({WINDOW_DAYS} days)",
        value=share(decided, total),
        threshold=Threshold(met=100, partly=99),
        detail=detail,
        records_url=list_link("runtime:activity", outcome=TokenOutcome.ISSUED, since=since),
        records=lambda: _by_integration(
            since,
            decided_by_policy=Count("pk", filter=_decided_by_policy()),
            without_policy=Count("pk", filter=~_decided_by_policy()),
        ),
    )


def _tried_first() -> Figure:
    counts = versions_put_in_force().aggregate(
        total=Count("pk"),
        tried=Count("pk", filter=Q(replayed=True) | Q(shadowed=True)),
        # Named apart from the annotations they count: an aggregate named like one hides it.
        were_replayed=Count("pk", filter=Q(replayed=True)),
        ran_log_only=Count("pk", filter=Q(shadowed=True)),
    )
    enforced = PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).values_list("number", "enforced_at").first()
    now_in_force = f" v{enforced[0]} is in force since {when(enforced[1])}." if enforced else " No version is in force."
    detail = (
        f"{counts['tried']} of {counts['total']} policy versions put in force were first replayed against logged "
        f"decisions ({counts['were_replayed']}) or run log-only ({counts['ran_log_only']}).{now_in_force}"
        if counts["total"]
        else f"Only the shipped policy version has been in force.{now_in_force}"
    )
    return Figure(
        key=f"{POLICY}.tried_before_enforcing",
        label="Policy versions replayed or run log-only before being enforced",
        value=share(counts["tried"], counts["total"]),
        threshold=Threshold(met=100, partly=90),
        detail=detail,
        records_url=list_link("runtime:policies"),
        records=_version_rows,
    )


VERSION_FIELDS = (
    "number",
    "title",
    "status",
    "sha256",
    "source",
    "source_ref",
    "created_by__username",
    "shadow_at",
    "approved_by__username",
    "enforced_at",
    "change_request_id",
    "replayed",
    "shadowed",
)


def _version_rows() -> Iterator[Mapping[str, Any]]:
    rows = versions_put_in_force().order_by("enforced_at", "pk")
    yield from rows.values(*VERSION_FIELDS).iterator()


def policy_evidence() -> list[Figure]:
    """Three queries: the window's issuances by deciding policy, the versions put in force with
    their replays, and the version in force."""
    return [_enforced_share(window_start(WINDOW_DAYS)), _tried_first()]


def register() -> None:
    """Register the runtime controls."""
    register_control(
        Control(
            id=JIT,
            title="Just-in-time short-lived credentials",
            description=(
                "An approved integration gets its access at run time: it presents its workload identity's "
                "token to the portal's token endpoint (OAuth 2.0 token exchange), which issues a signed access "
                "token for the scopes its active grants allow, living at most 15 minutes (less for higher risk "
                "tiers, never beyond a presented token or a grant), naming the integration, the user it acts "
                "for and the accountable owner. Every issuance and refusal is logged and sealed."
            ),
            app="runtime",
            evidence=jit_evidence,
            order=110,
        )
    )
    register_control(
        Control(
            id=POLICY,
            title="Policy as code with log-only mode and replay",
            description=(
                "Runtime access is decided by versioned Cedar policies validated against the portal's schema "
                "and their own tests. A new version runs log-only beside the enforced one, is replayed against "
                "logged decisions to show what it would change, and is put in force only when a second IAM "
                "admin approves; every decision is logged with its reasons, and anything that fails denies."
            ),
            app="runtime",
            evidence=policy_evidence,
            order=120,
        )
    )
