"""Anchoring the audit trail: signed checkpoints that external witnesses keep.

The hash chain (``governance.audit``) shows that no event was altered, removed or inserted
*relative to the events around it*. Someone who can write the database can still rewrite an
event and recompute every later hash, or delete the newest events, and the chain stays whole.

A checkpoint closes that. Every hour (and on demand, ``manage.py audit_checkpoint``) the worker
signs a statement "after N events the newest is #M and its hash is H" with an Ed25519 key that
is kept outside the database, stores it (``AuditCheckpoint``) and sends it to the witnesses the
deployment configures: webhook subscriptions to ``audit.checkpoint``, the auditors' mailbox
(through the outbox), an append-only JSON-lines file and a syslog destination. ``verify_audit``
then compares the trail with the newest checkpoint — from the database and, when it can read it,
from the witness file — and names a truncation ("the trail ends at #N but checkpoint K saw #M")
or a rewrite (the head hash differs at #M).

A new checkpoint never vouches for a tampered trail: before signing, the events written since
the previous checkpoint are walked and that checkpoint's head must still be in place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from governance.audit import (
    GENESIS_HASH,
    VERIFY_CHUNK_SIZE,
    ChainBreak,
    _fmt_time,
    recompute_hash,
    verify_chain,
    verify_chain_parallel,
)
from governance.models import AuditChainCheck, AuditCheckpoint, AuditEvent
from governance.services import email_enqueue
from governance.webhooks import events as webhook_events

log = logging.getLogger(__name__)

EVENT_TYPE = "audit.checkpoint"
STATEMENT_VERSION = 1
# Arbitrary constant naming the advisory lock that serialises checkpoint signers on PostgreSQL
# (SQLite's IMMEDIATE transactions already let one writer in at a time).
_CHECKPOINT_LOCK_ID = 7_311_420_002
# The newest witness line is looked for in this many bytes at the end of the file.
_TAIL_BYTES = 64 * 1024
# Syslog facility authpriv (10), severity notice (5): security messages kept apart.
_SYSLOG_PRIORITY = 10 * 8 + 5


class SigningKeyMissing(ImproperlyConfigured):
    """No usable signing key: production refuses to sign rather than sign with a key that
    lives next to the data it protects."""


class AuditTrailBroken(Exception):
    """The trail no longer matches what was last signed: no new checkpoint is signed over it."""


# --- Keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyForm:
    """How one kind of Ed25519 key is written: PEM, or base64 of its raw bytes (``raw_form``)."""

    kind: type
    what: str
    raw_form: str
    from_pem: Callable[[bytes], object]
    from_raw: Callable[[bytes], object]
    error: type[ImproperlyConfigured]

    def parse(self, text: str, source: str) -> object:
        """The key ``source`` (a setting, a file) holds in ``text``, an instance of ``kind``."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = self.from_pem(text.encode("ascii"))
            else:
                key = self.from_raw(base64.b64decode(text, validate=True))
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise self.error(
                f"{source} holds no Ed25519 {self.what} (PEM, or base64 of {self.raw_form}): {exc}"
            ) from exc
        if not isinstance(key, self.kind):
            raise self.error(f"{source} holds a {type(key).__name__}, not an Ed25519 {self.what}.")
        return key


_PRIVATE_KEY = _KeyForm(
    kind=Ed25519PrivateKey,
    what="private key",
    raw_form="the 32-byte seed",
    from_pem=lambda data: serialization.load_pem_private_key(data, password=None),
    from_raw=Ed25519PrivateKey.from_private_bytes,
    error=SigningKeyMissing,
)
_PUBLIC_KEY = _KeyForm(
    kind=Ed25519PublicKey,
    what="public key",
    raw_form="the 32 bytes",
    from_pem=serialization.load_pem_public_key,
    from_raw=Ed25519PublicKey.from_public_bytes,
    error=ImproperlyConfigured,
)


def _parse_private(text: str, source: str) -> Ed25519PrivateKey:
    return cast(Ed25519PrivateKey, _PRIVATE_KEY.parse(text, source))


def _parse_public(text: str, source: str) -> Ed25519PublicKey:
    return cast(Ed25519PublicKey, _PUBLIC_KEY.parse(text, source))


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint naming the key in each checkpoint (for rotation)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _configured_private_key() -> Ed25519PrivateKey | None:
    """The key from ``AUDIT_SIGNING_KEY`` or ``AUDIT_SIGNING_KEY_FILE``, or a development key
    generated earlier into var/; None when there is none yet."""
    if settings.AUDIT_SIGNING_KEY:
        return _parse_private(settings.AUDIT_SIGNING_KEY, "AUDIT_SIGNING_KEY")
    if settings.AUDIT_SIGNING_KEY_FILE:
        path = Path(settings.AUDIT_SIGNING_KEY_FILE)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SigningKeyMissing(f"AUDIT_SIGNING_KEY_FILE {path} cannot be read: {exc}") from exc
        return _parse_private(text, f"AUDIT_SIGNING_KEY_FILE {path}")
    dev_path = Path(settings.AUDIT_DEV_SIGNING_KEY_FILE)
    if not settings.PRODUCTION and dev_path.exists():
        return _parse_private(dev_path.read_text(), str(dev_path))
    return None


def signing_key() -> Ed25519PrivateKey:
    """The key checkpoints are signed with. In development one is generated into var/ on first
    use; production refuses to sign without a configured key."""
    key = _configured_private_key()
    if key is not None:
        return key
    if settings.PRODUCTION:
        raise SigningKeyMissing(
            "Refusing to sign an audit checkpoint: set AUDIT_SIGNING_KEY (PEM, or base64 of a 32-byte "
            "Ed25519 seed) or AUDIT_SIGNING_KEY_FILE. The key must live outside the database host, or "
            "whoever can rewrite the trail can also sign it."
        )
    return _generate_dev_key(Path(settings.AUDIT_DEV_SIGNING_KEY_FILE))


def _generate_dev_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two workers signing for the first time at once keep one key, not two.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _parse_private(path.read_text(), str(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    log.warning("Generated a development audit signing key in %s (production needs AUDIT_SIGNING_KEY)", path)
    return key


def verify_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys that verify checkpoints, by key id: the signing key's own and every key in
    ``AUDIT_VERIFY_KEYS`` (an auditor's machine without the private key, or a rotated key)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for i, text in enumerate(settings.AUDIT_VERIFY_KEYS):
        public = _parse_public(text, f"AUDIT_VERIFY_KEYS[{i}]")
        keys[key_id(public)] = public
    try:
        private = _configured_private_key()
    except SigningKeyMissing as exc:
        # A host that verifies need not hold the private key (AUDIT_VERIFY_KEYS is enough); a
        # checkpoint it cannot check is then reported as such, by its key id.
        log.warning("Audit signing key unavailable for verification: %s", exc)
        private = None
    if private is not None:
        public = private.public_key()
        keys[key_id(public)] = public
    return keys


# --- The signed statement -------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """What a checkpoint says and its signature. ``signed_at`` is kept as the exact text that
    was signed (UTC, microseconds), so a statement read back from a witness compares as text."""

    sequence: int
    signed_at: str
    event_count: int
    last_event_id: int
    head_hash: str
    key_id: str
    signature: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "type": EVENT_TYPE,
            "v": STATEMENT_VERSION,
            "sequence": self.sequence,
            "signed_at": self.signed_at,
            "event_count": self.event_count,
            "last_event_id": self.last_event_id,
            "head_hash": self.head_hash,
            "key_id": self.key_id,
        }

    def message(self) -> bytes:
        """The bytes that are signed: the payload as canonical JSON."""
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def as_json(self) -> dict[str, Any]:
        """What witnesses receive: the payload and its signature."""
        return {**self.payload(), "signature": self.signature}

    def line(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))

    def signed_with(self, key: Ed25519PrivateKey) -> Statement:
        return replace(self, signature=base64.b64encode(key.sign(self.message())).decode("ascii"))

    def signature_problem(self, keys: dict[str, Ed25519PublicKey]) -> str | None:
        """Why the signature does not hold, or None."""
        public = keys.get(self.key_id)
        if public is None:
            return (
                f"checkpoint {self.sequence} was signed by key {self.key_id}, which is not configured "
                "(AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEY_FILE or AUDIT_VERIFY_KEYS): its signature cannot be checked"
            )
        try:
            public.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, ValueError):
            return (
                f"checkpoint {self.sequence}'s signature does not verify with key {self.key_id}: "
                "the checkpoint was forged or altered"
            )
        return None

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> Statement:
        return cls(
            sequence=checkpoint.sequence,
            signed_at=_fmt_time(checkpoint.signed_at),
            event_count=checkpoint.event_count,
            last_event_id=checkpoint.last_event_id,
            head_hash=checkpoint.head_hash,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Statement:
        if data.get("type") != EVENT_TYPE or data.get("v") != STATEMENT_VERSION:
            raise ValueError("not an audit checkpoint statement")
        return cls(
            sequence=int(data["sequence"]),
            signed_at=str(data["signed_at"]),
            event_count=int(data["event_count"]),
            last_event_id=int(data["last_event_id"]),
            head_hash=str(data["head_hash"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )


# --- Signing a checkpoint ------------------------------------------------------------------------


def checkpoint_sign() -> AuditCheckpoint:
    """Sign the trail's current head, store the checkpoint and hand it to every configured
    witness. Refuses (``AuditTrailBroken``) when the trail no longer matches the previous
    checkpoint or is broken since, and (``SigningKeyMissing``) in production without a key.

    File and syslog witnesses are written inside the transaction, before the row: a failure is
    recorded on the checkpoint, never hidden. The email and webhook witnesses are outbox rows in
    the same transaction, delivered by the worker like every other email and webhook.
    """
    key = signing_key()
    keys = verify_keys()
    kid = key_id(key.public_key())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHECKPOINT_LOCK_ID])
        previous = AuditCheckpoint.objects.order_by("-sequence").first()
        # Audit writers hold the chain lock while they allocate ids, so every event up to the
        # newest committed one is committed: the count below is consistent with this head.
        head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        last_id, head_hash = head if head is not None else (0, GENESIS_HASH)
        _refuse_unless_intact(previous, keys, upto_id=last_id)
        now = timezone.now()
        statement = Statement(
            sequence=previous.sequence + 1 if previous is not None else 1,
            signed_at=_fmt_time(now),
            event_count=AuditEvent.objects.filter(id__lte=last_id).count(),
            last_event_id=last_id,
            head_hash=head_hash,
            key_id=kid,
        ).signed_with(key)
        witnesses = _external_witnesses(statement)
        addresses = [a for a in settings.AUDIT_WITNESS_EMAIL if a]
        witnesses += [{"kind": "email", "target": a, "status": "queued", "detail": ""} for a in addresses]
        subscribers = _webhook_subscribers()
        if subscribers:
            noun = "subscription" if subscribers == 1 else "subscriptions"
            witnesses.append({"kind": "webhook", "target": f"{subscribers} {noun}", "status": "queued", "detail": ""})
        checkpoint = AuditCheckpoint.objects.create(
            sequence=statement.sequence,
            signed_at=now,
            event_count=statement.event_count,
            last_event_id=statement.last_event_id,
            head_hash=statement.head_hash,
            key_id=statement.key_id,
            signature=statement.signature,
            witnesses=witnesses,
        )
        _send_email(statement, addresses)
        if subscribers:
            webhook_events.emit(event_type=EVENT_TYPE, target=checkpoint, data=statement.as_json())
    if not witnesses:
        log.warning("Audit checkpoint %s has no external witness (AUDIT_WITNESS_*)", statement.sequence)
    return checkpoint


def _refuse_unless_intact(previous: AuditCheckpoint | None, keys: dict[str, Ed25519PublicKey], *, upto_id: int) -> None:
    """A checkpoint vouches only for a trail that still holds what was last signed: the previous
    checkpoint's signature, its head in place, and every event since linked and unaltered."""
    if previous is None:
        _checked, broken = verify_chain(upto_id=upto_id)
    else:
        statement = Statement.of(previous)
        problem = statement.signature_problem(keys)
        if problem is not None:
            raise AuditTrailBroken(f"Refusing to sign a checkpoint: {problem}.")
        mismatch = anchor_problem(statement)
        if mismatch is not None:
            raise AuditTrailBroken(f"Refusing to sign a checkpoint: {mismatch.problem}.")
        _checked, broken = verify_chain(after_id=previous.last_event_id, after_hash=previous.head_hash, upto_id=upto_id)
    if broken is not None:
        raise AuditTrailBroken(f"Refusing to sign a checkpoint over a broken trail: {broken}.")


def _external_witnesses(statement: Statement) -> list[dict[str, str]]:
    witnesses: list[dict[str, str]] = []
    if settings.AUDIT_WITNESS_FILE:
        witnesses.append(_witness("file", settings.AUDIT_WITNESS_FILE, _append_line, statement))
    if settings.AUDIT_WITNESS_SYSLOG:
        witnesses.append(_witness("syslog", settings.AUDIT_WITNESS_SYSLOG, _send_syslog, statement))
    return witnesses


def _witness(kind: str, target: str, send: Callable[[str, str], None], statement: Statement) -> dict[str, str]:
    try:
        send(target, statement.line())
    except OSError as exc:
        log.error("Audit checkpoint %s was not written to %s %s: %s", statement.sequence, kind, target, exc)
        return {"kind": kind, "target": target, "status": "failed", "detail": f"{type(exc).__name__}: {exc}"}
    return {"kind": kind, "target": target, "status": "written", "detail": ""}


def _append_line(path: str, line: str) -> None:
    """One JSON line, appended (O_APPEND: never rewrites what is there) and flushed to disk."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _syslog_address(target: str) -> str | tuple[str, int]:
    """``/dev/log`` (a local socket) or ``host:port`` (UDP; port 514 when left out)."""
    if target.startswith("/"):
        return target
    host, _, port = target.rpartition(":") if ":" in target else (target, "", "514")
    return host.strip("[]"), int(port)


def _send_syslog(target: str, line: str) -> None:
    """One datagram in the BSD syslog format. Sent with a plain socket rather than logging's
    SysLogHandler, which swallows send errors: a witness that was not told must be recorded."""
    message = f"<{_SYSLOG_PRIORITY}>governance-audit: {line}".encode()
    address = _syslog_address(target)
    if isinstance(address, str):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.send(message)
        return
    family, kind, proto, _name, sockaddr = socket.getaddrinfo(*address, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.sendto(message, sockaddr)


def email_key_prefix(sequence: int, signature: str) -> str:
    """The outbox key of a checkpoint's emails, before the address. The signature is in it: a
    sequence number signed again (after checkpoints were deleted from the database) is a new
    email, not a duplicate that the outbox would drop."""
    return f"audit-checkpoint:{sequence}:{hashlib.sha256(signature.encode()).hexdigest()[:16]}:"


def _send_email(statement: Statement, addresses: list[str]) -> None:
    prefix = email_key_prefix(statement.sequence, statement.signature)
    for address in addresses:
        email_enqueue(
            key=f"{prefix}{address}",
            recipient=None,
            to_address=address,
            subject=(
                f"Audit checkpoint {statement.sequence}: {statement.event_count} events, "
                f"newest #{statement.last_event_id}"
            ),
            template="audit_checkpoint",
            context={"statement": statement, "line": statement.line(), "path": "/"},
        )


def _webhook_subscribers() -> int:
    """How many active webhook subscriptions ask for ``audit.checkpoint`` (or a pattern that
    covers it): ``emit`` queues one delivery for each."""
    return len(webhook_events.subscribers(EVENT_TYPE))


# --- Verifying the trail against its checkpoints ------------------------------------------------


def anchor_problem(statement: Statement) -> ChainBreak | None:
    """Whether the trail still holds what ``statement`` signed: its newest event #M is there
    with the signed hash, and as many events up to it. (The chain walk, done separately, shows
    that the events up to #M hash into that head.)"""
    seen = statement.last_event_id
    if seen == 0:
        return None  # signed over an empty trail: nothing to hold
    sequence = statement.sequence
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    if last is None or last < seen:
        ends = f"#{last}" if last is not None else "nothing (it is empty)"
        return ChainBreak(
            seen, f"the trail ends at {ends} but checkpoint {sequence} saw #{seen}: its newest events were removed"
        )
    current = AuditEvent.objects.filter(pk=seen).values_list("hash", flat=True).first()
    if current is None:
        return ChainBreak(
            seen, f"event #{seen}, the newest that checkpoint {sequence} saw, is gone: the trail was rewritten"
        )
    if current != statement.head_hash:
        return ChainBreak(
            seen,
            f"the head hash differs at #{seen}: checkpoint {sequence} signed {statement.head_hash[:16]}…, "
            f"the trail now has {current[:16]}…: the events up to #{seen} were rewritten",
        )
    count = AuditEvent.objects.filter(id__lte=seen).count()
    if count != statement.event_count:
        return ChainBreak(
            seen,
            f"checkpoint {sequence} counted {statement.event_count} events up to #{seen}, the trail now has {count}: "
            "events were removed or inserted",
        )
    return None


@dataclass(frozen=True)
class Verdict:
    """The result of ``verify_trail``: how many events the chain walk checked, the first problem
    (a chain break, a bad signature, a truncation or a rewrite), and the checkpoint compared with
    (``source``: "the database" or the witness file it was read from)."""

    checked: int
    broken: ChainBreak | None
    checkpoint: Statement | None = None
    source: str = ""
    anchored: bool = False  # the problem is a mismatch with a checkpoint, not a chain break
    since_checkpoint: bool = False  # only the events after the checkpoint's head were walked

    @property
    def intact(self) -> bool:
        return self.broken is None


def read_witness_file(path: str) -> Statement | None:
    """The newest statement in a JSON-lines witness file (its last line), or None if empty."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - _TAIL_BYTES))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    if not lines:
        return None
    return Statement.from_json(json.loads(lines[-1]))


def verify_trail(*, chunk_size: int = VERIFY_CHUNK_SIZE, witness_file: str | None = None, workers: int = 1) -> Verdict:
    """Walk the chain (in ``workers`` processes when more than one), then hold it against the
    newest checkpoint: the database's and, when a witness file is configured
    (``AUDIT_WITNESS_FILE``, or ``witness_file``) and readable here, the file's — a checkpoint
    deleted from the database is still in the file."""
    if workers > 1:
        checked, broken = verify_chain_parallel(workers=workers, chunk_size=chunk_size)
    else:
        checked, broken = verify_chain(chunk_size=chunk_size)
    if broken is not None:
        return Verdict(checked, broken)
    found = newest_checkpoint(witness_file=witness_file)
    if found.problem is not None:
        return Verdict(checked, found.problem, found.statement, found.source, anchored=True)
    if found.statement is None:
        return Verdict(checked, None)
    mismatch = anchor_problem(found.statement)
    return Verdict(checked, mismatch, found.statement, found.source, anchored=mismatch is not None)


def verify_since_checkpoint(*, chunk_size: int = VERIFY_CHUNK_SIZE, witness_file: str | None = None) -> Verdict:
    """Verify only what was written since the newest signed checkpoint. The start point is
    trusted because of what it is: a statement whose signature holds (so it was signed by the
    key kept outside the database, over a trail the signer walked), whose head event is still
    in place with the signed hash, whose content still hashes to it, and with as many events up
    to it as were signed. From there the chain is walked to the end. Events before the head are
    not re-hashed: an edit there that leaves the head's row alone is found by the full walk.
    Without a usable checkpoint, the whole trail is walked."""
    found = newest_checkpoint(witness_file=witness_file)
    if found.problem is not None:
        return Verdict(0, found.problem, found.statement, found.source, anchored=True)
    statement = found.statement
    if statement is None:
        return verify_trail(chunk_size=chunk_size, witness_file=witness_file)
    mismatch = anchor_problem(statement)
    if mismatch is None and statement.last_event_id and recompute_hash(statement.last_event_id) != statement.head_hash:
        mismatch = ChainBreak(
            statement.last_event_id,
            f"the content of #{statement.last_event_id}, the newest event checkpoint {statement.sequence} saw, "
            "was altered after it was signed",
        )
    if mismatch is not None:
        return Verdict(0, mismatch, statement, found.source, anchored=True)
    checked, broken = verify_chain(
        chunk_size=chunk_size, after_id=statement.last_event_id, after_hash=statement.head_hash
    )
    return Verdict(checked, broken, statement, found.source, since_checkpoint=True)


@dataclass(frozen=True)
class NewestCheckpoint:
    """The newest checkpoint whose signature holds (``statement``, from ``source``), or the
    ``problem`` that stops it being trusted."""

    statement: Statement | None
    source: str = ""
    problem: ChainBreak | None = None


def newest_checkpoint(*, witness_file: str | None = None) -> NewestCheckpoint:
    """The newest checkpoint of the database and of the witness file (``AUDIT_WITNESS_FILE``, or
    ``witness_file``) when readable here, each with its signature checked, the file's also
    present and equal in the database."""
    row = AuditCheckpoint.objects.order_by("-sequence").first()
    statement = Statement.of(row) if row is not None else None
    path = settings.AUDIT_WITNESS_FILE if witness_file is None else witness_file
    readable = bool(path) and os.path.exists(path)
    if statement is None and not readable:
        return NewestCheckpoint(None)
    keys = verify_keys()
    source = "the database"
    if statement is not None:
        problem = statement.signature_problem(keys)
        if problem is not None:
            return NewestCheckpoint(statement, source, ChainBreak(None, problem))
    if readable:
        try:
            witnessed = read_witness_file(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"the newest line of witness file {path} is not a readable checkpoint ({exc})"
            return NewestCheckpoint(statement, source, ChainBreak(None, problem))
        if witnessed is not None:
            problem = _witnessed_problem(witnessed, keys, path)
            if problem is not None:
                return NewestCheckpoint(witnessed, path, ChainBreak(None, problem))
            if statement is None or witnessed.sequence > statement.sequence:
                statement, source = witnessed, path
    return NewestCheckpoint(statement, source)


def _witnessed_problem(witnessed: Statement, keys: dict[str, Ed25519PublicKey], path: str) -> str | None:
    """Why a witness file's checkpoint cannot be trusted: its signature, or the database lost
    or changed it."""
    problem = witnessed.signature_problem(keys)
    if problem is not None:
        return f"{problem} (witness file {path})"
    stored = AuditCheckpoint.objects.filter(sequence=witnessed.sequence).first()
    if stored is None:
        return f"checkpoint {witnessed.sequence} is in witness file {path} but not in the database: checkpoints were deleted"
    if Statement.of(stored) != witnessed:
        return f"checkpoint {witnessed.sequence} in the database differs from the one witness file {path} holds"
    return None


def verify_and_record(
    *,
    chunk_size: int = VERIFY_CHUNK_SIZE,
    witness_file: str | None = None,
    since_checkpoint: bool = False,
    workers: int = 1,
) -> Verdict:
    """``verify_trail`` (or ``verify_since_checkpoint``), kept for the auditors' home page
    (``AuditChainCheck``). An incremental check is kept only when it finds a problem: its count
    covers the events since the checkpoint, and the page's "intact" speaks for the whole trail
    (without a checkpoint the incremental check is a full walk, and kept as one)."""
    if since_checkpoint:
        verdict = verify_since_checkpoint(chunk_size=chunk_size, witness_file=witness_file)
    else:
        verdict = verify_trail(chunk_size=chunk_size, witness_file=witness_file, workers=workers)
    if verdict.since_checkpoint and verdict.intact:
        return verdict
    AuditChainCheck.objects.create(
        events_checked=verdict.checked,
        intact=verdict.intact,
        broken_event_id=verdict.broken.event_id if verdict.broken else None,
        problem=verdict.broken.problem if verdict.broken else "",
        checkpoint_sequence=verdict.checkpoint.sequence if verdict.checkpoint else None,
    )
    return verdict
