"""What the importer's, findings' and scope mappings' tests share: consent records built in code
(the importer's input whatever the format), provider files written the way the providers answer,
and dumps of every discovery row to prove what an import changed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict

from governance.actors import Actor
from governance.models import User
from inventory import services
from inventory.discovery import importer
from inventory.discovery.choices import ConsentType, ImportMethod, ImportStatus
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, DiscoveryImport, Finding
from inventory.discovery.records import ConsentRecord, RecordError
from inventory.models import Integration, Scope

DRIVE = "https://www.googleapis.com/auth/drive.readonly"
CALENDAR = "https://www.googleapis.com/auth/calendar.readonly"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
PROFILE = "https://www.googleapis.com/auth/userinfo.profile"


def record(
    number: int,
    app_key: str,
    person_key: str,
    scopes: Iterable[str] = (DRIVE,),
    *,
    name: str = "",
    consent_type: str = ConsentType.USER,
    **extra: Any,
) -> ConsentRecord:
    """One consent as a format would read it."""
    return ConsentRecord(
        record_no=number,
        app_key=app_key,
        app_name=name or f"App {app_key}",
        consent_type=consent_type,
        person_key=person_key,
        scopes=tuple(scopes),
        **extra,
    )


def numbered(rows: Iterable[tuple[Any, ...]]) -> list[ConsentRecord]:
    """Records numbered from 1, each row ``(app_key, person_key[, scopes[, {field: value}]])``."""
    built = []
    for number, row in enumerate(rows, start=1):
        extra = row[3] if len(row) > 3 else {}
        built.append(record(number, *row[:3], **extra))
    return built


def failing_after(records: Iterable[ConsentRecord], error: RecordError) -> Iterator[ConsentRecord]:
    """``records``, then the error a malformed record further on raises."""
    yield from records
    raise error


def queued_import(
    admin: User, *, source: str = "google", tenant: str = "example.com", complete: bool = True
) -> DiscoveryImport:
    """An import waiting for the worker, as an upload leaves it."""
    return DiscoveryImport.objects.create(
        source=source,
        tenant=tenant,
        method=ImportMethod.UPLOAD,
        complete=complete,
        status=ImportStatus.QUEUED,
        started_by=admin,
    )


def run(
    admin: User,
    records: Iterable[ConsentRecord],
    *,
    source: str = "google",
    tenant: str = "example.com",
    complete: bool = True,
) -> DiscoveryImport:
    """Import ``records`` now, as ``admin`` (the worker's path without the file)."""
    imp = queued_import(admin, source=source, tenant=tenant, complete=complete)
    return importer.import_records(imp, records)


def google_tokens_file(path: Path, users: dict[str, list[dict[str, Any]]]) -> Path:
    """A Google pull as the worker reads it: per user, a directory users page naming them and
    their tokens page (``users``: email → tokens ``{"clientId", "displayText", "scopes"}``)."""
    lines = []
    for number, (email, tokens) in enumerate(users.items(), start=1):
        user_id = f"10{number:018d}"
        lines.append({"kind": "admin#directory#users", "users": [{"id": user_id, "primaryEmail": email}]})
        lines.append(
            {
                "kind": "admin#directory#tokenList",
                "items": [
                    {
                        "kind": "admin#directory#token",
                        "userKey": user_id,
                        "anonymous": False,
                        "nativeApp": False,
                        **token,
                    }
                    for token in tokens
                ],
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def rows_of(model: type[Any], *, without: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every row of ``model`` as a dict of all its columns (foreign keys as ids), by id."""
    skip = set(without)
    dumped = []
    for obj in model.objects.order_by("pk"):
        row = model_to_dict(obj)
        for field in obj._meta.concrete_fields:
            row[field.attname] = getattr(obj, field.attname)
        dumped.append({name: value for name, value in sorted(row.items()) if name not in skip})
    return dumped


def discovery_rows(*, without: Iterable[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every app, consent and finding row (``without`` some columns)."""
    return {
        "apps": rows_of(DiscoveredApp, without=without),
        "consents": rows_of(DiscoveredConsent, without=without),
        "findings": rows_of(Finding, without=without),
    }


def registered(
    owner: User,
    *,
    name: str,
    requested: Iterable[Scope],
    granted: Iterable[Scope] = (),
    external_ids: Iterable[tuple[str, str]] = (),
    active: bool = True,
) -> Integration:
    """An integration ``owner`` registered with ``external_ids``, made active with grants of
    ``granted`` (what approvals does on approval) unless ``active`` is False (a draft)."""
    integration = services.integration_register(
        actor=owner,
        values={
            "name": name,
            "kind": "chatbot",
            "purpose": "Summarises meetings.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            "workload_identity": "spiffe://example.org/ns/ai/sa/notes",
            "requested_scopes": list(requested),
            "external_app_ids": list(external_ids),
        },
    )
    if not active:
        return integration
    actor = Actor.system(on_behalf_of=owner)
    services.integration_transition(actor=actor, integration=integration, to_status="pending")
    services.integration_transition(actor=actor, integration=integration, to_status="active")
    grant(integration, granted)
    integration.refresh_from_db()
    return integration


def grant(integration: Integration, scopes: Iterable[Scope]) -> None:
    """Active grants of ``scopes`` (what approvals makes when a request is approved)."""
    wanted = list(scopes)
    if not wanted:
        return
    with transaction.atomic():
        services.grant_create_many(
            actor=Actor.system(on_behalf_of=integration.business_owner),
            integration=integration,
            scopes=wanted,
            source_type="tests",
            source_id="1",
            approvers=[integration.business_owner],
            expires_at=None,
        )
