"""Policy texts and helpers for the version, promotion and API tests: the shipped set, the same set
with one more forbid (and a test for it), a typo at a known place, and a finished replay."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from governance.models import AuditEvent, User
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion, ReplayStatus

VENDOR_FORBID = """
@id("forbid-vendor-admin")
@description("A vendor's integration gets no admin-level scope.")
forbid (principal is Integration, action, resource is Scope)
when { principal.vendor != "" && resource.access == "admin" };
"""
VENDOR_TEST: dict[str, Any] = {
    "name": "a vendor's agent gets no admin scope",
    "action": "exchange_token",
    "integration": {"vendor": "Acme"},
    "scope": {"access": "admin"},
    "expect": "deny",
}
# Line 4, column 18 is where the misspelt attribute starts.
TYPO_TEXT = """@id("permit-held")
@description("An active integration uses what it holds.")
permit (principal is Integration, action, resource is Scope)
when { principal.statuss == "active" && principal.grants.contains(resource) };
"""


def shipped() -> PolicyVersion:
    """Version 1, seeded enforced by the migrations."""
    return PolicyVersion.objects.get(number=1)


def stricter_text() -> str:
    return shipped().cedar_text + VENDOR_FORBID


def stricter_tests() -> list[dict[str, Any]]:
    return [*shipped().tests, VENDOR_TEST]


def replayed(version: PolicyVersion, by: User) -> PolicyReplay:
    """A finished replay of the version's current text (what the replay task leaves behind)."""
    now = timezone.now()
    return PolicyReplay.objects.create(
        candidate=version,
        candidate_sha256=version.sha256,
        status=ReplayStatus.DONE,
        requested_by=by,
        started_at=now,
        finished_at=now,
        counts={"unchanged": 0, "allow_to_deny": 0, "deny_to_allow": 0, "errors": 0},
    )


def enforced_numbers() -> list[int]:
    return list(PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).values_list("number", flat=True))


def audited(action: str, version: PolicyVersion) -> tuple[AuditEvent, dict[str, Any], dict[str, Any]]:
    """The one audit event ``action`` about ``version``, with its before and after."""
    event = AuditEvent.objects.get(action=action, target_id=str(version.pk))
    return event, event.before or {}, event.after or {}
