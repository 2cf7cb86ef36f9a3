"""django-simple-history where the ORM's bulk paths skip it, and histories as people read them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import capfirst

from governance.models import User


def history_record_many(
    instances: Sequence[models.Model],
    *,
    user: User | None,
    reason: str = "",
    history_type: str = "~",
    batch_size: int = 1000,
) -> None:
    """Write one historical row per instance, as ``save()`` would, after a bulk ``update()``.

    django-simple-history's ``bulk_update_with_history`` saves row by row, far too slowly for the
    bulk jobs; this writes the historical rows with one ``bulk_create`` from the instances'
    current field values.
    """
    if not instances:
        return
    model = type(instances[0])
    # ``history`` is put on the model class at run time by django-simple-history (untyped).
    history_model = model.history.model  # type: ignore[attr-defined]
    tracked = {f.attname for f in history_model._meta.concrete_fields}
    now = timezone.now()
    rows = []
    for obj in instances:
        values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if f.attname in tracked}
        rows.append(
            history_model(
                **values,
                history_date=now,
                history_type=history_type,
                history_user=user,
                history_change_reason=reason[:100] if reason else None,
            )
        )
    history_model.objects.bulk_create(rows, batch_size=batch_size)


# --- Histories as people read them ------------------------------------------------------------
#
# A change is recorded twice: django-simple-history keeps the row's fields at each save, and the
# audit trail keeps the action, its reason and the fields it changed. Pages show one entry per
# change: an audit event with the history rows written with it (same person, a moment apart),
# and values as the page elsewhere shows them (choice labels, people's names, dates, Yes/No).

EMPTY = "—"
# Longer values are shortened on the page, with the whole text a click away.
LONG_TEXT = 160
# The history rows and the audit event of one change are written in one transaction: a moment apart.
SAME_CHANGE_WINDOW = dt.timedelta(seconds=2)
# Fields that change on every save and say nothing to a reader.
NOISE_FIELDS = frozenset({"updated_at", "search_text"})
_HISTORY_ACTIONS = {"created": "Created", "changed": "Changed", "deleted": "Deleted"}


@dataclass(frozen=True)
class FieldDisplay:
    label: str = ""
    choices: tuple[tuple[str, str], ...] = ()


# Labels and choices of fields the model alone cannot give (a JSON list of choice values).
_FIELDS: dict[tuple[str, str], FieldDisplay] = {}


def register_field_display(
    model_label: str, field: str, *, label: str = "", choices: Iterable[tuple[Any, Any]] = ()
) -> None:
    """How histories name ``field`` of ``model_label`` and label its values (each item of a list).
    Call from the app's ``AppConfig.ready``."""
    pairs = tuple((str(value), str(text)) for value, text in choices)
    _FIELDS[(model_label.lower(), field)] = FieldDisplay(label=label, choices=pairs)


@dataclass(frozen=True)
class ShownValue:
    """A value as the page shows it; ``full`` holds the whole text when ``text`` is shortened."""

    text: str
    full: str = ""


@dataclass(frozen=True)
class ShownChange:
    label: str
    new: ShownValue
    # None: nothing before it worth showing (a value set at creation).
    old: ShownValue | None = None


@dataclass(frozen=True)
class ShownEntry:
    at: dt.datetime
    who: str
    action: str
    code: str
    reason: str
    changes: list[ShownChange]


def action_label(action: str) -> str:
    """``integration.changes_requested`` -> "Changes requested" (what happened to the object)."""
    verb = action.rsplit(".", 1)[-1]
    return _HISTORY_ACTIONS.get(verb) or capfirst(verb.replace("_", " "))


def action_choice_label(action: str) -> str:
    """``access_request.step_decided`` -> "Access request: step decided" (for a list of all)."""
    subject, _, verb = action.rpartition(".")
    if not subject:
        return action_label(action)
    return f"{capfirst(subject.replace('_', ' ').replace('.', ' '))}: {verb.replace('_', ' ')}"


class _Names:
    """The names of the objects that values point at (ids, or usernames in audit snapshots),
    read with one query per related model and kind of key for a whole page."""

    def __init__(self) -> None:
        self._wanted: dict[type[models.Model], tuple[set[int], set[str]]] = {}
        self._names: dict[tuple[type[models.Model], str], str] = {}

    def want(self, related: type[models.Model], value: Any) -> None:
        ids, keys = self._wanted.setdefault(related, (set(), set()))
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, int) and not isinstance(item, bool):
                ids.add(item)
            elif isinstance(item, str) and item and hasattr(related, "USERNAME_FIELD"):
                keys.add(item)

    def load(self) -> None:
        for related, (ids, keys) in self._wanted.items():
            if ids:
                for obj in related._default_manager.filter(pk__in=ids):
                    self._names[(related, str(obj.pk))] = _object_name(obj)
            if keys:
                key_field = related.USERNAME_FIELD  # type: ignore[attr-defined]
                for obj in related._default_manager.filter(**{f"{key_field}__in": keys}):
                    self._names[(related, str(getattr(obj, key_field)))] = _object_name(obj)
        self._wanted.clear()

    def name(self, related: type[models.Model], value: Any) -> str | None:
        return self._names.get((related, str(value)))


def _object_name(obj: models.Model) -> str:
    label = getattr(obj, "label", None)
    return label if isinstance(label, str) and label else str(obj)


def _model_field(model: type[models.Model] | None, name: str) -> Any:
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _display(model: type[models.Model] | None, name: str) -> FieldDisplay:
    if model is None:
        return FieldDisplay()
    return _FIELDS.get((model._meta.label_lower, name), FieldDisplay())


def _field_label(model: type[models.Model] | None, name: str) -> str:
    if name == "created":
        return "Name"
    registered = _display(model, name).label
    if registered:
        return registered
    field = _model_field(model, name)
    verbose = getattr(field, "verbose_name", None)
    return str(capfirst(verbose if verbose else name.replace("_", " ")))


def _related(field: Any) -> type[models.Model] | None:
    if field is not None and getattr(field, "is_relation", False) and not getattr(field, "auto_created", False):
        return field.related_model
    return None


def _moment(value: Any, field: Any) -> str | None:
    """A date or date-time value (a datetime, or its ISO text in an audit snapshot) formatted."""
    if isinstance(value, str) and isinstance(field, models.DateTimeField):
        value = parse_datetime(value) or value
    elif isinstance(value, str) and isinstance(field, models.DateField):
        value = parse_date(value) or value
    if isinstance(value, dt.datetime):
        return date_format(timezone.localtime(value) if timezone.is_aware(value) else value, "Y-m-d H:i")
    if isinstance(value, dt.date):
        return date_format(value, "Y-m-d")
    return None


def _item_text(value: Any, field: Any, choices: dict[str, str], names: _Names) -> str:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if str(value) in choices:
        return choices[str(value)]
    related = _related(field)
    if related is not None:
        return names.name(related, value) or str(value)
    return _moment(value, field) or str(value)


def _value_text(value: Any, field: Any, display: FieldDisplay, names: _Names) -> str:
    if value is None or value in ("", [], {}):
        return EMPTY
    choices = dict(display.choices)
    if not choices and getattr(field, "choices", None):
        choices = {str(key): str(text) for key, text in field.flatchoices}
    if isinstance(value, list | tuple):
        return ", ".join(_item_text(item, field, choices, names) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_item_text(item, None, {}, names)}" for key, item in value.items())
    return _item_text(value, field, choices, names)


def _shown(text: str) -> ShownValue:
    if len(text) <= LONG_TEXT:
        return ShownValue(text)
    return ShownValue(text[:LONG_TEXT].rstrip() + "…", full=text)


def _want_names(model: type[models.Model] | None, changes: list[dict[str, Any]], names: _Names) -> None:
    for change in changes:
        related = _related(_model_field(model, change["field"]))
        if related is not None:
            names.want(related, change.get("old"))
            names.want(related, change.get("new"))


def _changes_shown(model: type[models.Model] | None, changes: list[dict[str, Any]], names: _Names) -> list[ShownChange]:
    shown = []
    for change in changes:
        name = change["field"]
        if name in NOISE_FIELDS:
            continue
        field, display = _model_field(model, name), _display(model, name)
        new = _shown(_value_text(change.get("new"), field, display, names))
        old = None if change.get("initial") else _shown(_value_text(change.get("old"), field, display, names))
        shown.append(ShownChange(label=_field_label(model, name), new=new, old=old))
    return shown


def audit_changes(before: Any, after: Any) -> list[dict[str, Any]]:
    """An audit event's before/after as field changes, leaving out fields empty on both sides;
    an event with only ``after`` (a creation) gives the values it was created with."""
    if before is None and isinstance(after, dict):
        return [
            {"field": key, "old": None, "new": value, "initial": True}
            for key, value in after.items()
            if value not in (None, "", [], {})
        ]
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return []
    keys = dict.fromkeys([*before.keys(), *after.keys()])
    return [
        {"field": key, "old": before.get(key), "new": after.get(key)}
        for key in keys
        if before.get(key) not in (None, "", [], {}) or after.get(key) not in (None, "", [], {})
    ]


def _model_of(model_label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(model_label) if model_label else None
    except (LookupError, ValueError):
        return None


def audit_events_changes(events: Sequence[Any]) -> list[list[ShownChange]]:
    """What each audit event changed, as people read it, for a page of events (one query per
    kind of object its values name)."""
    names = _Names()
    items = []
    for event in events:
        model = _model_of(event.target_type)
        changes = audit_changes(event.before, event.after)
        _want_names(model, changes, names)
        items.append((model, changes))
    names.load()
    return [_changes_shown(model, changes, names) for model, changes in items]


def _is_creation(record: dict[str, Any]) -> bool:
    return any(change["field"] == "created" for change in record["changes"])


def _merged_changes(base: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``base`` (the audit event's changes) and what the history rows of the same change add:
    for a field changed by several rows, its value before the first and after the last. The
    values of a creation are shown as set, without a "before"."""
    creation = any(_is_creation(record) for record in records)
    if creation:
        # The event of a creation lists the values it was created with: no "before" to show.
        base = [{**change, "initial": True} for change in base]
    known = {change["field"] for change in base}
    if base:
        known.add("created")  # the name is among the event's values
    extra: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda row: row["at"]):
        for change in record["changes"]:
            name = change["field"]
            if name in known or name in NOISE_FIELDS:
                continue
            if name in extra:
                extra[name]["new"] = change["new"]
            else:
                extra[name] = {**change, "initial": creation}
    added = [change for change in extra.values() if change["initial"] or change["old"] != change["new"]]
    added.sort(key=lambda change: change["field"] != "created")
    return [*base, *added]


def _one_per_change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each audit event with the history rows written with it (same person, nearest in time
    within ``SAME_CHANGE_WINDOW``); history rows that no event explains stand alone."""
    events = [entry for entry in entries if entry["source"] == "audit"]
    paired: list[list[dict[str, Any]]] = [[] for _ in events]
    alone: list[dict[str, Any]] = []
    for record in (entry for entry in entries if entry["source"] != "audit"):
        near = [
            (abs(event["at"] - record["at"]), index)
            for index, event in enumerate(events)
            if event["who"] == record["who"] and abs(event["at"] - record["at"]) <= SAME_CHANGE_WINDOW
        ]
        if near:
            paired[min(near)[1]].append(record)
        else:
            alone.append(record)
    merged = [
        {**event, "changes": _merged_changes(list(event["changes"]), records)}
        for event, records in zip(events, paired, strict=True)
    ]
    for record in alone:
        changes = _merged_changes([], [record])
        if changes or record["reason"]:
            merged.append({**record, "changes": changes})
    return merged


def history_readable(entries: list[dict[str, Any]], *, model: type[models.Model]) -> list[ShownEntry]:
    """A timeline of ``model``'s object (entries as ``at``, ``who``, ``source`` history/audit,
    ``action``, ``reason``, ``changes``) as a page shows it: one entry per change, newest first,
    values and people by name. A fixed number of queries, however long."""
    merged = _one_per_change(entries)
    names = _Names()
    people = get_user_model()
    for entry in merged:
        _want_names(model, entry["changes"], names)
        if entry["who"]:
            names.want(people, entry["who"])
    names.load()
    shown = [
        ShownEntry(
            at=entry["at"],
            who=names.name(people, entry["who"]) or entry["who"],
            action=action_label(entry["action"]),
            code=entry["action"],
            reason=entry["reason"],
            changes=_changes_shown(model, entry["changes"], names),
        )
        for entry in merged
    ]
    shown.sort(key=lambda entry: entry.at, reverse=True)
    return shown
