"""The evidence pack for auditors: one ZIP holding a self-contained HTML report that prints well,
every figure of every control as CSV and JSON, the records behind each figure, the framework
items with the controls mapped to them, and ``manifest.json`` listing every file with its SHA-256
and the stamp (when, by whom, the portal's and the catalog's versions, the audit trail's latest
signed checkpoint and last verification).

Memory stays flat however many records there are: the ZIP is written to a temporary file, and a
figure's records are read once (one query, streamed), spooled to a temporary file as JSON lines
and copied from there into the archive as JSON and as CSV. Building the pack runs a fixed number
of queries: each control's evidence, one per figure's records, and the stamp's few reads.

Handing a pack over is audited (``controls.evidence_exported``) with the manifest's and the
archive's SHA-256: the trail proves which pack was given out. The pack is built outside any
transaction and only the event is written in one: on SQLite ``atomic()`` begins IMMEDIATE, i.e.
takes the database's single write lock, which a pack of many records would otherwise hold for its
whole build, stalling every other writer. A failure while building raises before the event is
written, so it records nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from governance.audit import audit_record
from governance.controls import catalog, registry, selectors
from governance.controls.registry import HIGHER, Control, ControlResult, Figure, Status
from governance.csv_export import CsvRowWriter
from governance.exceptions import NotFound, Unprocessable
from governance.models import AuditChainCheck, AuditCheckpoint, AuditEvent, User

EXPORT_ACTION = "controls.evidence_exported"
TARGET_TYPE = "controls.evidence_pack"
PACK_FORMAT = 1
PROJECT = "ai-governance-portal"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# Copying a spooled records file into the archive goes this many bytes at a time.
_CHUNK = 256 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

FIGURE_COLUMNS = (
    "control_id",
    "control_title",
    "control_status",
    "figure_key",
    "label",
    "value",
    "unit",
    "better",
    "threshold_met",
    "threshold_partly",
    "threshold_is_default",
    "status",
    "detail",
    "measured_at",
    "records_url",
    "records_file",
    "records_count",
)
ITEM_COLUMNS = ("framework", "framework_name", "code", "title", "group", "controls", "status")


def can_export(user: Any) -> bool:
    """Who may download the pack: whoever reads the controls' evidence (IAM admins, reviewers,
    auditors): the catalog's own reading rule, kept in one place. Auditors are who the pack is
    for; the download changes nothing but the trail."""
    return catalog.may_see(user)


@cache
def portal_version() -> str:
    """The installed project's version, or pyproject's when it runs from a checkout."""
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        with _PYPROJECT.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])


# --- The stamp ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """What the pack says about itself. ``checkpoint`` is the latest signed statement of the
    audit trail (verifiable offline with the portal's public key), ``chain_check`` the last walk
    of the whole chain, ``audit_head`` the trail's newest event when the pack was built."""

    generated_at: datetime
    generated_by: str
    generated_by_name: str
    portal_version: str
    catalog_version: str
    mappings_version: str
    framework: str
    checkpoint: dict[str, Any] | None
    chain_check: dict[str, Any] | None
    audit_head: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        data = {
            "format": PACK_FORMAT,
            "generated_at": self.generated_at.isoformat(),
            "generated_by": self.generated_by,
            "portal_version": self.portal_version,
            "catalog_version": self.catalog_version,
            "mappings_version": self.mappings_version,
            "framework": self.framework or None,
            "audit_checkpoint": self.checkpoint,
            "audit_chain_check": self.chain_check,
            "audit_head": self.audit_head,
        }
        return _json_safe(data)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def current_checkpoint() -> dict[str, Any] | None:
    """The audit trail's latest signed checkpoint as its statement: one query."""
    from governance.anchoring import Statement

    checkpoint = AuditCheckpoint.objects.order_by("-sequence").first()
    if checkpoint is None:
        return None
    return {**Statement.of(checkpoint).as_json(), "witnesses": len(checkpoint.witnesses or [])}


def last_chain_check() -> dict[str, Any] | None:
    """The last verification of the whole chain: one query."""
    check = AuditChainCheck.objects.order_by("-checked_at", "-id").first()
    if check is None:
        return None
    return {
        "checked_at": check.checked_at,
        "intact": check.intact,
        "events_checked": check.events_checked,
        "broken_event_id": check.broken_event_id,
        "problem": check.problem,
        "checkpoint_sequence": check.checkpoint_sequence,
    }


def make_stamp(*, user: User, framework: str = "") -> Stamp:
    """The stamp as of now: three queries (checkpoint, chain check, trail head)."""
    head = AuditEvent.objects.order_by("-id").values("id", "hash", "created_at").first()
    return Stamp(
        generated_at=timezone.now(),
        generated_by=user.username,
        generated_by_name=user.label,
        portal_version=portal_version(),
        catalog_version=catalog.CATALOG_VERSION,
        mappings_version=catalog.MAPPINGS_VERSION,
        framework=framework,
        checkpoint=current_checkpoint(),
        chain_check=last_chain_check(),
        audit_head=_json_safe({"last_event_id": head["id"], "hash": head["hash"], "at": head["created_at"]})
        if head
        else None,
    )


# --- What the pack reports ------------------------------------------------------------------------


@dataclass
class FigureEntry:
    """One figure as the pack lists it, with its control and where its records went."""

    control: Control
    control_status: str
    figure: Figure
    measured_at: datetime
    records_file: str = ""
    records_count: int | None = None

    def row(self, base_url: str) -> dict[str, Any]:
        figure = self.figure
        return {
            "control_id": self.control.id,
            "control_title": self.control.title,
            "control_status": self.control_status,
            "figure_key": figure.key,
            "label": figure.label,
            "value": figure.value,
            "unit": figure.unit,
            "better": figure.better,
            "threshold_met": figure.threshold.met,
            "threshold_partly": figure.threshold.partly,
            "threshold_is_default": figure.threshold_is_default,
            "status": figure.status,
            "detail": figure.detail,
            "measured_at": self.measured_at.isoformat(),
            "records_url": base_url + figure.records_url if figure.records_url else "",
            "records_file": self.records_file,
            "records_count": self.records_count,
        }


@dataclass(frozen=True)
class ItemEntry:
    item: catalog.Item
    control_ids: tuple[str, ...]
    status: str  # the worst status of its controls; "" when no registered control answers it


@dataclass(frozen=True)
class FrameworkEntry:
    info: catalog.FrameworkInfo
    items: tuple[ItemEntry, ...]

    def count(self, status: str) -> int:
        return sum(1 for entry in self.items if entry.status == status)

    @property
    def covered(self) -> int:
        return sum(1 for entry in self.items if entry.control_ids)

    @property
    def coverage(self) -> float | None:
        """Share of the framework's items that at least one control answers, in percent."""
        return round(100 * self.covered / len(self.items), 1) if self.items else None


def framework_entries(
    infos: Iterable[catalog.FrameworkInfo], mapping: Mapping[str, set[tuple[str, str]]], statuses: Mapping[str, str]
) -> list[FrameworkEntry]:
    """Each framework's items with the registered controls mapped to them and their status."""
    answering: dict[tuple[str, str], list[str]] = {}
    for control_id, items in mapping.items():
        if control_id in statuses:
            for pair in items:
                answering.setdefault(pair, []).append(control_id)
    entries = []
    for info in infos:
        rows = []
        for item in info.items:
            control_ids = tuple(sorted(answering.get((info.slug, item.code), [])))
            status = registry.worst(statuses[cid] for cid in control_ids) if control_ids else ""
            rows.append(ItemEntry(item=item, control_ids=control_ids, status=status))
        entries.append(FrameworkEntry(info=info, items=tuple(rows)))
    return entries


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    number = f"{value:,.0f}" if unit == "count" or float(value).is_integer() else f"{value:,.1f}"
    return f"{number} %" if unit == "%" else number if unit == "count" else f"{number} {unit}"


def format_threshold(figure: Figure) -> str:
    sign = "≥" if figure.better == HIGHER else "≤"
    text = f"{sign} {format_value(figure.threshold.met, figure.unit)}"
    if figure.threshold.partly is not None:
        text += f" (partly {sign} {format_value(figure.threshold.partly, figure.unit)})"
    return text


# --- Writing the archive --------------------------------------------------------------------------


class _HashingWriter:
    """Writes to an archive entry and keeps the SHA-256 and size of what went through. Small
    writes (a record a line) are gathered and handed over in chunks: the archive's per-write cost
    would otherwise dominate."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._buffer = bytearray()
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._target.write(self._buffer)
            self.digest.update(self._buffer)
            self.size += len(self._buffer)
            self._buffer.clear()


class PackWriter:
    """The ZIP being written, with the manifest's list of files."""

    def __init__(self, out: IO[bytes], stamped_at: datetime) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.files: list[dict[str, Any]] = []
        self._date_time = timezone.localtime(stamped_at).timetuple()[:6]

    @contextmanager
    def entry(self, path: str) -> Iterator[_HashingWriter]:
        info = zipfile.ZipInfo(path, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        # Large records files may pass 4 GiB uncompressed: ZIP64 from the start.
        with self.archive.open(info, "w", force_zip64=True) as handle:
            writer = _HashingWriter(handle)
            yield writer
            writer.flush()
        self.files.append({"path": path, "sha256": writer.digest.hexdigest(), "bytes": writer.size})

    def write(self, path: str, data: bytes) -> None:
        with self.entry(path) as writer:
            writer.write(data)

    def close(self) -> None:
        self.archive.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2).encode("utf-8")


_ENCODER = DjangoJSONEncoder()


def _csv_cell(value: Any) -> Any:
    """A value as a CSV cell, written as the JSON files write it (dates in ISO 8601, true/false,
    lists and objects as JSON), so that both files of a figure say the same."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
    return _ENCODER.default(value)


def _csv_bytes(header: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    writer = CsvRowWriter()
    columns = list(header)
    lines = [writer.writerow(columns)] + [writer.writerow([_csv_cell(row.get(c)) for c in columns]) for row in rows]
    return "".join(lines).encode("utf-8")


def records_file_name(key: str, taken: set[str]) -> str:
    """A file name for a figure's records: its key, with anything but letters, digits, dots,
    hyphens and underscores replaced (and made unique should two keys clean to the same name)."""
    name = _SAFE_NAME.sub("_", key) or "figure"
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return candidate


def write_records(pack: PackWriter, name: str, records: Iterable[Mapping[str, Any]]) -> int:
    """Stream ``records`` into ``records/<name>.json`` (an array, one record a line) and
    ``records/<name>.csv`` (a column for every key any record has). Read once; returns how many.

    Both are spooled in one pass; should a record bring a key the ones before it lacked, the CSV
    is written again from the JSON spool with every column."""
    columns: dict[str, None] = {}
    count = 0
    rebuild_csv = False
    csv_writer = CsvRowWriter()
    with tempfile.TemporaryFile() as as_json, tempfile.TemporaryFile() as as_csv:
        for record in records:
            known = len(columns)
            for key in record:
                columns.setdefault(str(key))
            rebuild_csv = rebuild_csv or (count > 0 and len(columns) != known)
            as_json.write(json.dumps(dict(record), cls=DjangoJSONEncoder, ensure_ascii=False).encode("utf-8") + b"\n")
            if not rebuild_csv:
                as_csv.write(csv_writer.writerow([_csv_cell(record.get(key)) for key in columns]).encode("utf-8"))
            count += 1
        _copy_json_array(pack, f"records/{name}.json", as_json, count)
        with pack.entry(f"records/{name}.csv") as writer:
            writer.write(csv_writer.writerow(columns).encode("utf-8"))
            if rebuild_csv:
                as_json.seek(0)
                for line in as_json:
                    row = json.loads(line)
                    writer.write(csv_writer.writerow([_csv_cell(row.get(key)) for key in columns]).encode("utf-8"))
            else:
                as_csv.seek(0)
                while chunk := as_csv.read(_CHUNK):
                    writer.write(chunk)
    return count


def _copy_json_array(pack: PackWriter, path: str, spool: IO[bytes], count: int) -> None:
    """The spooled JSON lines as one JSON array, a record a line."""
    spool.seek(0)
    with pack.entry(path) as writer:
        writer.write(b"[")
        for index, line in enumerate(spool):
            writer.write((b"\n" if index == 0 else b",\n") + line.rstrip(b"\n"))
        writer.write(b"\n]\n" if count else b"]\n")


# --- Building the pack ----------------------------------------------------------------------------


@dataclass
class PackSummary:
    """What was written: the stamp, counts, and the hashes the audit event records."""

    stamp: Stamp
    controls: int = 0
    figures: int = 0
    records: int = 0
    manifest_sha256: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Measured:
    results: list[ControlResult]
    measured_at: list[datetime]
    frameworks: list[FrameworkEntry]
    mapping: dict[str, set[tuple[str, str]]]


def _measure(framework: str) -> _Measured:
    """Evaluate the controls (those mapped to ``framework`` when one is named) and the framework
    items they answer: the controls' evidence, plus one query each for thresholds, mappings and
    the organisation's frameworks."""
    mapping = catalog.mappings()
    infos = [info for info in catalog.frameworks() if not framework or info.slug == framework]
    wanted = registry.controls()
    if framework:
        wanted = [c for c in wanted if any(slug == framework for slug, _code in mapping.get(c.id, set()))]
    thresholds = selectors.thresholds()
    results, measured = [], []
    for control in wanted:
        measured.append(timezone.now())
        results.append(registry.evaluate(control, thresholds))
    statuses = {result.control.id: result.status for result in results}
    return _Measured(results, measured, framework_entries(infos, mapping, statuses), mapping)


def write_pack(out: IO[bytes], *, stamp: Stamp, base_url: str = "") -> PackSummary:
    """Write the whole pack to ``out`` (a binary file open for writing)."""
    measured = _measure(stamp.framework)
    results, frameworks = measured.results, measured.frameworks
    pack = PackWriter(out, stamp.generated_at)
    summary = PackSummary(stamp=stamp, controls=len(results))
    entries: list[FigureEntry] = []
    taken: set[str] = set()
    try:
        for result, measured_at in zip(results, measured.measured_at, strict=True):
            for figure in result.figures:
                entry = FigureEntry(result.control, result.status, figure, measured_at)
                if figure.records is not None:
                    name = records_file_name(figure.key, taken)
                    entry.records_count = write_records(pack, name, figure.records())
                    entry.records_file = f"records/{name}.csv"
                    summary.records += entry.records_count
                entries.append(entry)
        summary.figures = len(entries)
        rows = [entry.row(base_url) for entry in entries]
        pack.write("figures.csv", _csv_bytes(FIGURE_COLUMNS, rows))
        pack.write("figures.json", _dumps({"stamp": stamp.as_json(), "figures": rows}))
        items = _item_rows(frameworks)
        pack.write("frameworks.csv", _csv_bytes(ITEM_COLUMNS, items))
        pack.write("frameworks.json", _dumps({"stamp": stamp.as_json(), "frameworks": _framework_json(frameworks)}))
        html = _report_html(stamp, results, entries, frameworks, measured.mapping, summary)
        pack.write("report.html", html.encode("utf-8"))
        manifest = {
            "stamp": stamp.as_json(),
            "controls": summary.controls,
            "figures": summary.figures,
            "records": summary.records,
            "files": list(pack.files),
        }
        data = _dumps(manifest)
        summary.files = list(pack.files)
        summary.manifest_sha256 = hashlib.sha256(data).hexdigest()
        pack.write("manifest.json", data)
    finally:
        pack.close()
    return summary


def _item_rows(frameworks: list[FrameworkEntry]) -> list[dict[str, Any]]:
    return [
        {
            "framework": fw.info.slug,
            "framework_name": fw.info.name,
            "code": entry.item.code,
            "title": entry.item.title,
            "group": entry.item.group,
            "controls": " ".join(entry.control_ids),
            "status": entry.status or "no_control",
        }
        for fw in frameworks
        for entry in fw.items
    ]


def _framework_json(frameworks: list[FrameworkEntry]) -> list[dict[str, Any]]:
    return [
        {
            "slug": fw.info.slug,
            "name": fw.info.name,
            "publisher": fw.info.publisher,
            "version": fw.info.version,
            "source_url": fw.info.source_url,
            "builtin": fw.info.builtin,
            "items": len(fw.items),
            "covered": fw.covered,
            "coverage": fw.coverage,
            "item_status": [
                {
                    "code": e.item.code,
                    "title": e.item.title,
                    "controls": list(e.control_ids),
                    "status": e.status or None,
                }
                for e in fw.items
            ],
        }
        for fw in frameworks
    ]


STATUS_LABELS = {**dict(Status.choices), "": "No control"}


def _report_html(
    stamp: Stamp,
    results: list[ControlResult],
    entries: list[FigureEntry],
    frameworks: list[FrameworkEntry],
    mapping: Mapping[str, set[tuple[str, str]]],
    summary: PackSummary,
) -> str:
    """The report: everything but the records themselves (their counts and file names only)."""
    by_control: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_control.setdefault(entry.control.id, []).append(
            {
                "figure": entry.figure,
                "value": format_value(entry.figure.value, entry.figure.unit),
                "threshold": format_threshold(entry.figure),
                "status_label": STATUS_LABELS.get(entry.figure.status, entry.figure.status),
                "records_file": entry.records_file,
                "records_count": entry.records_count,
            }
        )
    names = {fw.info.slug: fw.info.name for fw in frameworks}
    controls = [
        {
            "control": result.control,
            "status": result.status,
            "status_label": STATUS_LABELS.get(result.status, result.status),
            "figures": by_control.get(result.control.id, []),
            "items": _items_by_framework(mapping.get(result.control.id, set()), frameworks),
        }
        for result in results
    ]
    framework_rows = [
        {
            "entry": fw,
            "met": fw.count(Status.MET),
            "partly": fw.count(Status.PARTLY),
            "not_met": fw.count(Status.NOT_MET),
            "not_applicable": fw.count(Status.NOT_APPLICABLE),
            "no_control": fw.count(""),
            "items": [{"entry": e, "status_label": STATUS_LABELS.get(e.status, e.status)} for e in fw.items],
        }
        for fw in frameworks
    ]
    context = {
        "stamp": stamp,
        "summary": summary,
        "controls": controls,
        "frameworks": framework_rows,
        "scope": names.get(stamp.framework, "") if stamp.framework else "",
    }
    return render_to_string("controls/pack/report.html", context)


def _items_by_framework(items: set[tuple[str, str]], frameworks: list[FrameworkEntry]) -> list[tuple[str, str]]:
    """A control's framework items as (framework name, its codes), in the frameworks' order and
    each framework's own item order; only frameworks in the pack's scope."""
    found = []
    for fw in frameworks:
        codes = [entry.item.code for entry in fw.items if (fw.info.slug, entry.item.code) in items]
        if codes:
            found.append((fw.info.name, ", ".join(codes)))
    return found


@dataclass
class ExportedPack:
    """A pack handed over: the archive (a temporary file at position 0, deleted when closed),
    its download name, what it holds, and the audit event that records it."""

    file: IO[bytes]
    filename: str
    summary: PackSummary
    sha256: str
    event: AuditEvent


def pack_filename(stamp: Stamp) -> str:
    when = timezone.localtime(stamp.generated_at).strftime("%Y%m%d-%H%M")
    scope = f"{stamp.framework}-" if stamp.framework else ""
    return f"evidence-pack-{scope}{when}.zip"


def _file_sha256(handle: IO[bytes]) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def evidence_pack_export(*, actor: User, framework: str = "", base_url: str = "") -> ExportedPack:
    """Build the evidence pack (of every control, or of those mapped to ``framework``), then
    record the export in a transaction of its own: ``controls.evidence_exported`` names the figures, the audit
    checkpoint in the stamp and the SHA-256 of the manifest and of the archive.

    Refuses with ``NotFound`` whoever may not read the evidence, and with ``Unprocessable`` a
    framework that does not exist. An error while building leaves no event and no file."""
    if not can_export(actor):
        raise NotFound("No evidence pack here.")
    if framework and catalog.framework(framework) is None:
        raise Unprocessable.on("framework", f"No framework “{framework}”.")
    out = tempfile.TemporaryFile()
    try:
        # Reads only, outside any transaction of ours (see the module's docstring); the stamp
        # names the trail's head as of the start, so what the pack reports is dated anyway.
        stamp = make_stamp(user=actor, framework=framework)
        summary = write_pack(out, stamp=stamp, base_url=base_url)
        sha256 = _file_sha256(out)
        filename = pack_filename(stamp)
        with transaction.atomic():
            event = audit_record(
                actor=actor,
                action=EXPORT_ACTION,
                target_type=TARGET_TYPE,
                target_id=summary.manifest_sha256,
                target_repr=filename,
                after=_event_after(summary, filename, sha256),
            )
    except BaseException:
        out.close()
        raise
    return ExportedPack(file=out, filename=filename, summary=summary, sha256=sha256, event=event)


def _event_after(summary: PackSummary, filename: str, sha256: str) -> dict[str, Any]:
    checkpoint = summary.stamp.checkpoint
    return {
        "filename": filename,
        "framework": summary.stamp.framework or None,
        "generated_at": summary.stamp.generated_at,
        "portal_version": summary.stamp.portal_version,
        "catalog_version": summary.stamp.catalog_version,
        "controls": summary.controls,
        "figures": summary.figures,
        "records": summary.records,
        "checkpoint": {key: checkpoint[key] for key in ("sequence", "signed_at", "last_event_id", "head_hash")}
        if checkpoint
        else None,
        "manifest_sha256": summary.manifest_sha256,
        "pack_sha256": sha256,
    }
