"""The runtime's dashboard panel and daily metrics (``governance.dashboard``), registered from
``RuntimeConfig.ready``: standing credentials against just-in-time tokens — the long-lived
credentials the inventory still records, against the short-lived access tokens the token endpoint
issues. Organisation-wide, in a fixed number of queries.

The token log grows by the million (a token lives at most a quarter of an hour, so a busy
integration asks for dozens a day): counting weeks of it on every view would cost seconds. The
panel counts live only the tokens of the last quarter of an hour; the weekly and monthly volumes
are daily metrics, counted once a night by the snapshot task and read back from the snapshots."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from governance import dashboard
from governance.charts import line_chart
from governance.controls.models import MetricSnapshot
from governance.controls.snapshots import weekly_series
from inventory.dashboard_panels import STANDING_HOLDERS, day_end, standing_credentials
from runtime.models import TokenEvent, TokenOutcome

TOKENS_WEEK = "runtime.tokens_issued_7d"
TOKENS_MONTH = "runtime.tokens_issued_30d"
TOKEN_USERS = "runtime.jit_token_users_7d"
WEEKS = 12
# Seven days, so that a week's last snapshot (Sunday's) counts exactly that week.
WEEK_DAYS = 7
MONTH_DAYS = 30


def issued_since(start: datetime) -> QuerySet[TokenEvent]:
    """Access tokens issued from ``start`` on (read through the outcome-and-time index)."""
    return TokenEvent.objects.filter(outcome=TokenOutcome.ISSUED, at__gte=start)


def issued_days_to(day: date, days: int) -> QuerySet[TokenEvent]:
    """Access tokens issued in the ``days`` days to the end of ``day``."""
    end = day_end(day)
    return issued_since(end - timedelta(days=days)).filter(at__lt=end)


def tokens_week(day: date) -> float:
    return float(issued_days_to(day, WEEK_DAYS).count())


def tokens_month(day: date) -> float:
    return float(issued_days_to(day, MONTH_DAYS).count())


def token_users_week(day: date) -> float:
    """Integrations that obtained at least one access token in the seven days to the end of ``day``."""
    return float(issued_days_to(day, WEEK_DAYS).values("integration_id").distinct().count())


def live_tokens(now: datetime) -> int:
    """Access tokens not expired now: issued within the longest lifetime a token may have, and
    whose expiry is still ahead. One query over a quarter of an hour of the log."""
    since = now - timedelta(seconds=settings.RUNTIME_TOKEN_MAX_SECONDS)
    return issued_since(since).filter(expires_at__gt=now).count()


def latest_snapshots(keys: list[str], today: date) -> dict[str, tuple[date, float]]:
    """The latest snapshot of the last week of each of ``keys`` (absent: none taken). One query."""
    latest: dict[str, tuple[date, float]] = {}
    rows = MetricSnapshot.objects.filter(key__in=keys, day__gt=today - timedelta(days=WEEK_DAYS), day__lte=today)
    for key, day, value in rows.order_by("day").values_list("key", "day", "value"):
        latest[key] = (day, value)
    return latest


def activity_url(since: datetime) -> str:
    return f"{reverse('runtime:activity')}?{urlencode({'outcome': TokenOutcome.ISSUED, 'since': since.isoformat()})}"


def credentials_vs_tokens(request: HttpRequest) -> dict[str, Any] | None:
    """Standing credentials recorded now and the integrations holding them, tokens live now;
    tokens issued in the last 7 and 30 days and the integrations that obtained them (the latest
    nightly snapshot); per week, integrations holding standing credentials against integrations
    obtaining tokens. Four queries."""
    now, today = timezone.now(), timezone.localdate()
    standing = standing_credentials(now).aggregate(
        credentials=Count("pk"), integrations=Count("integration_id", distinct=True)
    )
    live = live_tokens(now)
    series = weekly_series([STANDING_HOLDERS, TOKEN_USERS], WEEKS, today=today)
    latest = latest_snapshots([TOKENS_WEEK, TOKENS_MONTH, TOKEN_USERS], today)
    # This week's holders are counted now; the token users of the week are only known nightly.
    holders = [value for _start, value in series[STANDING_HOLDERS][:-1]] + [float(standing["integrations"])]
    users = [value for _start, value in series[TOKEN_USERS]]
    chart = line_chart(
        [f"{start:%d %b}" for start, _value in series[STANDING_HOLDERS]],
        [("Holding standing credentials", holders), ("Obtaining tokens (7 days)", users)],
        title="Integrations holding standing credentials and integrations obtaining tokens, per week",
        category_label="Week starting",
        key="credentials-vs-tokens",
    )
    measured = {key: int(value) for key, (_day, value) in latest.items()}
    return {
        "chart": chart,
        "standing": standing,
        "live": live,
        "tokens_week": measured.get(TOKENS_WEEK),
        "tokens_month": measured.get(TOKENS_MONTH),
        "token_users": measured.get(TOKEN_USERS),
        "measured_on": max((day for day, _value in latest.values()), default=None),
        "week_days": WEEK_DAYS,
        "month_days": MONTH_DAYS,
        "week_url": activity_url(now - timedelta(days=WEEK_DAYS)),
        "month_url": activity_url(now - timedelta(days=MONTH_DAYS)),
        "live_url": activity_url(now - timedelta(seconds=settings.RUNTIME_TOKEN_MAX_SECONDS)),
    }


def register() -> None:
    """Register them."""
    for key, label, measure in (
        (TOKENS_WEEK, "Access tokens issued (7 days)", tokens_week),
        (TOKENS_MONTH, "Access tokens issued (30 days)", tokens_month),
        (TOKEN_USERS, "Integrations that obtained access tokens (7 days)", token_users_week),
    ):
        # Counted from the log's own times: a past day measures exactly as it did then.
        dashboard.register_metric(dashboard.Metric(key=key, label=label, compute=measure, backfill=measure))
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="credentials-vs-tokens",
            title="Standing credentials vs just-in-time tokens",
            template="dashboard/panels/credentials_vs_tokens.html",
            build=credentials_vs_tokens,
            order=30,
        )
    )
