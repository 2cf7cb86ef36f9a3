"""Importing a provider's grants: an upload or a pull becomes discovered apps, consents and
findings, all or nothing.

``import_upload`` (IAM admins) spools the file and queues ``import_run``; ``import_path`` creates
and runs an import at once (pulls, the demo, the benchmark). An import runs in **one
transaction**: the records are written (``inventory.discovery.writing``: set-based, in chunks,
idempotent), the findings refreshed (``inventory.discovery.findings``) and the import recorded
with its counts and audited (``discovery.imported``). A malformed record rolls all of it back;
the import is then marked failed, naming the record and field, in a write of its own
(``discovery.import_failed``). Either way the spooled file is deleted.

An import is claimed (queued → running) in a write of its own before it runs, so a retried task
finds it taken and does nothing twice; a worker killed mid-import leaves it ``running`` with
nothing of its data written. Imports of one source and tenant run one at a time (a
transaction-scoped lock on PostgreSQL; SQLite lets one writer in at a time anyway).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from governance import queue
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import ValidationFailed
from governance.models import User
from governance.roles import Role, is_iam_admin
from governance.validators import has_control_characters
from inventory.discovery import formats
from inventory.discovery.choices import ImportMethod, ImportStatus, Source
from inventory.discovery.findings import findings_refresh
from inventory.discovery.models import DiscoveryImport
from inventory.discovery.records import ConsentRecord, RecordError
from inventory.discovery.writing import ImportWriter

log = logging.getLogger(__name__)

_SPOOL_BLOCK = 1024 * 1024
_TENANT_MAX = DiscoveryImport._meta.get_field("tenant").max_length or 200
_FILE_NAME_MAX = DiscoveryImport._meta.get_field("file_name").max_length or 255
# Arbitrary namespace of the advisory locks that serialise imports of one source and tenant.
_LOCK_NAMESPACE = 7_311_420_014


# --- Who acts ---------------------------------------------------------------------------------


def pull_owner() -> User | None:
    """The person scheduled pulls act for: the user named by ``DISCOVERY_PULL_OWNER``, else the
    IAM admin who has been one longest (the oldest active account in the role)."""
    name = str(getattr(settings, "DISCOVERY_PULL_OWNER", "") or "").strip()
    if name:
        named = User.objects.filter(username=name, is_active=True).first()
        if named is not None and is_iam_admin(named):
            return named
        log.warning("DISCOVERY_PULL_OWNER names no active IAM admin (%s); using the oldest one", name)
    return (
        User.objects.filter(is_active=True, is_service_account=False)
        .filter(Q(groups__name=Role.IAM_ADMIN) | Q(is_superuser=True))
        .order_by("date_joined", "pk")
        .first()
    )


def _accountable(actor: Actor | User) -> User | None:
    resolved = Actor.coerce(actor)
    return resolved.on_behalf_of if resolved.is_system else resolved.user


def _require_importer(actor: Actor | User) -> User:
    """Only IAM admins import (or the system acting for one)."""
    human = _accountable(actor)
    if human is None or not is_iam_admin(human):
        raise PermissionDenied("Only IAM admins import discovery data.")
    return human


# --- Creating imports -------------------------------------------------------------------------


def _clean_target(source: str, tenant: str) -> str:
    if source not in Source.values:
        raise ValidationFailed.on("source", f"Choose one of: {', '.join(Source.values)}.")
    tenant = str(tenant or "").strip()
    if len(tenant) > _TENANT_MAX:
        raise ValidationFailed.on("tenant", f"At most {_TENANT_MAX} characters.")
    if has_control_characters(tenant):
        raise ValidationFailed.on("tenant", "Use a single line: no line breaks, tabs or other control characters.")
    return tenant


def _clean_file_name(file_name: str) -> str:
    base = os.path.basename(str(file_name or "").replace("\\", "/")).strip()
    return "".join(ch for ch in base if not has_control_characters(ch))[:_FILE_NAME_MAX]


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit} bytes"


def _spool(uploaded: IO[bytes]) -> tuple[Path, str, int]:
    """Copy the upload into the spool directory, hashing as it goes; refuses (keeping nothing) a
    file over ``DISCOVERY_UPLOAD_MAX_BYTES`` or an empty one."""
    limit = settings.DISCOVERY_UPLOAD_MAX_BYTES
    spool_dir = Path(settings.DISCOVERY_SPOOL_DIR)
    spool_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(dir=spool_dir, prefix="import-", suffix=".json", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            while block := uploaded.read(_SPOOL_BLOCK):
                size += len(block)
                if size > limit:
                    raise ValidationFailed.on("file", f"The file is larger than the {_size(limit)} an import may hold.")
                digest.update(block)
                handle.write(block)
        if size == 0:
            raise ValidationFailed.on("file", "The file is empty.")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def import_upload(
    *, actor: Actor | User, source: str, tenant: str, uploaded: IO[bytes], file_name: str, complete: bool = True
) -> DiscoveryImport:
    """Queue the import of an uploaded file (``discovery.import_queued``). Rules: IAM admins only;
    a known source; a tenant on one line; a file of at most ``DISCOVERY_UPLOAD_MAX_BYTES`` (error
    on ``file``, nothing kept). The worker runs ``import_run`` once this commits."""
    human = _require_importer(actor)
    tenant = _clean_target(source, tenant)
    path, sha256, size = _spool(uploaded)
    try:
        with transaction.atomic():
            imp = DiscoveryImport.objects.create(
                source=source,
                tenant=tenant,
                method=ImportMethod.UPLOAD,
                complete=bool(complete),
                file_name=_clean_file_name(file_name),
                file_sha256=sha256,
                file_bytes=size,
                spool_path=str(path),
                started_by=human,
            )
            audit_record(
                actor=actor, action="discovery.import_queued", target=imp, owner=human, after=_import_state(imp)
            )
            transaction.on_commit(
                lambda: queue.enqueue("inventory.discovery.tasks.import_run", imp.pk, name=f"discovery import {imp.pk}")
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return imp


def import_path(
    *,
    actor: Actor | User,
    source: str,
    tenant: str,
    path: Path,
    method: str,
    complete: bool = True,
    file_name: str = "",
) -> DiscoveryImport:
    """Create an import of the file at ``path`` and run it now (pulls, the demo, the benchmark).
    ``actor`` is an IAM admin or the system acting for one (a pull: ``pull_owner()``), who
    answers for the import. A file inside the spool directory is deleted once imported, like an
    upload; any other file is the caller's and is left alone."""
    human = _require_importer(actor)
    tenant = _clean_target(source, tenant)
    if method not in ImportMethod.values:
        raise ValidationFailed.on("method", f"Choose one of: {', '.join(ImportMethod.values)}.")
    path = Path(path)
    spooled = Path(settings.DISCOVERY_SPOOL_DIR).resolve() in path.resolve().parents
    imp = DiscoveryImport.objects.create(
        source=source,
        tenant=tenant,
        method=method,
        complete=bool(complete),
        file_name=_clean_file_name(file_name or path.name),
        file_bytes=path.stat().st_size if path.exists() else 0,
        spool_path=str(path) if spooled else "",
        started_by=human,
    )
    return _run(imp.pk, parse=lambda: formats.parse(source, path))


def import_run(import_id: int) -> DiscoveryImport:
    """Run a queued import (the worker's task). An import that is not queued any more is
    returned as it is, so a retried task does nothing twice."""
    imp = DiscoveryImport.objects.get(pk=import_id)
    path = Path(imp.spool_path) if imp.spool_path else None
    return _run(import_id, parse=lambda: _spooled_records(imp.source, path))


def _spooled_records(source: str, path: Path | None) -> Iterator[ConsentRecord]:
    # Never an empty listing for a lost file: a complete import of nothing marks everything gone.
    if path is None or not path.is_file():
        raise RecordError("The uploaded file is no longer waiting to be imported; upload it again.", field="file")
    return formats.parse(source, path)


def import_records(imp: DiscoveryImport, records: Iterable[ConsentRecord]) -> DiscoveryImport:
    """Run a queued import from ``records`` already read (tests, and callers with their own
    reader): the same transaction, rules and outcome as ``import_run``."""
    return _run(imp.pk, parse=lambda: iter(records))


# --- Running an import ------------------------------------------------------------------------


def _import_state(imp: DiscoveryImport) -> dict[str, Any]:
    return {
        "source": imp.source,
        "tenant": imp.tenant,
        "method": imp.method,
        "complete": imp.complete,
        "status": imp.status,
        "file_name": imp.file_name,
        "file_sha256": imp.file_sha256,
        "file_bytes": imp.file_bytes,
    }


def _actor_for(imp: DiscoveryImport) -> Actor:
    """The system runs the import for whoever started it."""
    return Actor.system(on_behalf_of=imp.started_by or pull_owner())


def _run(import_id: int, *, parse: Callable[[], Iterable[ConsentRecord]]) -> DiscoveryImport:
    """Claim the queued import, import it in one transaction, record how it went, and delete
    its spool file either way."""
    claimed = DiscoveryImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    imp = DiscoveryImport.objects.get(pk=import_id)
    if not claimed:
        return imp
    try:
        with transaction.atomic():
            _serialise(imp)
            writer = ImportWriter(imp)
            writer.write(parse)
            counts = writer.finish()
            counts.update(findings_refresh(imp=imp, actor=_actor_for(imp)))
            imp.status, imp.records, imp.counts, imp.finished_at = (
                ImportStatus.SUCCEEDED,
                writer.records,
                counts,
                timezone.now(),
            )
            imp.save(update_fields=["status", "records", "counts", "finished_at"])
            audit_record(
                actor=_actor_for(imp),
                action="discovery.imported",
                target=imp,
                owner=imp.started_by,
                after={**_import_state(imp), "records": imp.records, "counts": counts},
            )
            transaction.on_commit(
                lambda: queue.enqueue(
                    "inventory.discovery.tasks.digests_send", import_id, name=f"discovery digests {import_id}"
                )
            )
    except RecordError as exc:
        _failed(imp, exc.message, record_no=exc.record_no, field_name=exc.field)
    except Exception as exc:
        _failed(imp, f"The import failed unexpectedly ({type(exc).__name__}); nothing was imported.")
        raise
    finally:
        _delete_spool(imp)
    return imp


def _serialise(imp: DiscoveryImport) -> None:
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"{imp.source}\0{imp.tenant}".encode()).digest()[:4], "big")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE % 2**31, key % 2**31])


def _failed(imp: DiscoveryImport, message: str, *, record_no: int = 0, field_name: str = "") -> None:
    """Record the failure in a write of its own, after the import's transaction rolled back."""
    with transaction.atomic():
        imp.status = ImportStatus.FAILED
        imp.error = message
        imp.error_record = record_no or None
        imp.error_field = field_name[:200]
        imp.records, imp.counts, imp.finished_at = 0, {}, timezone.now()
        imp.save(update_fields=["status", "error", "error_record", "error_field", "records", "counts", "finished_at"])
        audit_record(
            actor=_actor_for(imp),
            action="discovery.import_failed",
            target=imp,
            owner=imp.started_by,
            after={**_import_state(imp), "error": message, "record": record_no or None, "field": field_name},
        )


def _delete_spool(imp: DiscoveryImport) -> None:
    if imp.spool_path:
        Path(imp.spool_path).unlink(missing_ok=True)
