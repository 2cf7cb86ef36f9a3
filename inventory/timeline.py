"""An integration's timeline: its simple-history rows as diffs, the audit events about it and
those of the discovery findings linked to it, newest first, read a page at a time.

A page is cut on time, never by offset: each of the three sources is read past a position
(``at``, then a rank saying which source comes first at equal times, then the row's id, so rows
recorded at the same instant are neither skipped nor repeated), newest first, at most one row
more than the page; the rows are merged and the page keeps the newest. A source's rows left out
of its read are all older than the ones it returned, so none of them belongs in the page. A
page costs the same few queries however long the timeline is, and the indexes on
(integration, time, id) make each read a short range of an index.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from governance.models import AuditEvent
from inventory.discovery.models import Finding
from inventory.models import Integration, Scope

# At equal times a history row comes before an audit event (newest first), as the page shows a
# change before the event that explains it.
HISTORY_RANK = 1
AUDIT_RANK = 0
_RANK_CODES = {HISTORY_RANK: "h", AUDIT_RANK: "a"}
_CODE_RANKS = {code: rank for rank, code in _RANK_CODES.items()}
# Ids are database keys (64-bit): a larger one cannot be a row, so the cursor is refused rather
# than sent to the database.
_MAX_ID_DIGITS = 19
_MAX_ID = 2**63 - 1
_CURSOR_VERSION = "1"


@dataclass(frozen=True, order=True)
class Position:
    """Where one row sits in the timeline; a larger position is newer."""

    at: datetime
    rank: int
    row_id: int


class MalformedCursor(ValueError):
    """A cursor this module did not write (or one edited since)."""


@dataclass(frozen=True)
class Cursor:
    """A page boundary: the rows older than ``position`` or, ``newer``, those newer than it."""

    position: Position
    newer: bool = False

    def encode(self) -> str:
        text = "|".join(
            [
                _CURSOR_VERSION,
                "n" if self.newer else "o",
                self.position.at.isoformat(),
                _RANK_CODES[self.position.rank],
                str(self.position.row_id),
            ]
        )
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor ``token`` names; ``MalformedCursor`` for anything ``encode`` did not write."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            version, direction, at_text, rank_code, id_text = text.split("|")
            written = datetime.fromisoformat(at_text)
            # In UTC, as the database compares it (a time near the calendar's ends cannot be).
            at = written.astimezone(UTC)
        except (binascii.Error, UnicodeError, ValueError, OverflowError) as exc:
            raise MalformedCursor(token) from exc
        well_formed = (
            token.isascii()
            and version == _CURSOR_VERSION
            and direction in ("n", "o")
            and written.tzinfo is not None
            and rank_code in _CODE_RANKS
            and id_text.isascii()
            and id_text.isdigit()
            and len(id_text) <= _MAX_ID_DIGITS
            and int(id_text) <= _MAX_ID
        )
        if not well_formed:
            raise MalformedCursor(token)
        return cls(Position(at, _CODE_RANKS[rank_code], int(id_text)), newer=direction == "n")


@dataclass(frozen=True)
class TimelinePage:
    """Entries newest first (dicts: ``at``, ``who``, ``source``, ``action``, ``reason``,
    ``changes``), and the cursors of the older and newer pages (None: there is none)."""

    entries: list[dict[str, Any]]
    older: Cursor | None
    newer: Cursor | None


@dataclass(frozen=True)
class _Item:
    position: Position
    entry: dict[str, Any] | None  # None: a save that changed nothing the timeline shows


def integration_timeline(integration: Integration) -> list[dict[str, Any]]:
    """Every recorded change of ``integration``, newest first: the simple-history rows as diffs
    (who, when, which field from what to what), the audit events about it (submissions,
    suspensions, transfers, grants ended with it) and those of the discovery findings linked to
    it (claimed for it, drift and stale findings about it). A fixed number of queries, however
    long; pages of it: ``timeline_page``."""
    items = _history_items(integration, None, newer=False, limit=None)
    items += _audit_items(_integration_events(integration), None, newer=False, limit=None, finding=False)
    items += _audit_items(_finding_events(integration), None, newer=False, limit=None, finding=True)
    items.sort(key=lambda item: item.position, reverse=True)
    return [item.entry for item in items if item.entry is not None]


def timeline_page(integration: Integration, *, size: int, cursor: Cursor | None = None) -> TimelinePage:
    """At most ``size`` entries of ``integration``'s timeline, newest first: the newest ones,
    those older than ``cursor`` or, for a ``newer`` cursor, those just newer than it. A page
    may hold fewer than ``size`` entries while older ones remain (a save that changed nothing
    shown takes a place without an entry): follow ``older`` until it is None. Six queries
    (seven for a ``newer`` cursor), however long the timeline."""
    newer = cursor is not None and cursor.newer
    position = cursor.position if cursor else None
    items = _history_items(integration, position, newer=newer, limit=size + 1)
    events = _integration_events(integration)
    items += _audit_items(events, position, newer=newer, limit=size + 1, finding=False)
    items += _audit_items(_finding_events(integration), position, newer=newer, limit=size + 1, finding=True)
    # Nearest to the cursor first: the page is the first ``size`` of them.
    items.sort(key=lambda item: item.position, reverse=not newer)
    more = len(items) > size
    page = items[:size]
    if newer:
        page.reverse()
    entries = [item.entry for item in page if item.entry is not None]
    if not page:
        # Past either end: the way back starts where this read did.
        return TimelinePage(
            entries,
            older=Cursor(position) if newer and position else None,
            newer=Cursor(position, newer=True) if position and not newer else None,
        )
    newest, oldest = page[0].position, page[-1].position
    if newer:
        return TimelinePage(entries, older=Cursor(oldest), newer=Cursor(newest, newer=True) if more else None)
    return TimelinePage(entries, older=Cursor(oldest) if more else None, newer=Cursor(newest, True) if cursor else None)


def _beyond(
    position: Position | None, rank: int, at_field: str, id_field: str, *, newer: bool, same: bool = False
) -> Q:
    """The rows of a source of ``rank`` past ``position``: older (or ``newer``) than it, and
    the row at it too when ``same``. Written as a range on time plus a filter, so the database
    reads one range of the (owner, time, id) index."""
    if position is None:
        return Q()
    sign = "gt" if newer else "lt"
    if rank == position.rank:
        id_past = Q(**{f"{id_field}__{sign}e" if same else f"{id_field}__{sign}": position.row_id})
        return Q(**{f"{at_field}__{sign}e": position.at}) & (Q(**{f"{at_field}__{sign}": position.at}) | id_past)
    # A source ranked below the position's comes after it at the same time (newest first).
    comes_after = rank < position.rank
    inclusive = comes_after != newer
    return Q(**{f"{at_field}__{sign}e" if inclusive else f"{at_field}__{sign}": position.at})


def _ordered(
    rows: QuerySet[Any], at_field: str, id_field: str, *, newer: bool, sorted_after: bool = False
) -> QuerySet[Any]:
    """``rows`` nearest to the position first. ``sorted_after``: ordered by an expression rather
    than the column, so the database finds the rows by their owners' index and sorts those few,
    instead of walking the whole table's time index until it meets enough of them (what SQLite
    chooses for rows of several owners)."""
    at: Any = Coalesce(at_field, at_field) if sorted_after else F(at_field)
    if newer:
        return rows.order_by(at.asc(), id_field)
    return rows.order_by(at.desc(), f"-{id_field}")


# --- simple-history rows ------------------------------------------------------------------------

# Fields a history row's diff leaves out: the risk factors are explained on the page, and the
# related sets are compared from their own history tables.
_DIFF_EXCLUDED = ["risk_factors", "requested_scopes", "invokes"]
_HISTORY_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def _history_items(
    integration: Integration, position: Position | None, *, newer: bool, limit: int | None
) -> list[_Item]:
    """The history rows past ``position``, each diffed against the row before it. Reading older
    rows fetches one more than ``limit``: the predecessor of the oldest; reading newer ones, the
    predecessor of the oldest is the newest row at or before ``position`` (one more query)."""
    history = integration.history.select_related("history_user")
    past = history.filter(_beyond(position, HISTORY_RANK, "history_date", "history_id", newer=newer))
    rows = _ordered(past, "history_date", "history_id", newer=newer)
    if newer:
        fetched = list(rows[:limit]) if limit is not None else list(rows)
        before = history.filter(
            _beyond(position, HISTORY_RANK, "history_date", "history_id", newer=False, same=True)
        ).order_by("-history_date", "-history_id")[:1]
        oldest_first = [*before, *fetched]
        shown = fetched
    else:
        fetched = list(rows[: limit + 1]) if limit is not None else list(rows)
        oldest_first = fetched[::-1]
        shown = fetched[:limit] if limit is not None else fetched
    sets_at = _related_sets_at(history.model, [record.history_id for record in oldest_first])
    previous_of = {
        record.history_id: previous for previous, record in zip([None, *oldest_first], oldest_first, strict=False)
    }
    return [
        _Item(
            Position(record.history_date, HISTORY_RANK, record.history_id),
            _history_entry(record, previous_of[record.history_id], sets_at),
        )
        for record in shown
    ]


def _history_entry(record: Any, previous: Any, sets_at: dict[str, dict[int, list[Any]]]) -> dict[str, Any] | None:
    changes = _record_changes(record, previous, sets_at)
    if not changes:
        return None
    return {
        "at": record.history_date,
        "who": record.history_user.username if record.history_user else "",
        "source": "history",
        "action": _HISTORY_ACTIONS[record.history_type],
        "reason": record.history_change_reason or "",
        "changes": changes,
    }


def _related_sets_at(historical: Any, record_ids: list[int]) -> dict[str, dict[int, list[Any]]]:
    """The requested scopes (by code) and invoked integrations (by id) at each history record,
    read in one query per relation for all of them (``diff_against`` would run two per relation
    per record)."""
    scope_rows = historical._meta.get_field("historicalintegration_requested_scopes").related_model
    invoke_rows = historical._meta.get_field("historicalintegration_invokes").related_model
    scope_pairs = list(scope_rows.objects.filter(history_id__in=record_ids).values_list("history_id", "scope_id"))
    codes = dict(Scope.objects.filter(pk__in={pk for _, pk in scope_pairs}).values_list("pk", "code"))
    scopes_at: dict[int, list[Any]] = {pk: [] for pk in record_ids}
    for history_id, scope_id in scope_pairs:
        scopes_at[history_id].append(codes.get(scope_id, str(scope_id)))  # a scope since deleted: its id
    invokes_at: dict[int, list[Any]] = {pk: [] for pk in record_ids}
    for history_id, target in invoke_rows.objects.filter(history_id__in=record_ids).values_list(
        "history_id", "to_integration_id"
    ):
        invokes_at[history_id].append(target)
    return {"requested_scopes": scopes_at, "invokes": invokes_at}


def _record_changes(record: Any, previous: Any, sets_at: dict[str, dict[int, list[Any]]]) -> list[dict[str, Any]]:
    """What ``record`` changed since ``previous`` (the first record: the creation)."""
    if previous is None:
        return [{"field": "created", "old": None, "new": record.name}]
    delta = record.diff_against(previous, excluded_fields=_DIFF_EXCLUDED)
    changes = [
        {"field": change.field, "old": change.old, "new": change.new}
        for change in delta.changes
        if change.old != change.new
    ]
    for field, at in sets_at.items():
        old, new = sorted(at[previous.history_id]), sorted(at[record.history_id])
        if old != new:
            changes.append({"field": field, "old": old, "new": new})
    return changes


# --- Audit events -------------------------------------------------------------------------------

# Audit events of discovery findings name them by this target type.
FINDING_TARGET_TYPE = f"{Finding._meta.app_label}.{Finding._meta.model_name}"
INTEGRATION_TARGET_TYPE = f"{Integration._meta.app_label}.{Integration._meta.model_name}"


def linked_findings(integration: Integration) -> QuerySet[Finding]:
    """The discovery findings about ``integration``: those naming it (claimed for it, a drift or
    a stale external app id) and those of the discovered apps matched to it."""
    return Finding.objects.filter(Q(integration=integration) | Q(app__integration=integration))


def _integration_events(integration: Integration) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(target_type=INTEGRATION_TARGET_TYPE, target_id=str(integration.pk))


def _finding_events(integration: Integration) -> QuerySet[AuditEvent]:
    """The events of the findings linked to ``integration``, named by their ids read first (one
    query, each side of ``linked_findings`` on its own index): given a subquery instead, the
    database walks every event by time looking for them."""
    naming = Finding.objects.filter(integration=integration).order_by().values_list("pk", flat=True)
    of_apps = Finding.objects.filter(app__integration=integration).order_by().values_list("pk", flat=True)
    finding_ids = [str(pk) for pk in naming.union(of_apps)]
    return AuditEvent.objects.filter(target_type=FINDING_TARGET_TYPE, target_id__in=finding_ids)


def _audit_items(
    events: QuerySet[AuditEvent], position: Position | None, *, newer: bool, limit: int | None, finding: bool
) -> list[_Item]:
    """The events past ``position`` (one query); a finding's event says which finding first."""
    past = events.filter(_beyond(position, AUDIT_RANK, "created_at", "id", newer=newer))
    rows = _ordered(past, "created_at", "id", newer=newer, sorted_after=finding)
    if limit is not None:
        rows = rows[:limit]
    return [_Item(Position(event.created_at, AUDIT_RANK, event.pk), _audit_entry(event, finding)) for event in rows]


def _audit_entry(event: AuditEvent, finding: bool) -> dict[str, Any]:
    changes = _event_changes(event.before or {}, event.after or {})
    if finding:
        named = {"field": "finding", "old": None, "new": f"{event.target_repr} (#{event.target_id})", "initial": True}
        changes = [named, *changes]
    return {
        "at": event.created_at,
        "who": event.actor_username,
        "source": "audit",
        "action": event.action,
        "reason": event.reason,
        "changes": changes,
    }


def _event_changes(before: Any, after: Any) -> list[dict[str, Any]]:
    """An audit event's before/after as field changes, leaving out fields empty on both sides."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return []
    keys = dict.fromkeys([*before.keys(), *after.keys()])
    return [
        {"field": key, "old": before.get(key), "new": after.get(key)}
        for key in keys
        if before.get(key) not in (None, "", []) or after.get(key) not in (None, "", [])
    ]
