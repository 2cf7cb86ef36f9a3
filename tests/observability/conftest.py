"""Observability fixtures: the scrape (a token configured, a helper that parses the answer) and
audit events written through the audit trail's own write path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from governance.audit import EventSpec, audit_record_many
from governance.models import AuditEvent, User

# The campaign fixtures (a catalog, integrations, grants, definitions, a launched campaign).
from tests.campaigns.conftest import catalog, launched, make_definition, make_grant, make_integration  # noqa: F401

METRICS_TOKEN = "scrape-token-" + "x" * 40


@pytest.fixture
def metrics_token() -> Iterator[str]:
    with override_settings(METRICS_TOKEN=METRICS_TOKEN, METRICS_ALLOWED_NETWORKS=[]):
        yield METRICS_TOKEN


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """The families (name -> type) and samples ((name, sorted labels) -> value) of a scrape."""
    families: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


@pytest.fixture
def scrape(client: Any, metrics_token: str) -> Callable[..., tuple[dict[str, str], Samples]]:
    """GET /metrics with the bearer token; the parsed answer."""

    def get(**extra: Any) -> tuple[dict[str, str], Samples]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}", **extra)
        assert response.status_code == 200, response.status_code
        assert response["Content-Type"].startswith("text/plain")
        return parse(response.content.decode())

    return get


def write_events(actor: User, count: int, *, action: str = "test.streamed", **spec: Any) -> list[AuditEvent]:
    """``count`` audit events in one transaction, through the trail's write path."""
    specs = [
        EventSpec(
            action=action,
            target_type="test.thing",
            target_id=str(number),
            target_repr=f"Thing {number} — «quoted»\nsecond line",
            **({"after": {"number": number, "note": "naïve café"}} | spec),
        )
        for number in range(count)
    ]
    with transaction.atomic():
        return audit_record_many(actor=actor, events=specs)


def line_hash(fields: dict[str, Any]) -> str:
    """What a SIEM computes to check a line: SHA-256 of the line without id and hash, as canonical
    JSON (sorted keys, no spaces, UTF-8)."""
    payload = {key: value for key, value in fields.items() if key not in ("id", "hash")}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def trail() -> list[tuple[int, str]]:
    """Every event of the trail as (id, hash), in the chain's order."""
    return list(AuditEvent.objects.order_by("id").values_list("id", "hash"))
