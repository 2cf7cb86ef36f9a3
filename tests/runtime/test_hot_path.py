"""The token endpoint's hot path: what it reads on every exchange and what it may take from the
process's short-lived copies of configuration. What decides access (the issuer being active, the
integration, its owner, its binding, its grants) bites on the very next exchange even when it is
changed by another process (here: a queryset update, which drops no copy); so does an issuer's
configuration, confirmed current by its version on every use. A system's configuration may lag
by the copy's lifetime, never longer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, ReviewItem
from governance.models import User
from inventory.models import Integration, ResourceSystem, TrustedIssuer
from runtime import tokens, workload
from runtime.errors import ExchangeRefused
from runtime.exchange import SYSTEM_CACHE_SECONDS, token_exchange
from runtime.hotcache import TtlCache
from tests.runtime.exchange_support import CRM_AUDIENCE, World, build_world
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import TestIssuer

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    return build_world(test_issuer, owner)


def refused(world: World, **params: str) -> ExchangeRefused:
    with pytest.raises(ExchangeRefused) as caught:
        token_exchange(world.params(**params))
    return caught.value


def test_an_exchange_reads_the_binding_the_grants_and_the_policy_and_writes_its_records(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        token_exchange(world.params())  # copies, keys and the first signing key made and kept
    with CaptureQueriesContext(connection) as queries:
        token_exchange(world.params())
    statements = [query["sql"] for query in queries.captured_queries]
    tables = [sql.split('"')[1] for sql in statements if sql.startswith(("SELECT", "INSERT", "UPDATE"))]
    # The binding brings the integration and its owners, the grants their scopes; the runtime
    # policy reads the owners' groups and which versions are enforced or in shadow; its decisions
    # and the token's record are written in one transaction (here a savepoint: one commit).
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 1
    assert tables == [
        "inventory_workloadbinding",
        "inventory_grant",
        "governance_user_groups",
        "runtime_policyversion",
        "runtime_policydecision",
        "runtime_tokenevent",
    ]


def test_an_issuer_deactivated_by_another_process_refuses_the_next_token(world: World) -> None:
    token_exchange(world.params())
    TrustedIssuer.objects.filter(pk=world.issuer.pk).update(is_active=False)
    assert "deactivated" in refused(world).description


def test_an_integration_suspended_by_another_process_is_refused_at_once(world: World) -> None:
    token_exchange(world.params())
    Integration.objects.filter(pk=world.integration.pk).update(status="suspended")
    assert "suspended" in refused(world).description


def test_a_system_audience_changed_elsewhere_is_followed_within_the_copys_lifetime(world: World) -> None:
    token_exchange(world.params())
    ResourceSystem.objects.filter(pk=world.crm.pk).update(audience="https://crm.example.com/v2")
    token_exchange(world.params())  # the old name still resolves from this process's copy
    with time_machine.travel(timezone.now() + timedelta(seconds=SYSTEM_CACHE_SECONDS + 1), tick=False):
        assert refused(world).error == "invalid_target"
        issued = token_exchange(world.params(audience="https://crm.example.com/v2"))
        assert tokens.verify(issued["access_token"])["aud"] == "https://crm.example.com/v2"


def test_a_saved_system_is_followed_at_once_in_this_process(world: World) -> None:
    token_exchange(world.params())
    world.crm.audience = "https://crm.example.com/v2"
    world.crm.save()
    assert refused(world, audience=CRM_AUDIENCE).error == "invalid_target"


def test_an_overdue_review_is_looked_up_only_once_a_running_campaign_is_past_its_deadline(world: World) -> None:
    definition = CampaignDefinition.objects.create(name="Quarterly", owner=world.owner)
    campaign = Campaign.objects.create(
        definition=definition,
        name="Q4",
        owner=world.owner,
        status=CampaignStatus.ACTIVE,
        granularity="grant",
        default_action="revoke",
        apply_mode="immediate",
        second_stage="none",
        deadline=timezone.now() + timedelta(days=1),
    )
    ReviewItem.objects.create(campaign=campaign, integration=world.integration, grant=world.grants["read"])
    token_exchange(world.params())
    with CaptureQueriesContext(connection) as before_deadline:
        token_exchange(world.params(scope="crm:read"))
    assert not any("campaigns_reviewitem" in query["sql"] for query in before_deadline.captured_queries)
    # The deadline passes with the copy still fresh: it is compared with the exchange's own time.
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1), tick=False):
        assert "Recertification overdue" in refused(world, scope="crm:read").description


def test_tokens_naming_endless_issuers_do_not_grow_the_processs_copies(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``iss`` is read before anything is verified: anyone can name new ones on every call."""
    monkeypatch.setattr(workload.ISSUER_COPIES, "max_entries", 5)
    for number in range(40):
        forged = world.test_issuer.sign(world.test_issuer.claims(iss=f"https://issuer-{number}.example.com"))
        assert "not a trusted issuer" in refused(world, subject_token=forged).description
    assert len(workload.ISSUER_COPIES) <= 5
    assert token_exchange(world.params())["scope"] == "crm:read crm:write"


def test_a_full_copy_drops_what_expired_before_refusing_new_entries() -> None:
    copies: TtlCache[int] = TtlCache(5, max_entries=2)
    copies.get("a", lambda: 1)
    copies.get("b", lambda: 2)
    copies.get("c", lambda: 3)  # full of fresh entries: answered, not kept
    assert len(copies) == 2 and copies.get("c", lambda: 30) == 30
    with time_machine.travel(timezone.now() + timedelta(seconds=6), tick=False):
        assert copies.get("c", lambda: 31) == 31
        assert len(copies) == 1 and copies.get("c", lambda: 32) == 31


def test_acting_for_a_user_reads_the_groups_once_however_many_scopes(
    world: World, make_test_issuer: Callable[..., TestIssuer], make_user: Callable[..., User]
) -> None:
    idp = make_test_issuer()
    idp.trusted_issuer(kind="static_jwks")
    make_user("alice")
    Integration.objects.filter(pk=world.integration.pk).update(acts_for_users=True)
    params = world.params(
        idp.token("00u-alice", preferred_username="alice"),
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
        actor_token=world.workload_token(),
        actor_token_type="urn:ietf:params:oauth:token-type:jwt",
    )
    token_exchange(params)
    with CaptureQueriesContext(connection) as queries:
        assert token_exchange(params)["scope"] == "crm:read crm:write"
    group_reads = [query for query in queries.captured_queries if '"governance_user_groups"' in query["sql"]]
    assert len(group_reads) == 1
