"""The token exchange asks the runtime policy about every scope it would issue: the enforced
version narrows the token (or refuses it, naming the policies), shadow versions are only logged,
an evaluation error is a deny, and the issuance record carries the decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.db import DatabaseError

from governance.models import User
from inventory.models import Integration, ResourceSystem, Scope
from runtime import tokens
from runtime.errors import ExchangeRefused
from runtime.exchange import token_exchange
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion, TokenEvent
from runtime.policy import log as decision_log
from runtime.policy.defaults import default_text
from runtime.policy.source import text_sha256
from tests.runtime.exchange_support import World, build_world, grant
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import TestIssuer

pytestmark = pytest.mark.django_db

TUESDAY_NIGHT = datetime.fromisoformat("2026-11-24T22:30:00+00:00")
TUESDAY_MORNING = datetime.fromisoformat("2026-11-24T10:30:00+00:00")
FORBID_ALL = '\n@id("pause-everything")\n@description("Pause.")\nforbid (principal, action, resource);\n'
# Validates (the types fit) but overflows when evaluated: Cedar would skip the erroring forbid
# and let the permit through; the decision point denies instead.
OVERFLOWING = (
    '\n@id("overflowing")\n@description("Errs at run time.")\n'
    "forbid (principal, action, resource) when { context.chain_depth + 9223372036854775807 > 0 };\n"
)
NO_CRM_WRITES_WITH_SALARIES = (
    '\n@id("no-crm-writes-with-salaries")\n@description("Who reads salaries writes nothing to the CRM.")\n'
    "forbid (principal, action, resource is Scope) when {\n"
    '  principal.grants.contains(Scope::"hr:salaries.read") && resource.code == "crm:write"\n};\n'
)


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    return build_world(test_issuer, owner)


def add_version(text: str, status: str) -> PolicyVersion:
    if status == PolicyStatus.ENFORCED:
        PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
    number = PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0
    return PolicyVersion.objects.create(
        number=number + 1, title=status, cedar_text=text, sha256=text_sha256(text), status=status
    )


def refusal(params: dict[str, str]) -> ExchangeRefused:
    with pytest.raises(ExchangeRefused) as caught:
        token_exchange(params)
    return caught.value


def test_an_issuance_records_the_policy_decisions(world: World) -> None:
    with time_machine.travel(TUESDAY_MORNING, tick=False):
        claims = tokens.verify(token_exchange(world.params())["access_token"])
    event = TokenEvent.objects.get(jti=claims["jti"])
    assert event.policy_version == 1 and event.policy_reasons == ["permit-within-active-grants"]
    decisions = PolicyDecision.objects.filter(decision_id__in=event.policy_decisions).order_by("resource")
    assert [(row.point, row.resource, row.decision, row.trace) for row in decisions] == [
        ("token_exchange", 'Scope::"crm:read"', "allow", claims["jti"]),
        ("token_exchange", 'Scope::"crm:write"', "allow", claims["jti"]),
    ]
    assert decisions[0].context["chain_depth"] == 1 and decisions[0].context["time"]["hour"] == 10


def test_a_development_integration_is_refused_production_scopes_naming_the_policy(world: World) -> None:
    Integration.objects.filter(pk=world.integration.pk).update(environment="development")
    refused = refusal(world.params())
    assert refused.error == "access_denied"
    assert "forbid-development-on-production" in refused.description
    event = TokenEvent.objects.get()
    assert event.outcome == "refused" and event.policy_reasons == ["forbid-development-on-production"]
    # The same integration on a development system gets its token.
    ResourceSystem.objects.filter(pk=world.crm.pk).update(environment="development")
    assert token_exchange(world.params())["scope"] == "crm:read crm:write"


def test_a_critical_scope_is_left_out_at_night(world: World) -> None:
    Scope.objects.filter(pk=world.scopes["write"].pk).update(sensitivity="critical")
    with time_machine.travel(TUESDAY_NIGHT, tick=False):
        response = token_exchange(world.params())
    assert response["scope"] == "crm:read"
    event = TokenEvent.objects.get()
    assert event.scopes_granted == ["crm:read"]
    assert event.reason.startswith("Left out by runtime policy: crm:write: Denied by policy critical-scopes-in-busi")
    assert set(event.policy_reasons) == {"permit-within-active-grants", "critical-scopes-in-business-hours"}
    with time_machine.travel(TUESDAY_MORNING, tick=False):
        assert token_exchange(world.params())["scope"] == "crm:read crm:write"


def test_a_shadow_deny_never_blocks_but_is_logged(world: World) -> None:
    shadow = add_version(default_text() + FORBID_ALL, PolicyStatus.SHADOW)
    with time_machine.travel(TUESDAY_MORNING, tick=False):
        assert token_exchange(world.params(scope="crm:read"))["scope"] == "crm:read"
    row = PolicyDecision.objects.get()
    assert row.decision == "allow" and row.policy_version_id == PolicyVersion.objects.get(number=1).pk
    assert row.shadow == {str(shadow.number): {"decision": "deny", "reasons": ["pause-everything"], "errors": []}}


def test_an_enforced_forbid_refuses(world: World) -> None:
    add_version(default_text() + FORBID_ALL, PolicyStatus.ENFORCED)
    refused = refusal(world.params())
    assert refused.error == "access_denied" and "pause-everything (Pause)" in refused.description


def test_an_evaluation_error_is_a_deny(world: World) -> None:
    add_version(default_text() + OVERFLOWING, PolicyStatus.ENFORCED)
    refused = refusal(world.params(scope="crm:read"))
    assert "could not be evaluated" in refused.description and "overflow" in refused.description
    row = PolicyDecision.objects.get()
    assert row.decision == "deny" and row.errors


def test_no_enforced_version_refuses_everything(world: World) -> None:
    PolicyVersion.objects.update(status=PolicyStatus.RETIRED)
    refused = refusal(world.params())
    assert refused.error == "access_denied" and "no policy version is enforced" in refused.description


def test_the_policy_is_told_of_the_grants_on_other_systems_too(world: World) -> None:
    """A toxic combination across systems: the exchange for one system must see the grants the
    integration holds on another, as the decision API does, or the forbid never matches here."""
    hr = ResourceSystem.objects.create(code="hr", name="HR")
    grant(world.integration, Scope.objects.create(system=hr, name="salaries", code="hr:salaries.read"))
    add_version(default_text() + NO_CRM_WRITES_WITH_SALARIES, PolicyStatus.ENFORCED)
    with time_machine.travel(TUESDAY_MORNING, tick=False):
        assert token_exchange(world.params())["scope"] == "crm:read"
    left_out = PolicyDecision.objects.get(resource='Scope::"crm:write"')
    assert left_out.decision == "deny" and left_out.reasons == ["no-crm-writes-with-salaries"]
    # The token still carries only the system asked for.
    assert TokenEvent.objects.get().scopes_granted == ["crm:read"]


@pytest.mark.parametrize("forbid_all", [False, True], ids=["would-issue", "policy-refuses"])
def test_decisions_that_cannot_be_logged_refuse_the_token_and_the_refusal_is_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch, forbid_all: bool
) -> None:
    """Issued or refused by the exchange itself, the answer waits for its decisions on the log."""

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise DatabaseError("disk full")

    # The database refusing the write is simulated: the one failure a test cannot cause for real.
    monkeypatch.setattr(decision_log, "append", broken)
    if forbid_all:
        add_version(default_text() + FORBID_ALL, PolicyStatus.ENFORCED)
    refused = refusal(world.params(scope="crm:read"))
    assert (refused.error, refused.status) == ("temporarily_unavailable", 503)
    assert not PolicyDecision.objects.exists()
    event = TokenEvent.objects.get()
    assert (event.outcome, event.error, event.jti, event.policy_decisions) == (
        "refused",
        "temporarily_unavailable",
        "",
        [],
    )
    assert "DatabaseError" in event.reason
