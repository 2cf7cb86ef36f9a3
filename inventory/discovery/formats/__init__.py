"""The providers' own JSON, as their APIs return it, read into ``ConsentRecord`` objects.

``parse(source, path)`` picks the source's module (``google``, ``entra``, ``slack``, ``github``,
``okta``); each exposes ``records(path)`` and may read the file twice. This module holds what they
share: the walk over a file's records and the checks every field goes through.

Record numbering, the contract every error follows: each item of a page's list (``items``,
``value``, ``approved_apps``, ``installations``, ``users``, a top-level array) and each standalone
object counts as one record, in file order, from 1, whether or not it becomes a consent (users,
service principals and skipped grants count too). A page itself is not a record. An error names
the record (the number the next record would have had when the fault lies between records, 0 for
the file as a whole) and the provider's field, dotted when nested (``app.id``).

Field checks: a required field is present (``null`` counts as absent) with the right JSON type;
strings fit the model's columns; identifiers (app and person keys, ids, scope names) and object
keys are printable (no control characters: they end up in URLs, logs and pages) and free text
holds no NUL character (PostgreSQL cannot store it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inventory.discovery import reader
from inventory.discovery.records import ConsentRecord, RecordError

# The model's column lengths (DiscoveredApp, DiscoveredConsent, ScopeMapping).
KEY_MAX = 200
NAME_MAX = 300
PERSON_MAX = 320
SCOPE_MAX = 300
GRANT_ID_MAX = 200
# Details (URLs, timestamps, labels) are shown on pages; longer values are not a provider's.
DETAIL_MAX = 2000

_NUL = "\x00"

PageCheck = Callable[[dict[str, Any], int], None]


def parse(source: str, path: Path) -> Iterator[ConsentRecord]:
    """The consents in the file at ``path``, read as ``source``'s format (a
    ``inventory.discovery.choices.Source`` value). Raises ``RecordError`` for malformed data."""
    from inventory.discovery.formats import entra, github, google, okta, slack

    readers: dict[str, Callable[[Path], Iterator[ConsentRecord]]] = {
        "google": google.records,
        "entra": entra.records,
        "slack": slack.records,
        "github": github.records,
        "okta": okta.records,
    }
    if source not in readers:
        raise RecordError(f"unknown source {source!r}", field="source")
    return readers[source](path)


class _Counter:
    """The number the next record of the file gets."""

    def __init__(self) -> None:
        self.next_no = 1


def walk(
    path: Path,
    *,
    list_keys: tuple[str, ...],
    is_page: Callable[[dict[str, Any]], bool] | None = None,
    check_page: PageCheck | None = None,
) -> Iterator[Fields]:
    """Every record of the file at ``path``, numbered (see the module's rules), as ``Fields``
    that know the page the record came in and the page's list key.

    A document is a top-level array (each item a record), a page (an object holding one of
    ``list_keys``, or one ``is_page`` recognises: ``check_page`` sees it first, with the number
    its first item would get) or a standalone object (one record). A file with no document at
    all is refused: an empty upload is a mistake, and read as complete it would mark every app
    of the source gone."""
    counter = _Counter()
    found = False
    for document in _numbered_documents(path, counter):
        found = True
        if isinstance(document, list):
            yield from _items(document, counter, None, "")
        elif not isinstance(document, dict):
            raise RecordError(
                f"a document must be a JSON object or array, not {json_type(document)}", record_no=counter.next_no
            )
        elif (list_key := _list_key(document, list_keys)) or (is_page is not None and is_page(document)):
            if check_page is not None:
                check_page(document, counter.next_no)
            items = document.get(list_key, []) if list_key else []
            if not isinstance(items, list):
                raise RecordError(
                    f"must be an array, not {json_type(items)}", record_no=counter.next_no, field=list_key
                )
            yield from _items(items, counter, document, list_key)
        else:
            yield from _items([document], counter, None, "")
    if not found:
        raise RecordError("the file is empty: it holds no JSON document")


def _numbered_documents(path: Path, counter: _Counter) -> Iterator[Any]:
    """The reader's documents; its errors get the number the next record would have had."""
    try:
        yield from reader.documents(path)
    except RecordError as exc:
        if exc.record_no:
            raise
        raise RecordError(exc.message, record_no=counter.next_no, field=exc.field) from exc


def _list_key(document: dict[str, Any], list_keys: tuple[str, ...]) -> str:
    for key in list_keys:
        if key in document:
            return key
    return ""


def _items(values: list[Any], counter: _Counter, page: dict[str, Any] | None, list_key: str) -> Iterator[Fields]:
    for value in values:
        record_no = counter.next_no
        counter.next_no += 1
        if not isinstance(value, dict):
            what = f"each item of {list_key}" if list_key else "a record"
            raise RecordError(
                f"{what} must be a JSON object, not {json_type(value)}", record_no=record_no, field=list_key
            )
        if not "".join(value).isprintable():  # the common case costs one check, not a call
            check_keys(value, record_no, "")
        yield Fields(value, record_no, page=page, list_key=list_key)


def check_keys(data: dict[str, Any], record_no: int, prefix: str) -> None:
    """Refuse an object whose keys hold a control or other unprintable character (the field
    named is the key, its unprintable characters escaped)."""
    if not "".join(data).isprintable():
        bad = next(key for key in data if not key.isprintable())
        raise RecordError(
            "a field name must not contain control characters or other unprintable characters",
            record_no=record_no,
            field=prefix + bad.encode("unicode_escape").decode("ascii"),
        )


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class Fields:
    """The fields of one record (or of an object nested in it, ``prefix`` naming where), read
    with the module's checks; every failure is a ``RecordError`` naming the record and field.
    ``page`` is the page the record came in (None for a standalone object or an item of a
    top-level array) and ``list_key`` the page's list it came from ("" if none)."""

    __slots__ = ("data", "list_key", "page", "prefix", "record_no")

    def __init__(
        self,
        data: dict[str, Any],
        record_no: int,
        prefix: str = "",
        *,
        page: dict[str, Any] | None = None,
        list_key: str = "",
    ) -> None:
        self.data = data
        self.record_no = record_no
        self.prefix = prefix
        self.page = page
        self.list_key = list_key

    def error(self, name: str, message: str) -> RecordError:
        return RecordError(message, record_no=self.record_no, field=self.prefix + name)

    def key(self, name: str, max_length: int = KEY_MAX) -> str:
        """A required identifier: a non-empty, printable string."""
        value = self.data.get(name)
        if type(value) is str and 0 < len(value) <= max_length and value.isprintable():
            return value
        if type(value) is not str:
            raise self._wrong_type(name, value, "a string")
        raise self.error(name, _key_problem(value, max_length))

    def optional_key(self, name: str, max_length: int = KEY_MAX) -> str:
        """An identifier that may be absent or null ("" then)."""
        return self.key(name, max_length) if self.data.get(name) is not None else ""

    def text(self, name: str, max_length: int = NAME_MAX) -> str:
        """Optional free text ("" when absent or null): a string without NUL characters."""
        value = self.data.get(name)
        if value is None:
            return ""
        if type(value) is not str:
            raise self._wrong_type(name, value, "a string")
        if len(value) > max_length:
            raise self.error(name, f"must be at most {max_length} characters")
        if _NUL in value:
            raise self.error(name, "must not contain NUL characters")
        return value

    def integer_key(self, name: str) -> str:
        """A required whole number used as an id, as its decimal string."""
        value = self.data.get(name)
        if type(value) is not int:
            raise self._wrong_type(name, value, "a whole number")
        return str(value)

    def flag(self, name: str) -> bool | None:
        """An optional boolean (None when absent or null)."""
        value = self.data.get(name)
        if value is not None and type(value) is not bool:
            raise self._wrong_type(name, value, "true or false")
        return value

    def key_list(self, name: str, max_length: int = SCOPE_MAX) -> tuple[str, ...]:
        """A required array of identifiers (scope names), without duplicates, in order."""
        values = self.data.get(name)
        if type(values) is not list:
            raise self._wrong_type(name, values, "an array of strings")
        return self._identifiers(name, values, max_length)

    def word_list(self, name: str, max_length: int = SCOPE_MAX) -> tuple[str, ...]:
        """A required string of identifiers separated by spaces (an empty string is none)."""
        value = self.data.get(name)
        if type(value) is not str:
            raise self._wrong_type(name, value, "a string")
        return self._identifiers(name, value.split(), max_length)

    def _identifiers(self, name: str, values: list[Any], max_length: int) -> tuple[str, ...]:
        try:
            joined = "".join(values)
        except TypeError:
            wrong = next(value for value in values if type(value) is not str)
            raise self.error(name, f"must be an array of strings, not of {json_type(wrong)}") from None
        # One check over all the items at once (no item is longer than all of them together); the
        # item at fault is looked for only on failure.
        too_long = len(joined) > max_length and max(map(len, values)) > max_length
        if too_long or "" in values or not joined.isprintable():
            problem = next(problem for value in values if (problem := _key_problem(value, max_length)))
            raise self.error(name, f"each item {problem}")
        return tuple(dict.fromkeys(values))

    def nested(self, name: str) -> Fields:
        """The required object in field ``name``."""
        value = self.data.get(name)
        if type(value) is not dict:
            raise self._wrong_type(name, value, "an object")
        prefix = f"{self.prefix}{name}."
        check_keys(value, self.record_no, prefix)
        return Fields(value, self.record_no, prefix)

    def optional_nested(self, name: str) -> Fields | None:
        """The object in field ``name``, None when absent or null."""
        return self.nested(name) if self.data.get(name) is not None else None

    def object_list(self, name: str) -> list[Fields]:
        """The required array of objects in field ``name``, each as ``Fields`` (``name.field``)."""
        values = self.data.get(name)
        if type(values) is not list:
            raise self._wrong_type(name, values, "an array of objects")
        prefix = f"{self.prefix}{name}."
        items = []
        for value in values:
            if type(value) is not dict:
                raise self.error(name, f"must be an array of objects, not of {json_type(value)}")
            check_keys(value, self.record_no, prefix)
            items.append(Fields(value, self.record_no, prefix))
        return items

    def details(self, *names: str) -> dict[str, Any]:
        """The named fields that are present, for ``ConsentRecord.details``: strings (free text
        up to ``DETAIL_MAX``), numbers and booleans as given, under the provider's names."""
        found: dict[str, Any] = {}
        for name in names:
            value = self.data.get(name)
            if value is None:
                continue
            if type(value) is str:
                found[name] = self.text(name, DETAIL_MAX)
            elif type(value) in (int, bool) or (type(value) is float and math.isfinite(value)):
                found[name] = value
            else:
                raise self._wrong_type(name, value, "a string, number or boolean")
        return found

    def _wrong_type(self, name: str, value: Any, expected: str) -> RecordError:
        if value is None:
            return self.error(name, "is required")
        return self.error(name, f"must be {expected}, not {json_type(value)}")


def _key_problem(value: str, max_length: int) -> str:
    """What keeps a string from being an identifier ("" when nothing does)."""
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    if not value.isprintable():
        return "must not contain control characters or other unprintable characters"
    return ""
