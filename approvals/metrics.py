"""The approvals' figures for /metrics (``governance.observability``): the progress of every
recertification campaign under way. One query per scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from approvals.campaigns.models import UNDECIDED, Campaign, CampaignStatus
from governance.observability.registry import register_source

OPEN_STATUSES = (CampaignStatus.LAUNCHING, CampaignStatus.ACTIVE)


def register() -> None:
    register_source("campaigns", collect)


def collect() -> Iterator[Metric]:
    """Campaigns launching or running, with their review items, those decided and the deadline.
    Only open campaigns are reported, so the series stay few; one ends when its campaign closes."""
    labels = ["campaign", "name"]
    items = GaugeMetricFamily(
        "governance_campaign_review_items",
        "Review items of each open campaign (so far, while launching).",
        labels=labels,
    )
    decided = GaugeMetricFamily(
        "governance_campaign_review_items_decided",
        "Review items of each open campaign decided (certified, revoked or kept and flagged).",
        labels=labels,
    )
    deadlines = GaugeMetricFamily(
        "governance_campaign_deadline_timestamp_seconds", "Deadline of each open campaign (Unix time).", labels=labels
    )
    campaigns = (
        Campaign.objects.filter(status__in=OPEN_STATUSES)
        .annotate(total=Count("items"), done=Count("items", filter=~Q(items__status__in=UNDECIDED)))
        .values("id", "name", "deadline", "total", "done")
        .order_by("id")
    )
    for campaign in campaigns:
        label_values = [str(campaign["id"]), campaign["name"]]
        items.add_metric(label_values, campaign["total"])
        decided.add_metric(label_values, campaign["done"])
        if campaign["deadline"] is not None:
            deadlines.add_metric(label_values, campaign["deadline"].timestamp())
    yield items
    yield decided
    yield deadlines
