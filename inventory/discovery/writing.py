"""How an import's records become rows: set-based, in chunks, with bounded memory however large
the file. ``ImportWriter`` runs inside the import's transaction (``inventory.discovery.importer``
owns the transaction, the audit and the findings).

* People are matched to portal users by email, else username, case-insensitively (one preload);
  unmatched people are kept as the provider gave them.
* Apps are upserted on (source, tenant, app key); consents on (app, person key), the records of
  one (app, person) within an import merged (scopes and grant ids united) whichever chunk they
  fall in.
* Each chunk writes only what differs: new consents in bulk (``COPY`` on PostgreSQL), changed
  ones with their new values, and for unchanged ones only ``last_seen`` and ``last_import`` (on
  PostgreSQL one statement finds and touches those, reading nothing back). Re-importing the same
  data therefore changes nothing else.
* A complete import marks the apps and consents of its source and tenant that it did not mention
  absent (``present=False``); a partial one only adds and refreshes what it lists.

On PostgreSQL three things run at once: a thread reads the file ahead, the importing thread
matches and merges a chunk, and a second thread has the database write the chunk before. They
share the import's one connection (psycopg serialises its use), so it is all one transaction.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from queue import Full, Queue
from typing import Any

from django.db.models import Count
from django.utils import timezone

from governance.models import User
from inventory.discovery.choices import ConsentType
from inventory.discovery.consent_table import ConsentTable, JsonLists, MergedConsent, NewConsent, loaded, same_json
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, DiscoveryImport
from inventory.discovery.records import ConsentRecord, RecordError

# Records written per chunk: large enough for set-based statements to pay off, small enough that a
# chunk's rows and statements stay a few megabytes.
CHUNK = 5000
# A person's records that run on past a full chunk stay with it, up to this many, so that the
# records of one (app, person) in a row are merged before anything is written.
CHUNK_MAX = 2 * CHUNK
# How many people's keys the writer remembers to spare lookups (a few tens of megabytes at most).
PEOPLE_REMEMBERED = 200_000

_KEY_MAX = DiscoveredApp._meta.get_field("app_key").max_length or 200
_NAME_MAX = DiscoveredApp._meta.get_field("name").max_length or 300
_PERSON_MAX = DiscoveredConsent._meta.get_field("person_key").max_length or 320
_CONSENT_TYPES = frozenset(ConsentType.values)
_ADMIN = str(ConsentType.ADMIN)
_APP_FIELDS = ("name", "publisher", "publisher_verified", "alt_key", "admin_consent", "scopes", "details")


# --- Reading ahead ----------------------------------------------------------------------------


def chunks(records: Iterable[ConsentRecord]) -> Iterator[list[ConsentRecord]]:
    """Records in chunks of ``CHUNK``, a chunk running on while the same person's records do (up
    to ``CHUNK_MAX``): providers list a person's grants together."""
    chunk: list[ConsentRecord] = []
    for record in records:
        if len(chunk) >= CHUNK and (record.person_key != chunk[-1].person_key or len(chunk) >= CHUNK_MAX):
            yield chunk
            chunk = []
        chunk.append(record)
    if chunk:
        yield chunk


class _Handoff:
    """A bounded queue between two threads that either side can abandon: a put waits for room
    only while nobody has called ``stop``."""

    def __init__(self, depth: int) -> None:
        self.queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
        self.stopped = threading.Event()

    def put(self, item: tuple[str, Any]) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except Full:
                continue
        return False

    def stop(self) -> None:
        self.stopped.set()


class _ReadAhead:
    """Reads the records in a thread of its own, a couple of chunks ahead of the writer, so that
    parsing the file goes on while the database works. The thread touches no database; whatever
    it raises (a malformed record) is raised to the writer."""

    def __init__(self, records: Callable[[], Iterable[ConsentRecord]]) -> None:
        self._records = records
        self._handoff = _Handoff(depth=2)
        self._thread = threading.Thread(target=self._produce, name="discovery-import-reader", daemon=True)

    def _produce(self) -> None:
        try:
            for chunk in chunks(self._records()):
                if not self._handoff.put(("chunk", chunk)):
                    return
            self._handoff.put(("end", None))
        except BaseException as exc:  # handed to the writer, which raises it
            self._handoff.put(("error", exc))

    def __enter__(self) -> _ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Whatever ended the writing, the reader stops at its next chunk and is waited for.
        self._handoff.stop()
        self._thread.join()

    def chunks(self) -> Iterator[list[ConsentRecord]]:
        while True:
            kind, value = self._handoff.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value


# --- Records into consents --------------------------------------------------------------------


def _fits(record: ConsentRecord) -> bool:
    return (
        0 < len(record.app_key) <= _KEY_MAX
        and 0 < len(record.person_key) <= _PERSON_MAX
        and 0 < len(record.app_name) <= _NAME_MAX
        and record.consent_type in _CONSENT_TYPES
    )


def _check(record: ConsentRecord) -> None:
    """What the tables cannot hold, refused with the record's number (the formats check the
    providers' own fields; this guards the columns whatever reader produced the record)."""
    if _fits(record):
        return
    for name, value, limit in (
        ("app_key", record.app_key, _KEY_MAX),
        ("person_key", record.person_key, _PERSON_MAX),
        ("app_name", record.app_name, _NAME_MAX),
    ):
        if not 0 < len(value) <= limit:
            raise RecordError(f"must be 1 to {limit} characters", record_no=record.record_no, field=name)
    raise RecordError("must be admin or user", record_no=record.record_no, field="consent_type")


class _People:
    """Portal users by lower-cased email and username (one query): the provider names people by
    either. Two accounts sharing an email: the older one is taken."""

    def __init__(self) -> None:
        self.by_email: dict[str, int] = {}
        self.by_username: dict[str, int] = {}
        users = User.objects.filter(is_service_account=False).order_by("pk").values_list("pk", "email", "username")
        for pk, email, username in users.iterator(chunk_size=5000):
            if email:
                self.by_email.setdefault(email.lower(), pk)
            self.by_username.setdefault(username.lower(), pk)

    def match(self, person_key: str, person_email: str) -> int | None:
        key = person_key.lower()
        found = self.by_email.get(key)
        if found is None and person_email:
            found = self.by_email.get(person_email.lower())
        if found is None:
            found = self.by_username.get(key)
        return found


@dataclass
class _App:
    """An app as this import sees it, accumulated over its records."""

    row: DiscoveredApp
    new: bool
    pk: int
    name: str = ""
    publisher: str = ""
    publisher_verified: bool | None = None
    alt_key: str = ""
    admin_consent: bool = False
    scopes: set[str] = field(default_factory=set)
    details: dict[str, Any] = field(default_factory=dict)

    def absorb(self, record: ConsentRecord) -> None:
        self.name = record.app_name or self.name
        if record.publisher:
            self.publisher = record.publisher
        if record.publisher_verified is not None:
            self.publisher_verified = record.publisher_verified
        if record.alt_key:
            self.alt_key = record.alt_key
        if record.consent_type == _ADMIN:
            self.admin_consent = True
        self.scopes.update(record.scopes)
        if record.details:
            self.details.update(record.details)


Groups = dict[tuple[int, str], MergedConsent]


# --- The writer -------------------------------------------------------------------------------


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Spare the cyclic garbage collector's work while millions of records go through: what the
    process held before is set aside (``gc.freeze``) and the youngest generation collected less
    often. The records, sets and tuples made here form no cycles (reference counting frees
    them), yet each collection would walk every object alive, which took half the time of
    matching and merging a chunk. Both settings are restored afterwards."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class _Pipeline:
    """On PostgreSQL, the chunks' database work in a thread of its own, one chunk behind the
    importing thread; elsewhere (SQLite: one connection per thread) it runs in line. An error
    of the writing thread is raised in the importing thread at the next chunk or at the end."""

    def __init__(self, write: Callable[[Groups], None], threaded: bool) -> None:
        self._write = write
        self._handoff = _Handoff(depth=1) if threaded else None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _work(self) -> None:
        assert self._handoff is not None
        while True:
            kind, groups = self._handoff.queue.get()
            if kind == "end":
                return
            try:
                self._write(groups)
            except BaseException as exc:  # raised in the importing thread
                self._error = exc
                self._handoff.stop()
                return

    def __enter__(self) -> _Pipeline:
        if self._handoff is not None:
            self._thread = threading.Thread(target=self._work, name="discovery-import-writer", daemon=True)
            self._thread.start()
        return self

    def send(self, groups: Groups) -> None:
        self._raise()
        if self._handoff is None:
            self._write(groups)
        elif not self._handoff.put(("chunk", groups)):
            self._raise()

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None and self._handoff is not None:
            self._handoff.put(("end", None))
            self._thread.join()
        if exc_info[0] is None:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class ImportWriter:
    """Writes one import's records, chunk by chunk, then the apps' totals and absences."""

    def __init__(self, imp: DiscoveryImport) -> None:
        self.imp = imp
        self.now: datetime = timezone.now()
        self.people = _People()
        self.apps: dict[str, _App] = {}
        self.json = JsonLists()
        self.table = ConsentTable(self.now, imp.pk)
        self.records = 0
        self.consents = 0
        self.consents_new = 0
        self.consents_changed = 0
        self.new_app_ids: set[int] = set()
        # The people of the chunks written so far, while they are few enough to remember: a
        # consent of an app this import created, by a person no earlier chunk named, cannot be
        # stored yet, so it is not looked up (a first import looks nothing up).
        self.people_written: set[str] | None = set()
        # Who the records name (admin consents aside): users matched, and keys matching nobody
        # while they are few enough to remember (else the database counts them at the end).
        self.matched: set[int] = set()
        self.unmatched: set[str] | None = set()

    def write(self, records: Callable[[], Iterable[ConsentRecord]]) -> None:
        """Write every record ``records()`` yields (read in a thread of its own)."""
        self.table.writing(True)
        with (
            _fewer_collections(),
            _ReadAhead(records) as reader,
            _Pipeline(self._write_consents, self.table.postgres) as pipeline,
        ):
            for chunk in reader.chunks():
                pipeline.send(self._group(chunk))
        self.table.writing(False)

    def _group(self, records: list[ConsentRecord]) -> Groups:
        """The chunk's consents, one per (app, person), its records merged and matched."""
        self._load_apps(records)
        groups: Groups = {}
        matches: dict[tuple[str, str], int | None] = {}
        apps = self.apps
        for record in records:
            if not _fits(record):
                _check(record)
            app = apps[record.app_key]
            app.absorb(record)
            key = (app.pk, record.person_key)
            group = groups.get(key)
            if group is not None:
                group.merge(record)
                continue
            who = (record.person_key, record.person_email)
            if who not in matches:
                matches[who] = self.people.match(*who)
                self._count_person(record.person_key, matches[who])
            groups[key] = MergedConsent(
                record.person_email, matches[who], record.consent_type, set(record.scopes), set(record.grant_ids)
            )
        self.records += len(records)
        return groups

    def _load_apps(self, records: list[ConsentRecord]) -> None:
        """Find or create the rows of apps this import has not met yet (one query, one insert)."""
        first: dict[str, ConsentRecord] = {}
        for record in records:
            if record.app_key not in self.apps and record.app_key not in first:
                _check(record)
                first[record.app_key] = record
        if not first:
            return
        rows = DiscoveredApp.objects.filter(source=self.imp.source, tenant=self.imp.tenant, app_key__in=list(first))
        for row in rows:
            self.apps[row.app_key] = _App(row=row, new=False, pk=row.pk)
        created = [
            DiscoveredApp(
                source=self.imp.source,
                tenant=self.imp.tenant,
                app_key=key,
                name=record.app_name,
                first_seen=self.now,
                last_seen=self.now,
                first_import=self.imp,
                last_import=self.imp,
            )
            for key, record in first.items()
            if key not in self.apps
        ]
        for row in DiscoveredApp.objects.bulk_create(created):
            self.apps[row.app_key] = _App(row=row, new=True, pk=row.pk)
            self.new_app_ids.add(row.pk)

    def _count_person(self, person_key: str, person_id: int | None) -> None:
        if person_id is not None:
            self.matched.add(person_id)
        elif self.unmatched is not None and person_key != "*":
            self.unmatched.add(person_key)
            if len(self.unmatched) > PEOPLE_REMEMBERED:
                self.unmatched = None

    # --- One chunk's consents (the writing thread on PostgreSQL) --------------------------

    def _stored(self, groups: Groups) -> dict[tuple[int, str], tuple[Any, ...]]:
        """The stored consents among the chunk's, but for those the database found unchanged and
        touched at once (counted here, and taken out of ``groups``) and those that cannot be
        stored yet."""
        seen, new_apps = self.people_written, self.new_app_ids
        wanted = [key for key in groups if seen is None or key[0] not in new_apps or key[1] in seen]
        if seen is not None:
            seen.update(key[1] for key in groups)
            if len(seen) > PEOPLE_REMEMBERED:
                self.people_written = None
        if not wanted:
            return {}
        touched = self.table.touch_unchanged(
            [
                (key, groups[key], self.json.text(groups[key].scopes), self.json.text(groups[key].grant_ids))
                for key in wanted
            ]
        )
        self.consents += len(touched)
        for key in touched:
            del groups[key]
        return {(row[1], row[2]): row for row in self.table.existing([key for key in wanted if key not in touched])}

    def _write_consents(self, groups: Groups) -> None:
        stored = self._stored(groups)
        inserts: list[NewConsent] = []
        updates: list[tuple[Any, ...]] = []
        unchanged: list[int] = []
        text = self.json.text
        for key, group in groups.items():
            row = stored.get(key)
            if row is None:
                inserts.append(
                    NewConsent(
                        key[0],
                        key[1],
                        group.person_email,
                        group.person_id,
                        group.consent_type,
                        text(group.scopes),
                        text(group.grant_ids),
                    )
                )
                continue
            update = self._compare(group, row)
            if update is None:
                unchanged.append(row[0])
            else:
                updates.append(update)
        self.consents += len(inserts)
        self.consents_new += len(inserts)
        self.table.insert(inserts)
        self.table.update(updates)
        self.table.touch(unchanged)

    def _compare(self, group: MergedConsent, row: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The update a stored consent needs to say what ``group`` says, or None."""
        pk, _app_id, _person_key, person_email, person_id, consent_type, scopes, grant_ids, present, last_import = row
        again = last_import == self.imp.pk
        if again:
            # Met in an earlier chunk of this import: unite with what that chunk wrote.
            group.scopes.update(loaded(scopes))
            group.grant_ids.update(loaded(grant_ids))
            group.person_email = group.person_email or person_email
            if consent_type == _ADMIN:
                group.consent_type = _ADMIN
        else:
            self.consents += 1
        scopes_text, grants_text = self.json.text(group.scopes), self.json.text(group.grant_ids)
        if (
            present
            and person_email == group.person_email
            and person_id == group.person_id
            and consent_type == group.consent_type
            and same_json(scopes, scopes_text)
            and same_json(grant_ids, grants_text)
        ):
            return None
        self.consents_changed += not again
        return (
            group.person_email,
            group.person_id,
            group.consent_type,
            scopes_text,
            grants_text,
            self.now,
            self.imp.pk,
            pk,
        )

    # --- After the last chunk -------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Mark what a complete import did not mention absent, store each app's totals, and
        return the import's counts."""
        gone_apps, gone_consents = self._absent() if self.imp.complete else ([], 0)
        people = self._people_counts([app.pk for app in self.apps.values()] + gone_apps)
        self._save_apps(people)
        matched, unmatched = self._people_seen()
        return {
            "records": self.records,
            "apps": len(self.apps),
            "consents": self.consents,
            "apps_new": sum(app.new for app in self.apps.values()),
            "consents_new": self.consents_new,
            "consents_changed": self.consents_changed,
            "people_matched": matched,
            "people_unmatched": unmatched,
            "apps_absent": len(gone_apps),
            "consents_absent": gone_consents,
        }

    def _absent(self) -> tuple[list[int], int]:
        """A complete listing: the source's apps and consents it did not mention are absent."""
        apps = DiscoveredApp.objects.filter(source=self.imp.source, tenant=self.imp.tenant)
        mentioned = [app.pk for app in self.apps.values()]
        gone_apps = list(apps.filter(present=True).exclude(pk__in=mentioned).values_list("pk", flat=True))
        if gone_apps:
            DiscoveredApp.objects.filter(pk__in=gone_apps).update(present=False)
        gone_consents = (
            DiscoveredConsent.objects.filter(app__in=apps, present=True)
            .exclude(last_import=self.imp)
            .update(present=False)
        )
        return gone_apps, gone_consents

    def _people_counts(self, app_ids: list[int]) -> dict[int, int]:
        """People who consented for themselves, per app (present consents)."""
        rows = (
            DiscoveredConsent.objects.filter(app_id__in=app_ids, present=True, consent_type=ConsentType.USER)
            .values("app_id")
            .annotate(people=Count("pk"))
            .values_list("app_id", "people")
        )
        counts = dict.fromkeys(app_ids, 0)
        counts.update(dict(rows))
        return counts

    def _save_apps(self, people: dict[int, int]) -> None:
        """Each app's name, publisher, scopes and totals from this import; a partial import adds
        to what earlier imports showed. Rows with nothing new only move ``last_seen``."""
        changed: list[DiscoveredApp] = []
        for app in self.apps.values():
            row = app.row
            scopes = set(app.scopes) if self.imp.complete else set(app.scopes) | set(row.scopes or [])
            details = app.details if self.imp.complete else {**(row.details or {}), **app.details}
            values = {
                "name": app.name or row.name,
                "publisher": app.publisher,
                "publisher_verified": app.publisher_verified,
                "alt_key": app.alt_key,
                "admin_consent": app.admin_consent or (not self.imp.complete and row.admin_consent),
                "scopes": sorted(scopes),
                "details": details,
                "people_count": people.get(row.pk, 0),
                "present": True,
            }
            if app.new or any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                changed.append(row)
        DiscoveredApp.objects.bulk_update(changed, [*_APP_FIELDS, "people_count", "present"], batch_size=500)
        DiscoveredApp.objects.filter(pk__in=[app.pk for app in self.apps.values()]).update(
            last_seen=self.now, last_import=self.imp
        )
        for app_id in set(people) - {app.pk for app in self.apps.values()}:
            DiscoveredApp.objects.filter(pk=app_id).exclude(people_count=people[app_id]).update(
                people_count=people[app_id]
            )

    def _people_seen(self) -> tuple[int, int]:
        """Distinct people this import named, matched to a user or not (admin consents aside)."""
        if self.unmatched is not None:
            return len(self.matched), len(self.unmatched)
        mine = DiscoveredConsent.objects.filter(last_import=self.imp).exclude(person_key="*")
        matched = mine.filter(person__isnull=False).values("person_id").distinct().count()
        unmatched = mine.filter(person__isnull=True).values("person_key").distinct().count()
        return matched, unmatched
