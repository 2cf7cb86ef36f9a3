"""Every list endpoint of the API runs the same number of SQL queries for one row as for a full
page, for each role, and the list pages run the same queries as their lists grow: rows are read
with their related data in a fixed number of queries, never one (or more) per row. The world is
the demo grown by ``grow`` (more of everything listed)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import services as approvals
from approvals.campaigns import services as campaigns
from approvals.campaigns.models import CampaignDefinition
from approvals.models import Workflow
from governance.models import User
from governance.roles import Role
from governance.services import user_deactivate
from governance.webhooks import services as webhooks
from inventory import services as inventory
from inventory.models import Integration, OwnershipTransfer, Scope, WorkloadBinding
from runtime import demo as runtime_demo
from runtime.errors import ExchangeRefused
from runtime.exchange import GRANT_TYPE, JWT_TOKEN_TYPE, token_exchange

LISTS = [
    "access-requests",
    "audit-events",
    "campaign-definitions",
    "campaigns",
    "decisions",
    "grants",
    "integrations",
    "ownership-transfers",
    "review-items",
    "scopes",
    "token-events",
    "trusted-issuers",
    "webhooks",
]


def grow(tag: str = "a") -> None:
    """More of every listed thing: a launched second campaign, a definition, webhook
    subscriptions, ownership transfers, submitted requests, orphaned integrations, scopes and a
    workflow step. Each ``tag`` grows it once more."""
    ivan, alice, bob = (User.objects.get(username=u) for u in ("ivan", "alice", "bob"))
    definition = CampaignDefinition.objects.order_by("id").first()
    assert definition is not None
    second = campaigns.campaign_create(actor=ivan, definition=definition, name=f"Run {tag}", run_key=f"run-{tag}")
    campaigns.campaign_launch_request(actor=ivan, campaign=second, enqueue=False)
    campaigns.campaign_launch_run(campaign_id=second.pk)
    campaigns.definition_save(actor=ivan, values={"name": f"Third-party plugins {tag}", "owner": ivan, "vendors": []})
    for n in range(3):
        webhooks.subscription_create(
            actor=ivan,
            name=f"Ticketing {tag}{n}",
            target_url=f"https://tickets.example.com/hook/{tag}{n}",
            event_types=["*"],
        )
    proposed = OwnershipTransfer.objects.filter(status="proposed").values("integration_id")
    for integration in Integration.objects.filter(business_owner=alice).exclude(pk__in=proposed)[:3]:
        inventory.ownership_transfer_propose(actor=alice, integration=integration, to_user=bob, reason="Team move")
    # more requests (and integrations), a leaver's orphaned integrations, catalog entries, a named-people step
    scopes = list(Scope.objects.order_by("code")[:2])
    leaver = User.objects.create_user(f"leaver-{tag}", email=f"leaver-{tag}@example.com")
    leaver.groups.add(Group.objects.get(name=Role.BUSINESS_USER))
    for n in range(3):
        values = {
            "name": f"Grown bot {tag}{n}",
            "kind": "agent",
            "purpose": "Files tickets.",
            "requested_scopes": scopes,
        }
        inventory.integration_register(actor=bob, values={**values, "business_owner": bob}, submit=True)
        inventory.integration_register(
            actor=leaver, values={**values, "name": f"Leaver bot {tag}{n}", "business_owner": leaver}
        )
    user_deactivate(actor=ivan, user=leaver, reason="Left the company")
    system = inventory.resource_system_save(actor=ivan, values={"code": f"grown-{tag}", "name": f"Grown system {tag}"})
    for n in range(3):
        inventory.scope_save(
            actor=ivan, system=system, values={"name": f"records{n}.read", "sensitivity": "low", "access": "read"}
        )
    _grow_runtime(ivan, tag)
    workflow = Workflow.objects.order_by("id").first()
    assert workflow is not None
    approvals.workflow_step_save(
        actor=ivan,
        workflow=workflow,
        step=None,
        values={
            "order": 9 + ord(tag),
            "name": f"Named {tag}",
            "pool_kind": "users",
            "pool_group": None,
            "rule": "all",
            "quorum": 1,
            "sla_hours": 8,
            "only_for_tiers": [],
        },
        pool_users=list(User.objects.filter(username__in=["rita", "raj"])),
    )


def _grow_runtime(ivan: User, tag: str) -> None:
    """Another trusted issuer, and more token events: the demo integration's exchanges, issued
    and refused."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": f"grown-{tag}"}
    inventory.trusted_issuer_create(
        actor=ivan,
        values={
            "name": f"Grown issuer {tag}",
            "kind": "static_jwks",
            "issuer": f"https://issuer-{tag}.example.com",
            "jwks": {"keys": [jwk]},
        },
    )
    binding = WorkloadBinding.objects.select_related("issuer").get(issuer__issuer=runtime_demo.DEMO_ISSUER)
    for scope in ("", "msgraph:Mail.Send"):
        params = {
            "grant_type": GRANT_TYPE,
            "subject_token": runtime_demo.workload_token(binding),
            "subject_token_type": JWT_TOKEN_TYPE,
            "audience": "msgraph",
            "scope": scope,
        }
        try:
            token_exchange(params)
        except ExchangeRefused:
            pass  # a refusal is a token event too


@pytest.fixture
def demo(roles: None) -> None:
    call_command("seed_demo", stdout=StringIO())


@pytest.fixture
def world(demo: None) -> None:
    grow()


@pytest.mark.parametrize("username", ["ivan", "audrey", "rita", "alice"])
def test_every_list_endpoint_runs_the_same_queries_for_one_row_and_a_full_page(
    world: None, api_as: Any, username: str
) -> None:
    client = api_as(User.objects.get(username=username))
    sees_all = username in ("ivan", "audrey")
    for name in LISTS:
        counts, sizes = [], []
        client.get(f"/api/v1/{name}/?page_size=1")  # once-per-process caches (content types, throttles) warm
        for page_size in (1, 200):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(f"/api/v1/{name}/?page_size={page_size}")
            if response.status_code == 403 and not sees_all:
                break  # this role does not read this list at all
            assert response.status_code == 200, (name, response.content[:300])
            counts.append(len(queries.captured_queries))
            sizes.append(len(response.json()["results"]))
        else:
            assert counts[0] == counts[1], (
                f"{name} as {username}: {counts[0]} queries for 1 row, {counts[1]} for {sizes[1]}"
            )
            if sees_all:
                assert sizes[1] >= 2, f"{name}: the world needs at least two rows to show anything ({sizes[1]})"


PAGES = [
    "/inventory/orphaned/",
    "/inventory/catalog/",
    "/approvals/requests/",
    "/approvals/workflows/",
    "/campaigns/",
    "/campaigns/definitions/",
    "/webhooks/",
    "/inventory/issuers/",
    "/runtime/activity/",
    "/runtime/decisions/",
]


def test_list_pages_run_the_same_queries_as_their_lists_grow(demo: None, client: Any) -> None:
    client.force_login(User.objects.get(username="ivan"))

    def measure() -> dict[str, int]:
        counts = {}
        for path in PAGES:
            client.get(path)  # once-per-process caches warm
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            assert response.status_code == 200, path
            counts[path] = len(queries.captured_queries)
        return counts

    grow("a")  # every page has rows before it is measured: an empty page skips its prefetches
    before = measure()
    grow("b")
    assert measure() == before
