"""The consent table's set-based statements, for the import writer (``inventory.discovery.writing``):
on PostgreSQL through the import's psycopg connection itself (usable from the writing thread,
and binding thousands of values without Django's cursor inlining each into the SQL text), on
SQLite as plain statements. Also how the writer holds a consent between records and rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from inventory.discovery.choices import ConsentResponse, ConsentType
from inventory.discovery.models import DiscoveredConsent
from inventory.discovery.records import ConsentRecord

_ADMIN = str(ConsentType.ADMIN)
_NOT_ASKED = str(ConsentResponse.NOT_ASKED)


@dataclass(slots=True)
class MergedConsent:
    """One (app, person) of a chunk, its records merged."""

    person_email: str
    person_id: int | None
    consent_type: str
    scopes: set[str]
    grant_ids: set[str]

    def merge(self, record: ConsentRecord) -> None:
        self.person_email = self.person_email or record.person_email
        if record.consent_type == _ADMIN:
            self.consent_type = _ADMIN
        self.scopes.update(record.scopes)
        self.grant_ids.update(record.grant_ids)


class JsonLists:
    """Sorted JSON lists of names, written as PostgreSQL's jsonb prints them back (so a stored
    value compares equal as text, without parsing). The same few scope sets recur across
    thousands of consents, so their text is remembered (a bounded number of them)."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._known: dict[frozenset[str], str] = {}

    def text(self, values: set[str]) -> str:
        if not values:
            return "[]"
        key = frozenset(values)
        found = self._known.get(key)
        if found is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            found = self._known[key] = json.dumps(sorted(values), ensure_ascii=False)
        return found


def same_json(stored: Any, text: str) -> bool:
    """Whether a stored JSON value (text as the database returns it, or already parsed) says
    what ``text`` says: equal text first, parsing only when the texts differ."""
    if isinstance(stored, str):
        return stored == text or json.loads(stored) == json.loads(text)
    return bool(stored == json.loads(text))


def loaded(value: Any) -> list[str]:
    """A stored JSON list as a list."""
    return list(json.loads(value) if isinstance(value, str) else value or [])


# --- PostgreSQL literals ----------------------------------------------------------------------
# Written here rather than by psycopg's adapters, which escape element by element in Python and
# cost more than the statements for a chunk's thousands of values.

_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_NULL = "\\N"


def _copy_field(value: str) -> str:
    """``value`` as a field of ``COPY``'s text format."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _int_array(values: Iterable[int | None]) -> str:
    """An array literal of ids (NULL for None)."""
    return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}"


def _array_item(value: str) -> str:
    """``value`` as an element of an array literal: double-quoted, backslashes and quotes escaped."""
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def _text_array(values: Iterable[str], cache: dict[str, str] | None = None) -> str:
    """An array literal of strings; ``cache`` remembers the quoting of values that recur."""
    if cache is None:
        return "{" + ",".join(map(_array_item, values)) + "}"
    items = []
    for value in values:
        item = cache.get(value)
        if item is None:
            if len(cache) >= JsonLists.LIMIT:
                cache.clear()
            item = cache[value] = _array_item(value)
        items.append(item)
    return "{" + ",".join(items) + "}"


# --- The consent table ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewConsent:
    """A consent to insert (scopes and grant ids as JSON text); the rest is the import's."""

    app_id: int
    person_key: str
    person_email: str
    person_id: int | None
    consent_type: str
    scopes: str
    grant_ids: str


class ConsentTable:
    """The statements one import's chunks run on the consent table."""

    COLUMNS = (
        "app_id",
        "person_key",
        "person_email",
        "person_id",
        "consent_type",
        "scopes",
        "grant_ids",
        "present",
        "first_seen",
        "last_seen",
        "last_import_id",
        "response",
    )
    _READ = (
        "c.id, c.app_id, c.person_key, c.person_email, c.person_id, c.consent_type, c.scopes, c.grant_ids, "
        "c.present, c.last_import_id"
    )

    def __init__(self, now: datetime, import_id: int) -> None:
        self.table = connection.ops.quote_name(DiscoveredConsent._meta.db_table)
        self.postgres = connection.vendor == "postgresql"
        self.now, self.import_id = now, import_id
        self.quoted: dict[str, str] = {}
        connection.ensure_connection()
        # The psycopg connection under Django's, for the writing thread (Django's wrapper is one
        # per thread: through it, that thread would open a connection of its own).
        self.raw_connection = connection.connection if self.postgres else None

    def writing(self, started: bool) -> None:
        """On PostgreSQL, for the chunks' statements (``started``) and back after them:

        * check the consents' foreign keys as each statement ends rather than all at commit, so
          the checks of a chunk run while the next chunk is being read instead of holding the
          commit for a million of them at once;
        * look each of a chunk's thousands of keys up by index: the planner, seeing thousands of
          keys against a table of millions, prefers hashing the whole table, once per chunk,
          which makes an import of millions take minutes."""
        if not self.postgres:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [DiscoveredConsent._meta.db_table],
            )
            names = ", ".join(connection.ops.quote_name(name) for (name,) in cursor.fetchall())
            if names:
                cursor.execute(f"SET CONSTRAINTS {names} {'IMMEDIATE' if started else 'DEFERRED'}")
            for setting in ("enable_hashjoin", "enable_mergejoin"):
                cursor.execute(f"SET LOCAL {setting} TO {'off' if started else 'DEFAULT'}")

    def _raw(self) -> Any:
        import psycopg

        assert self.raw_connection is not None, "PostgreSQL only"
        return psycopg.Cursor(self.raw_connection)

    def existing(self, keys: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """The stored consents among ``keys`` (one query)."""
        if not keys:
            return []
        if self.postgres:
            sql = (
                f"SELECT {self._READ} FROM {self.table} c "
                "JOIN unnest(%s::bigint[], %s::text[]) AS k(app_id, person_key) "
                "ON c.app_id = k.app_id AND c.person_key = k.person_key"
            )
            with self._raw() as cursor:
                cursor.execute(sql, [_int_array(key[0] for key in keys), _text_array(key[1] for key in keys)])
                return list(cursor.fetchall())
        pairs = ", ".join(["(%s, %s)"] * len(keys))
        sql = f"SELECT {self._READ} FROM {self.table} c WHERE (c.app_id, c.person_key) IN (VALUES {pairs})"
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for key in keys for value in key])
            return list(cursor.fetchall())

    def touch_unchanged(self, rows: list[tuple[tuple[int, str], MergedConsent, str, str]]) -> set[tuple[int, str]]:
        """On PostgreSQL, move ``last_seen`` and ``last_import`` of the consents among ``rows``
        (key, merged records, scopes and grant ids as JSON) stored exactly as the records say, in
        one statement, and return their keys: a re-import of unchanged data reads nothing back.
        Consents this import already wrote are left to the caller, which unites them."""
        if not self.postgres or not rows:
            return set()
        sql = (
            f"UPDATE {self.table} AS c SET last_seen = %s, last_import_id = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::jsonb[], %s::jsonb[]) "
            "AS k(app_id, person_key, person_email, person_id, consent_type, scopes, grant_ids) "
            "WHERE c.app_id = k.app_id AND c.person_key = k.person_key AND c.present "
            "AND c.person_email = k.person_email AND c.person_id IS NOT DISTINCT FROM k.person_id "
            "AND c.consent_type = k.consent_type AND c.scopes = k.scopes AND c.grant_ids = k.grant_ids "
            "AND c.last_import_id IS DISTINCT FROM %s "
            "RETURNING c.app_id, c.person_key"
        )
        params = [
            self.now,
            self.import_id,
            _int_array(key[0] for key, _group, _scopes, _grants in rows),
            _text_array(key[1] for key, _group, _scopes, _grants in rows),
            _text_array(group.person_email for _key, group, _scopes, _grants in rows),
            _int_array(group.person_id for _key, group, _scopes, _grants in rows),
            _text_array((group.consent_type for _key, group, _scopes, _grants in rows), self.quoted),
            _text_array((scopes for _key, _group, scopes, _grants in rows), self.quoted),
            _text_array((grants for _key, _group, _scopes, grants in rows), self.quoted),
            self.import_id,
        ]
        with self._raw() as cursor:
            cursor.execute(sql, params)
            return {(app_id, person_key) for app_id, person_key in cursor.fetchall()}

    def insert(self, rows: list[NewConsent]) -> None:
        """New consents, in one ``COPY`` on PostgreSQL."""
        if not rows:
            return
        columns = ", ".join(self.COLUMNS)
        if self.postgres:
            # Every new consent is present, first and last seen now, by this import, not asked.
            tail = f"\tt\t{self.now.isoformat()}\t{self.now.isoformat()}\t{self.import_id}\t{_NOT_ASKED}\n"
            text = "".join(
                f"{row.app_id}\t{_copy_field(row.person_key)}\t{_copy_field(row.person_email)}\t"
                f"{_COPY_NULL if row.person_id is None else row.person_id}\t{row.consent_type}\t"
                f"{_copy_field(row.scopes)}\t{_copy_field(row.grant_ids)}{tail}"
                for row in rows
            )
            with self._raw() as cursor, cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy:
                copy.write(text.encode())
            return
        placeholders = ", ".join(["%s"] * len(self.COLUMNS))
        values = [
            (
                row.app_id,
                row.person_key,
                row.person_email,
                row.person_id,
                row.consent_type,
                row.scopes,
                row.grant_ids,
                True,
                self.now,
                self.now,
                self.import_id,
                _NOT_ASKED,
            )
            for row in rows
        ]
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.table} ({columns}) VALUES ({placeholders})", values)

    def update(self, rows: list[tuple[Any, ...]]) -> None:
        """Changed consents: (email, person, type, scopes, grant ids, last seen, import, id)."""
        if not rows:
            return
        cast = "::jsonb" if self.postgres else ""
        sql = (
            f"UPDATE {self.table} SET person_email = %s, person_id = %s, consent_type = %s, scopes = %s{cast}, "
            f"grant_ids = %s{cast}, present = TRUE, last_seen = %s, last_import_id = %s WHERE id = %s"
        )
        if self.postgres:
            with self._raw() as cursor:
                cursor.executemany(sql, rows)
            return
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def touch(self, ids: list[int]) -> None:
        """Unchanged consents: only ``last_seen`` and ``last_import`` move."""
        if not ids:
            return
        sql = f"UPDATE {self.table} SET last_seen = %s, last_import_id = %s WHERE id "
        if self.postgres:
            with self._raw() as cursor:
                cursor.execute(sql + "= ANY(%s::bigint[])", [self.now, self.import_id, _int_array(ids)])
            return
        with connection.cursor() as cursor:
            cursor.execute(sql + f"IN ({', '.join(['%s'] * len(ids))})", [self.now, self.import_id, *ids])
