"""Discovery rows built directly, for tests that start from what an import would have left:
an import, a discovered app, a person's consent, a finding. Each takes the few values a test
cares about and fills the rest with plain defaults (unique app keys, present, seen now)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from governance.models import User
from inventory.discovery.models import (
    ConsentType,
    DiscoveredApp,
    DiscoveredConsent,
    DiscoveryImport,
    Finding,
    FindingKind,
    FindingStatus,
    ImportMethod,
    ImportStatus,
    ScopeMapping,
)
from inventory.models import ResourceSystem, Scope

_keys = itertools.count(1)

GOOGLE_SCOPES = (
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
)


def make_import(
    *,
    source: str = "google",
    tenant: str = "example.com",
    started_by: User | None = None,
    status: str = ImportStatus.SUCCEEDED,
    **fields: Any,
) -> DiscoveryImport:
    """A finished upload of ``source`` for ``tenant`` (succeeded unless ``status`` says else)."""
    now = timezone.now()
    values: dict[str, Any] = {
        "method": ImportMethod.UPLOAD,
        "started_at": now,
        "finished_at": now if status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED) else None,
        "file_name": f"{source}.json",
    }
    values.update(fields)
    return DiscoveryImport.objects.create(source=source, tenant=tenant, status=status, started_by=started_by, **values)


def make_app(
    *,
    source: str = "google",
    tenant: str = "example.com",
    app_key: str = "",
    name: str = "MeetingNotes AI",
    publisher: str = "Notes Corp",
    scopes: Sequence[str] = GOOGLE_SCOPES,
    imp: DiscoveryImport | None = None,
    **fields: Any,
) -> DiscoveredApp:
    """A present app of ``source`` (a unique app key unless one is given)."""
    return DiscoveredApp.objects.create(
        source=source,
        tenant=tenant,
        app_key=app_key or f"{next(_keys)}-app.apps.googleusercontent.com",
        name=name,
        publisher=publisher,
        scopes=list(scopes),
        first_import=imp,
        last_import=imp,
        **fields,
    )


def make_consent(
    app: DiscoveredApp,
    *,
    person: User | None = None,
    person_key: str = "",
    scopes: Sequence[str] | None = None,
    consent_type: str = ConsentType.USER,
    grant_ids: Sequence[str] = (),
    imp: DiscoveryImport | None = None,
    **fields: Any,
) -> DiscoveredConsent:
    """``person``'s consent to ``app`` (keyed by their email unless ``person_key`` is given;
    ``"*"`` with an admin consent). The app's people count follows."""
    key = (
        person_key or (person.email if person is not None else "") or ("*" if consent_type == ConsentType.ADMIN else "")
    )
    consent = DiscoveredConsent.objects.create(
        app=app,
        person_key=key or f"someone{next(_keys)}@example.com",
        person_email=person.email if person is not None else "",
        person=person,
        consent_type=consent_type,
        scopes=list(app.scopes if scopes is None else scopes),
        grant_ids=list(grant_ids),
        last_import=imp or app.last_import,
        **fields,
    )
    DiscoveredApp.objects.filter(pk=app.pk).update(
        people_count=DiscoveredConsent.objects.filter(app=app, present=True).exclude(person_key="*").count(),
        admin_consent=DiscoveredConsent.objects.filter(app=app, consent_type=ConsentType.ADMIN).exists(),
    )
    app.refresh_from_db()
    return consent


def make_finding(
    app: DiscoveredApp | None,
    *,
    kind: str = FindingKind.SHADOW,
    status: str = FindingStatus.OPEN,
    imp: DiscoveryImport | None = None,
    extra_scopes: Sequence[str] | None = None,
    **fields: Any,
) -> Finding:
    """A ``kind`` finding about ``app`` (its source, tenant and key), open unless ``status``
    says else; a shadow finding's extra scopes are the app's scopes."""
    values: dict[str, Any] = {
        "source": app.source if app is not None else "google",
        "tenant": app.tenant if app is not None else "example.com",
        "app_key": app.app_key if app is not None else f"{next(_keys)}-gone",
        "title": app.name if app is not None else "A registered app the provider no longer lists",
        "people_affected": app.people_count if app is not None else 0,
        "integration": app.integration if app is not None else None,
    }
    values.update(fields)
    if extra_scopes is None:
        extra_scopes = list(app.scopes) if app is not None and kind == FindingKind.SHADOW else []
    return Finding.objects.create(
        kind=kind,
        status=status,
        app=app,
        extra_scopes=list(extra_scopes),
        opened_by_import=imp or (app.last_import if app is not None else None),
        last_import=imp or (app.last_import if app is not None else None),
        **values,
    )


def make_scope(code: str, *, sensitivity: str = "medium", access: str = "read") -> Scope:
    """A catalog scope ``system:name`` (its system made on first use)."""
    system_code, name = code.split(":", 1)
    system, _ = ResourceSystem.objects.get_or_create(code=system_code, defaults={"name": system_code.title()})
    return Scope.objects.create(system=system, name=name, code=code, sensitivity=sensitivity, access=access)


def map_scope(source: str, provider_scope: str, scope: Scope) -> ScopeMapping:
    """IAM's mapping of a provider's scope name to ``scope``."""
    return ScopeMapping.objects.create(source=source, provider_scope=provider_scope, scope=scope)
