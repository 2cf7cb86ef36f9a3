"""The runtime's figures for /metrics (``governance.observability``): token requests issued and
refused, and policy decisions, over the last few minutes. Two queries per scrape, each a range of
the rows' time index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from governance.observability.registry import RECENT_SECONDS, register_source
from runtime import errors
from runtime.models import PolicyDecision, PolicyDecisionPoint, TokenEvent, TokenOutcome

# The error codes the token endpoint answers; anything else a row holds is counted as "other", so
# the label cannot take arbitrary values.
TOKEN_ERRORS = (
    errors.INVALID_REQUEST,
    errors.INVALID_CLIENT,
    errors.INVALID_GRANT,
    errors.UNAUTHORIZED_CLIENT,
    errors.UNSUPPORTED_GRANT_TYPE,
    errors.INVALID_SCOPE,
    errors.INVALID_TARGET,
    errors.ACCESS_DENIED,
    errors.TEMPORARILY_UNAVAILABLE,
)
DECISIONS = ("allow", "deny")


def register() -> None:
    register_source("runtime", collect)


def collect() -> Iterator[Metric]:
    since = timezone.now() - timedelta(seconds=RECENT_SECONDS)
    yield token_requests(since)
    yield policy_decisions(since)


def token_requests(since: datetime) -> Metric:
    """Every outcome and error appears, 0 when none happened, so an alert sees a series at once."""
    counts: dict[tuple[str, str], int] = {(TokenOutcome.ISSUED.value, ""): 0}
    counts.update({(TokenOutcome.REFUSED.value, error): 0 for error in (*TOKEN_ERRORS, "other")})
    rows = TokenEvent.objects.filter(at__gte=since).values("outcome", "error").annotate(count=Count("id")).order_by()
    for row in rows:
        if row["outcome"] == TokenOutcome.ISSUED:
            key = (TokenOutcome.ISSUED.value, "")
        else:
            key = (TokenOutcome.REFUSED.value, row["error"] if row["error"] in TOKEN_ERRORS else "other")
        counts[key] += row["count"]
    family = GaugeMetricFamily(
        "governance_runtime_token_requests_recent",
        f"Token endpoint requests in the last {RECENT_SECONDS} seconds, from the token log: issued, or refused "
        "with the OAuth error answered.",
        labels=["outcome", "error"],
    )
    for (outcome, error), count in sorted(counts.items()):
        family.add_metric([outcome, error], count)
    return family


def policy_decisions(since: datetime) -> Metric:
    """By decision, decision point, and whether an enforced policy version decided (without one
    every request is denied)."""
    enforced = ExpressionWrapper(Q(policy_version__isnull=False), output_field=BooleanField())
    counts = {
        (decision, point, flag): 0
        for decision in DECISIONS
        for point in PolicyDecisionPoint.values
        for flag in ("true", "false")
    }
    rows = (
        PolicyDecision.objects.filter(at__gte=since)
        .annotate(enforced=enforced)
        .values("decision", "point", "enforced")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        key = (row["decision"], row["point"], "true" if row["enforced"] else "false")
        counts[key] = counts.get(key, 0) + row["count"]
    family = GaugeMetricFamily(
        "governance_runtime_policy_decisions_recent",
        f"Runtime policy decisions in the last {RECENT_SECONDS} seconds, from the decision log, by decision, "
        "decision point and enforced (whether an enforced policy version decided).",
        labels=["decision", "point", "enforced"],
    )
    for (decision, point, flag), count in sorted(counts.items()):
        family.add_metric([decision, point, flag], count)
    return family
