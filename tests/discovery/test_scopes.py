"""The provider's scopes against the catalog: what an unmapped scope is estimated to be, what a
mapping says instead, and mappings kept by IAM admins only, audited, rescoring the source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from governance.actors import Actor
from governance.exceptions import ValidationFailed
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.choices import AccessLevel, Sensitivity
from inventory.discovery import scopes
from inventory.discovery.choices import FindingKind
from inventory.discovery.models import DiscoveredApp, Finding, ScopeMapping
from tests.discovery.factories import make_scope
from tests.discovery.importing import DRIVE, GMAIL_SEND, PROFILE, numbered, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("source", "name", "access", "sensitivity"),
    [
        ("google", "openid", AccessLevel.READ, Sensitivity.LOW),
        ("google", PROFILE, AccessLevel.READ, Sensitivity.LOW),
        ("google", DRIVE, AccessLevel.READ, Sensitivity.HIGH),
        ("google", "https://www.googleapis.com/auth/calendar.readonly", AccessLevel.READ, Sensitivity.MEDIUM),
        ("google", "https://www.googleapis.com/auth/drive", AccessLevel.WRITE, Sensitivity.HIGH),
        ("google", GMAIL_SEND, AccessLevel.WRITE, Sensitivity.HIGH),
        ("google", "https://mail.google.com/", AccessLevel.WRITE, Sensitivity.CRITICAL),
        ("google", "https://www.googleapis.com/auth/admin.directory.user", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("google", "https://www.googleapis.com/auth/admin.directory.user.readonly", AccessLevel.READ, Sensitivity.HIGH),
        ("entra", "User.Read", AccessLevel.READ, Sensitivity.LOW),
        ("entra", "Mail.Read", AccessLevel.READ, Sensitivity.HIGH),
        ("entra", "Files.ReadWrite.All", AccessLevel.WRITE, Sensitivity.HIGH),
        ("entra", "Directory.ReadWrite.All", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("entra", "Directory.AccessAsUser.All", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("slack", "channels:history", AccessLevel.READ, Sensitivity.HIGH),
        ("slack", "chat:write", AccessLevel.WRITE, Sensitivity.HIGH),
        ("slack", "emoji:read", AccessLevel.READ, Sensitivity.MEDIUM),
        ("slack", "admin.users:write", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("github", "metadata:read", AccessLevel.READ, Sensitivity.LOW),
        ("github", "contents:write", AccessLevel.WRITE, Sensitivity.HIGH),
        ("github", "issues:read", AccessLevel.READ, Sensitivity.MEDIUM),
        ("github", "administration:write", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("github", "organization_administration:admin", AccessLevel.ADMIN, Sensitivity.CRITICAL),
        ("okta", "okta.users.read", AccessLevel.READ, Sensitivity.MEDIUM),
        ("okta", "okta.users.manage", AccessLevel.ADMIN, Sensitivity.CRITICAL),
    ],
)
def test_an_unmapped_scope_is_estimated_from_its_name(source: str, name: str, access: str, sensitivity: str) -> None:
    assert (scopes.estimate_access(source, name), scopes.estimate_sensitivity(source, name)) == (access, sensitivity)


def test_mapping_for_reads_every_name_in_one_query(django_assert_num_queries: Callable[..., Any]) -> None:
    drive = make_scope("gdrive:files.read")
    ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive)
    ScopeMapping.objects.create(source="entra", provider_scope=PROFILE, scope=drive)
    with django_assert_num_queries(1):
        found = scopes.mapping_for("google", [DRIVE, PROFILE, DRIVE])
        assert found == {DRIVE: drive, PROFILE: None}
        mapped = found[DRIVE]
        assert mapped is not None and mapped.system.code == "gdrive"


def test_scope_rows_show_the_mapping_or_the_estimate(iam_admin: User) -> None:
    drive = make_scope("gdrive:files.read", sensitivity="critical", access="read")
    ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive)
    run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE, GMAIL_SEND))]))
    rows = scopes.scope_rows(DiscoveredApp.objects.get())
    assert rows == [
        {"provider_scope": DRIVE, "scope": drive, "sensitivity": "critical", "access": "read", "estimated": False},
        {"provider_scope": GMAIL_SEND, "scope": None, "sensitivity": "high", "access": "write", "estimated": True},
    ]


def test_a_scope_the_provider_flags_sensitive_is_at_least_high(iam_admin: User) -> None:
    run(
        iam_admin,
        numbered(
            [
                (
                    "A01",
                    "*",
                    ("emoji:read",),
                    {"consent_type": "admin", "details": {"sensitive_scopes": {"emoji:read": True}}},
                )
            ]
        ),
        source="slack",
    )
    (row,) = scopes.scope_rows(DiscoveredApp.objects.get())
    assert (row["sensitivity"], row["estimated"]) == ("high", True)


def test_only_iam_admins_keep_mappings(make_user: Callable[..., User], auditor: User, owner: User) -> None:
    drive = make_scope("gdrive:files.read")
    for person in (owner, auditor):
        with pytest.raises(PermissionDenied):
            scopes.scope_mapping_save(actor=person, source="google", provider_scope=DRIVE, scope=drive)
    assert not ScopeMapping.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"source": "myspace"}, "source"),
        ({"provider_scope": "  "}, "provider_scope"),
        ({"provider_scope": "a\nb"}, "provider_scope"),
        ({"provider_scope": "x" * 301}, "provider_scope"),
    ],
)
def test_a_bad_mapping_names_the_field(iam_admin: User, values: dict[str, str], field: str) -> None:
    arguments: dict[str, Any] = {"source": "google", "provider_scope": DRIVE, "scope": make_scope("gdrive:files.read")}
    arguments.update(values)
    with pytest.raises(ValidationFailed) as refused:
        scopes.scope_mapping_save(actor=iam_admin, **arguments)
    assert field in refused.value.errors


def test_a_retired_scope_cannot_be_mapped_to(iam_admin: User) -> None:
    retired = make_scope("gdrive:files.read")
    retired.is_active = False
    retired.save()
    with pytest.raises(ValidationFailed) as refused:
        scopes.scope_mapping_save(actor=iam_admin, source="google", provider_scope=DRIVE, scope=retired)
    assert "scope" in refused.value.errors


def test_saving_and_deleting_a_mapping_is_audited_and_rescores_the_sources_findings(
    make_user: Callable[..., User], iam_admin: User
) -> None:
    run(iam_admin, numbered([("notes.apps", "ann@example.com", ("https://www.googleapis.com/auth/tasks.readonly",))]))
    finding = Finding.objects.get(kind=FindingKind.SHADOW)
    estimated = (finding.risk_score, finding.risk_tier)
    critical = make_scope("gtasks:all", sensitivity="critical", access="admin")

    mapping = scopes.scope_mapping_save(
        actor=iam_admin,
        source="google",
        provider_scope=" https://www.googleapis.com/auth/tasks.readonly ",
        scope=critical,
    )
    assert (mapping.provider_scope, mapping.updated_by) == ("https://www.googleapis.com/auth/tasks.readonly", iam_admin)
    finding.refresh_from_db()
    codes = {factor["code"] for factor in finding.risk_factors}
    assert {"admin_scopes", "restricted_data"} <= codes
    assert finding.risk_score > estimated[0]
    assert DiscoveredApp.objects.get().risk_score == finding.risk_score
    saved = AuditEvent.objects.get(action="discovery.scope_mapping_saved")
    assert (saved.owner, saved.before, (saved.after or {})["scope"]) == (iam_admin, None, "gtasks:all")

    # Saving the same mapping again writes nothing.
    scopes.scope_mapping_save(actor=iam_admin, source="google", provider_scope=mapping.provider_scope, scope=critical)
    assert AuditEvent.objects.filter(action="discovery.scope_mapping_saved").count() == 1

    scopes.scope_mapping_delete(actor=iam_admin, mapping=mapping)
    assert not ScopeMapping.objects.exists()
    finding.refresh_from_db()
    assert (finding.risk_score, finding.risk_tier) == estimated
    deleted = AuditEvent.objects.get(action="discovery.scope_mapping_deleted")
    assert (deleted.owner, deleted.target_id, (deleted.before or {})["scope"]) == (
        iam_admin,
        str(mapping.pk),
        "gtasks:all",
    )


def test_pointing_a_mapping_elsewhere_records_both_scopes(iam_admin: User) -> None:
    first = make_scope("gdrive:files.read")
    second = make_scope("gdrive:files.all", sensitivity="critical")
    scopes.scope_mapping_save(actor=iam_admin, source="google", provider_scope=DRIVE, scope=first)
    mapping = scopes.scope_mapping_save(actor=iam_admin, source="google", provider_scope=DRIVE, scope=second)
    assert ScopeMapping.objects.get().scope == second == mapping.scope
    changed = AuditEvent.objects.filter(action="discovery.scope_mapping_saved").latest("pk")
    assert ((changed.before or {})["scope"], (changed.after or {})["scope"]) == (
        "gdrive:files.read",
        "gdrive:files.all",
    )


def test_the_system_keeps_mappings_for_an_iam_admin_only(make_user: Callable[..., User]) -> None:
    admin = make_user("keeper", Role.IAM_ADMIN)
    someone = make_user("someone", Role.BUSINESS_USER)
    drive = make_scope("gdrive:files.read")
    scopes.scope_mapping_save(
        actor=Actor.system(on_behalf_of=admin), source="google", provider_scope=DRIVE, scope=drive
    )
    with pytest.raises(PermissionDenied):
        scopes.scope_mapping_save(
            actor=Actor.system(on_behalf_of=someone), source="google", provider_scope="x", scope=drive
        )
