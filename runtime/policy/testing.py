"""Policy tests: named requests stored with a policy version, each with the decision expected.
A version cannot leave draft while one fails.

A test describes its request by what differs from a typical one — an active, human-in-the-loop
production agent with a verified workload identity and an active owner, asking on a weekday at
10:00 for a medium read scope of a production system it holds a grant for, directly (chain
depth 1), for nobody — so each test reads as the rule it checks::

    {"name": "an autonomous agent on restricted data gets no admin scope",
     "action": "exchange_token",
     "integration": {"autonomy": "autonomous", "data_classifications": ["restricted"]},
     "scope": {"access": "admin"},
     "context": {"hour": 10},
     "expect": "deny"}

``integration`` may also set ``owner_active`` and ``granted`` (whether it holds the scope);
``context`` may set ``hour``, ``minute``, ``weekday``, ``task``, ``chain_depth``, ``caller``
(declared caller attributes) and ``delegated_user`` (``{"active": false}``, or null).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy

from runtime.policy.schema import ACTIONS, caller_attributes, current_schema
from runtime.policy.source import LoadedPolicies

MAX_TESTS = 200
DECISIONS = ("allow", "deny")

DEFAULT_INTEGRATION: dict[str, Any] = {
    "name": "Test agent",
    "kind": "agent",
    "status": "active",
    "risk_tier": "medium",
    "autonomy": "human_in_loop",
    "environment": "production",
    "data_classifications": ["internal"],
    "acts_for_users": False,
    "vendor": "",
    "workload_identity": "proven",
    "workload_identity_verified": True,
    "orphaned": False,
    "owner_active": True,
    "granted": True,
}
DEFAULT_SCOPE: dict[str, Any] = {
    "code": "crm:contacts.read",
    "sensitivity": "medium",
    "access": "read",
    "environment": "production",
    "jit_eligible": False,
    "active": True,
}
DEFAULT_CONTEXT: dict[str, Any] = {
    "hour": 10,
    "minute": 0,
    "weekday": 2,
    "task": "",
    "chain_depth": 1,
    "caller": {},
    "delegated_user": None,
}
TEST_KEYS = frozenset({"name", "action", "integration", "scope", "context", "expect"})


class PolicyTestsInvalid(ValueError):
    """The tests themselves are malformed: ``field`` names where (``tests[3].scope.acess``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TestResult:
    name: str
    expected: str
    actual: str
    reasons: list[str]
    errors: list[str]

    @property
    def passed(self) -> bool:
        # A deny that comes from an evaluation error proves nothing about the rule under test.
        return self.expected == self.actual and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
            "reasons": self.reasons,
            "errors": self.errors,
        }


def _check_overrides(where: str, given: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise PolicyTestsInvalid(where, "must be an object.")
    for key, value in given.items():
        if key not in defaults:
            raise PolicyTestsInvalid(f"{where}.{key}", f"unknown; one of {', '.join(sorted(defaults))}.")
        expected = defaults[key]
        if expected is not None and not isinstance(value, type(expected)) and not (key == "delegated_user"):
            raise PolicyTestsInvalid(f"{where}.{key}", f"must be {type(expected).__name__}.")
    return dict(given)


def _check_caller(where: str, caller: Any) -> None:
    declared = caller_attributes()
    python_types = {"Bool": bool, "Long": int, "String": str}
    for key, value in caller.items():
        if key not in declared:
            raise PolicyTestsInvalid(f"{where}.{key}", "is not a declared caller attribute.")
        if not isinstance(value, python_types[declared[key]]) or (declared[key] == "Long" and isinstance(value, bool)):
            raise PolicyTestsInvalid(f"{where}.{key}", f"must be {declared[key]}.")


def _check_delegated(where: str, delegated: Any) -> None:
    """Null (nobody), or the person acted for: ``{}`` or ``{"active": false}``. Anything else
    would be read as nobody, and the test would check another rule than the one it names."""
    if delegated is None:
        return
    if not isinstance(delegated, dict) or set(delegated) - {"active"}:
        raise PolicyTestsInvalid(where, 'null, or an object with at most "active".')
    if not isinstance(delegated.get("active", True), bool):
        raise PolicyTestsInvalid(f"{where}.active", "must be bool.")


def checked_tests(raw: Any) -> list[dict[str, Any]]:
    """The tests, each checked: raises ``PolicyTestsInvalid`` naming the field at fault."""
    if not isinstance(raw, list):
        raise PolicyTestsInvalid("tests", "must be a list.")
    if len(raw) > MAX_TESTS:
        raise PolicyTestsInvalid("tests", f"at most {MAX_TESTS} tests.")
    names: set[str] = set()
    tests: list[dict[str, Any]] = []
    for index, test in enumerate(raw):
        where = f"tests[{index}]"
        if not isinstance(test, dict):
            raise PolicyTestsInvalid(where, "must be an object.")
        unknown = set(test) - TEST_KEYS
        if unknown:
            raise PolicyTestsInvalid(
                f"{where}.{sorted(unknown)[0]}", f"unknown; one of {', '.join(sorted(TEST_KEYS))}."
            )
        name = str(test.get("name") or "").strip()
        if not name or len(name) > 200 or name in names:
            raise PolicyTestsInvalid(f"{where}.name", "a name of up to 200 characters, unique among the tests.")
        names.add(name)
        if test.get("action") not in ACTIONS:
            raise PolicyTestsInvalid(f"{where}.action", f"one of {', '.join(ACTIONS)}.")
        if test.get("expect") not in DECISIONS:
            raise PolicyTestsInvalid(f"{where}.expect", "allow or deny.")
        context = _check_overrides(f"{where}.context", test.get("context"), DEFAULT_CONTEXT)
        _check_caller(f"{where}.context.caller", context.get("caller") or {})
        _check_delegated(f"{where}.context.delegated_user", context.get("delegated_user"))
        tests.append(
            {
                "name": name,
                "action": test["action"],
                "integration": _check_overrides(f"{where}.integration", test.get("integration"), DEFAULT_INTEGRATION),
                "scope": _check_overrides(f"{where}.scope", test.get("scope"), DEFAULT_SCOPE),
                "context": context,
                "expect": test["expect"],
            }
        )
    return tests


def _world(test: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The entities and the Cedar request a test describes."""
    integration = {**DEFAULT_INTEGRATION, **test["integration"]}
    scope = {**DEFAULT_SCOPE, **test["scope"]}
    context = {**DEFAULT_CONTEXT, **test["context"]}
    owner_active, granted = integration.pop("owner_active"), integration.pop("granted")
    owner = {
        "uid": {"type": "Person", "id": "owner"},
        "attrs": {"username": "owner", "roles": [], "active": owner_active},
    }
    system = {"type": "ResourceSystem", "id": scope["code"].split(":", 1)[0]}
    entities: list[dict[str, Any]] = [
        {**owner, "parents": []},
        {
            "uid": system,
            "attrs": {"code": system["id"], "name": system["id"], "environment": scope["environment"]},
            "parents": [],
        },
        {"uid": {"type": "Scope", "id": scope["code"]}, "attrs": scope, "parents": [system]},
        {
            "uid": {"type": "Integration", "id": "test"},
            "attrs": {
                **integration,
                "business_owner": {"__entity": owner["uid"]},
                "owners": [{"__entity": owner["uid"]}],
                "grants": [{"__entity": {"type": "Scope", "id": scope["code"]}}] if granted else [],
            },
            "parents": [],
        },
    ]
    cedar_context: dict[str, Any] = {
        "time": {
            "epoch": 0,
            "hour": context["hour"],
            "minute": context["minute"],
            "weekday": context["weekday"],
            "date": "2026-01-06",
        },
        "task": context["task"],
        "chain_depth": context["chain_depth"],
        "caller": dict(context["caller"]),
    }
    delegated = context["delegated_user"]
    if isinstance(delegated, dict):
        person = {"type": "Person", "id": "delegated"}
        active = bool(delegated.get("active", True))
        entities.append(
            {"uid": person, "attrs": {"username": "delegated", "roles": [], "active": active}, "parents": []}
        )
        cedar_context["delegated_user"] = {"__entity": person}
    request = {
        "principal": 'Integration::"test"',
        "action": f'Action::"{test["action"]}"',
        "resource": f'Scope::"{scope["code"]}"',
        "context": cedar_context,
    }
    return entities, request


def run_tests(policies: LoadedPolicies, tests: Sequence[Mapping[str, Any]]) -> list[TestResult]:
    """Each test's request decided by ``policies``; an evaluation error is a deny, as at run time."""
    schema = current_schema()
    results: list[TestResult] = []
    for test in tests:
        try:
            entities, request = _world(test)
            handle = cedarpy.Entities.from_json_str(json.dumps(entities), schema.handle)
            answer = cedarpy.is_authorized(request, policies.handle, handle, schema.handle)
            errors = [str(error) for error in answer.diagnostics.errors]
            reasons = sorted(str(reason) for reason in answer.diagnostics.reasons)
            actual = "allow" if answer.allowed and not errors else "deny"
        except Exception as exc:  # a test the engine cannot evaluate fails, with why
            reasons, errors, actual = [], [f"could not evaluate: {exc}"], "deny"
        results.append(TestResult(test["name"], test["expect"], actual, reasons, errors))
    return results
