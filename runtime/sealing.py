"""Append-only logs sealed into the audit chain in batches: the machinery the token log
(``runtime.log``) and the policy decision log (``runtime.policy.log``) share.

A sealed log is two tables: entries, each carrying the digest of its own fields (written on the
hot path with a plain INSERT, no lock), and batches. The sealer (the worker, every minute) takes
the unsealed entries in id order, in chunks, and makes each chunk a batch whose digest is
SHA-256(previous batch's digest + each entry's digest, in id order), then writes the batch into
the audit chain as ONE audit event carrying that digest. Only sealers take the log's own lock;
each log has its own, so the two logs never wait for each other.

Verification walks the batches and their seal events side by side (both were written one by one
under the sealer's lock, so in the same order) and recomputes every digest: an entry altered,
removed from or inserted into a sealed batch, a batch removed, inserted or re-chained, a batch
whose seal event is missing or says something else, all break it. Where a retention purge removed
the oldest batches, the chain starts from an ``Anchor`` the log reads from the purge's own audit
event instead of from the genesis digest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from governance.actors import Actor, system_user
from governance.audit import audit_record
from governance.models import AuditEvent, User
from governance.services import lockout_owner

GENESIS_DIGEST = "0" * 64


@dataclass(frozen=True)
class Anchor:
    """Where the batch chain starts: the genesis digest, or — once a retention purge removed the
    oldest batches — the digest of the last batch removed and the id of its seal event (the seal
    events of removed batches stay in the audit trail; the walk starts after them)."""

    digest: str = GENESIS_DIGEST
    last_seal_event_id: int = 0


GENESIS = Anchor()


class SealedEntry(Protocol):
    """What the sealer reads of an entry (``TokenEvent``, ``PolicyDecision``)."""

    @property
    def pk(self) -> Any: ...
    @property
    def digest(self) -> str: ...
    @property
    def owner_id(self) -> Any: ...


class SealedBatch(Protocol):
    """What verification reads of a batch (``TokenEventBatch``, ``PolicyDecisionBatch``)."""

    @property
    def pk(self) -> Any: ...
    @property
    def count(self) -> int: ...
    @property
    def digest(self) -> str: ...
    @property
    def previous_digest(self) -> str: ...


EntryT = TypeVar("EntryT", bound=SealedEntry)
BatchT = TypeVar("BatchT", bound=SealedBatch)


def batch_digest(previous: str, entry_digests: Iterable[str]) -> str:
    """SHA-256 over the previous batch's digest and each entry's digest, in id order."""
    hasher = hashlib.sha256(previous.encode("ascii"))
    for digest in entry_digests:
        hasher.update(digest.encode("ascii"))
    return hasher.hexdigest()


def paged(queryset: QuerySet[Any], column: str | None, size: int = 1000) -> Iterator[Any]:
    """The rows (or one column of them) in id order, read a page at a time by id: memory stays
    flat, and two walks can interleave without holding database cursors open."""
    last_id = 0
    while True:
        page = queryset.filter(id__gt=last_id).order_by("id")
        rows = list(page.values_list("id", column)[:size]) if column else [(row.pk, row) for row in page[:size]]
        if not rows:
            return
        for _pk, value in rows:
            yield value
        last_id = rows[-1][0]


def fallback_owner() -> User:
    """Who answers for what the log's upkeep does when no entry names anyone: the IAM admins, who
    keep the runtime plane — the longest-standing active human one (then a superuser: the same
    person who answers for a sign-in lockout nobody owns), else the system account."""
    return lockout_owner() or system_user()


def accountable_owner(owner_ids: Iterable[int | None]) -> User:
    """Who answers for a sealed batch: the accountable owner named most often in it (ties go to
    the lowest id); a batch naming nobody answers to ``fallback_owner``."""
    counts = Counter(owner_id for owner_id in owner_ids if owner_id is not None)
    if counts:
        owner_id = min(counts, key=lambda pk: (-counts[pk], pk))
        return User.objects.get(pk=owner_id)
    return fallback_owner()


def lock(lock_id: int) -> None:
    """Serialise the holders of ``lock_id`` for the rest of the transaction: an advisory lock on
    PostgreSQL; SQLite's IMMEDIATE transactions already let one writer in at a time."""
    if not connection.in_atomic_block:
        raise RuntimeError("sealing must run inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _genesis() -> Anchor:
    return GENESIS


@dataclass(frozen=True)
class SealedLog(Generic[EntryT, BatchT]):
    """One sealed log: its two models, how an entry's digest is computed, the audit action of a
    seal, the lock its sealers share, the batch's first/last entry id fields, the words its
    messages use, what a seal event counts besides its size (``tally``), the exception raised when
    an unsealed entry no longer matches its digest, and where its chain starts (``anchor``)."""

    entry_model: type[EntryT]
    batch_model: type[BatchT]
    entry_digest: Callable[[EntryT], str]
    seal_action: str
    lock_id: int
    first_field: str
    last_field: str
    entry_label: str  # "token event"
    entries_label: str  # "events"
    batch_label: str  # "token batch"
    log_label: str  # "token log"
    tally: Callable[[Sequence[EntryT]], dict[str, int]]
    tampered: type[Exception]
    anchor: Callable[[], Anchor] = _genesis

    def entries(self) -> QuerySet[Any]:
        return self._manager(self.entry_model).all()

    def batches(self) -> QuerySet[Any]:
        return self._manager(self.batch_model).all()

    @staticmethod
    def _manager(model: type[Any]) -> models.Manager[Any]:
        manager: models.Manager[Any] = model._default_manager
        return manager

    def lock(self) -> None:
        lock(self.lock_id)

    def last_digest(self) -> str:
        """The digest the next batch follows: the newest batch's, or the anchor's."""
        latest: str | None = self.batches().order_by("-id").values_list("digest", flat=True).first()
        return latest or self.anchor().digest

    # --- Sealing --------------------------------------------------------------------------------

    def seal_chunk(self, limit: int) -> BatchT | None:
        """Seal up to ``limit`` unsealed entries, oldest first, as one batch and one audit event,
        in one transaction. None when nothing is left to seal."""
        with transaction.atomic():
            self.lock()
            previous = self.last_digest()
            entries: list[EntryT] = list(self.entries().filter(batch__isnull=True).order_by("id")[:limit])
            if not entries:
                return None
            for entry in entries:
                if self.entry_digest(entry) != entry.digest:
                    raise self.tampered(
                        f"{self.entry_label} #{entry.pk} was altered before it was sealed; refusing to seal it"
                    )
            batch: BatchT = self.batches().create(
                sealed_at=timezone.now(),
                count=len(entries),
                previous_digest=previous,
                digest=batch_digest(previous, (entry.digest for entry in entries)),
                **{self.first_field: entries[0].pk, self.last_field: entries[-1].pk},
            )
            owner = accountable_owner(entry.owner_id for entry in entries)
            audit = audit_record(
                actor=Actor.system(on_behalf_of=owner),
                action=self.seal_action,
                target=batch,  # type: ignore[arg-type]  # a model, seen through SealedBatch
                owner=owner,
                after={
                    "batch": batch.pk,
                    "count": batch.count,
                    self.first_field: entries[0].pk,
                    self.last_field: entries[-1].pk,
                    **self.tally(entries),
                    "previous_digest": previous,
                    "digest": batch.digest,
                },
            )
            self.batches().filter(pk=batch.pk).update(audit_event_id=audit.pk)
            self.entries().filter(pk__in=[entry.pk for entry in entries]).update(batch=batch)
        return batch

    def seal(self, *, max_entries: int, chunk_size: int) -> list[BatchT]:
        """Seal up to ``max_entries`` unsealed entries in batches of ``chunk_size``, each its own
        transaction and audit event. Idempotent: what is sealed is not sealed again, and a run
        killed half-way leaves whole batches only."""
        batches: list[BatchT] = []
        sealed = 0
        while sealed < max_entries:
            batch = self.seal_chunk(min(chunk_size, max_entries - sealed))
            if batch is None:
                break
            batches.append(batch)
            sealed += batch.count
        return batches

    # --- Verification ---------------------------------------------------------------------------

    def batch_problem(self, batch: BatchT, previous: str, sealed: dict[str, Any] | None) -> str | None:
        """What is wrong with one batch, given the digest it must follow and the ``after`` of its
        seal event (the next one in the audit trail, in the same order as the batches)."""
        label, entries_label = f"{self.batch_label} #{batch.pk}", self.entries_label
        if batch.previous_digest != previous:
            return f"{label} does not follow the batch before it: a batch was removed or inserted"
        entries: list[EntryT] = list(self.entries().filter(batch=batch).order_by("id"))
        for entry in entries:
            if self.entry_digest(entry) != entry.digest:
                return f"{self.entry_label} #{entry.pk} (batch #{batch.pk}) was altered after it was written"
        if len(entries) != batch.count or batch_digest(previous, (entry.digest for entry in entries)) != batch.digest:
            return (
                f"{label} no longer holds the {entries_label} it sealed: {entries_label} were removed, added or altered"
            )
        if sealed is None or any(
            sealed.get(key) != value
            for key, value in (
                ("batch", batch.pk),
                ("digest", batch.digest),
                ("count", batch.count),
                ("previous_digest", batch.previous_digest),
            )
        ):
            return f"{label} has no audit event carrying its digest: it was not sealed into the audit trail"
        return None

    def verify(self) -> tuple[int, str | None]:
        """Recompute every entry's digest, every batch's digest and the chain of batches, and check
        that each batch's seal event carries its digest (the audit chain itself is verified by
        ``governance.audit.verify_chain``). Returns how many entries were checked and the first
        problem, or None. A purge committing during the walk moves the anchor: the walk then
        runs once more from where the log starts now."""
        anchor = self.anchor()
        checked, problem = self._walk(anchor)
        if problem is not None and self.anchor() != anchor:
            checked, problem = self._walk(self.anchor())
        return checked, problem

    def _walk(self, anchor: Anchor) -> tuple[int, str | None]:
        # The batches as they stand now; a seal committing meanwhile is left for the next check.
        upto_batch = self.batches().order_by("-id").values_list("id", flat=True).first() or 0
        seal_events = AuditEvent.objects.filter(action=self.seal_action, id__gt=anchor.last_seal_event_id)
        seals = (after if isinstance(after, dict) else {} for after in paged(seal_events, "after"))
        checked = 0
        previous = anchor.digest
        for batch in paged(self.batches().filter(id__lte=upto_batch), None):
            problem = self.batch_problem(batch, previous, next(seals, None))
            if problem is not None:
                return checked, problem
            checked += batch.count
            previous = batch.digest
        for leftover in seals:
            # Sealed after the walk began (the batch is there now), or a batch that was deleted.
            if not self.batches().filter(pk=leftover.get("batch") or 0, id__gt=upto_batch).exists():
                return (
                    checked,
                    f"the audit trail records {self.batch_label} #{leftover.get('batch')}, "
                    f"which is gone from the {self.log_label}",
                )
        for entry in paged(self.entries().filter(batch__isnull=True), None):
            if self.entry_digest(entry) != entry.digest:
                return checked, f"{self.entry_label} #{entry.pk} (not sealed yet) was altered after it was written"
            checked += 1
        return checked, None
