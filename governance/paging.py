"""Counting what a list holds without reading every match.

An exact ``count(*)`` of a broad filter over half a million integrations (or five million
grants) reads every matching row, and costs more than the page itself. So a list counts at most
``PAGING_EXACT_COUNT_UP_TO`` matches (10,000 unless set): up to that, the count is exact; beyond
it, on PostgreSQL, the list takes the planner's estimate of the filtered query (what
``EXPLAIN`` says it will return, from the table statistics that ANALYZE keeps) and says so:
"about 12,000". A list that is not narrowed to what its reader may see (an IAM admin's or an
auditor's) asks the planner first, and an estimate far above the bound (``TRUSTED_ESTIMATE_FACTOR``
times it) is taken without counting: a broad word search checks every row it counts in the table,
which costs more than its page. SQLite keeps exact counts (it has no row estimates worth showing).

Pages of an estimated list are cut the same way as any other (offset and page size), and
whether a next page exists is read from the rows themselves (one more than a page is fetched),
never from the estimate; a page past the real end is an empty page (``EmptyPage``), which pages
answer with the real last page and the API with a 404.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connections
from django.db.models import QuerySet

# Up to this many matches a list is counted exactly (overridden by PAGING_EXACT_COUNT_UP_TO).
DEFAULT_EXACT_COUNT_UP_TO = 10_000
# A bound no list reaches: counting with it is counting exactly.
MAX_EXACT = 2**62
# How far above the bound the planner's estimate of a list not narrowed by its reader must be
# to be taken without the bounded count (the planner's estimates of word searches are within a
# few per cent at scale; a list estimated at five times the bound holds more than the bound).
TRUSTED_ESTIMATE_FACTOR = 5


def exact_count_up_to() -> int:
    return int(getattr(settings, "PAGING_EXACT_COUNT_UP_TO", DEFAULT_EXACT_COUNT_UP_TO))


@dataclass(frozen=True)
class Counted:
    """How many rows a list holds: exactly, or (``estimated``) the planner's rounded estimate."""

    value: int
    estimated: bool = False

    @property
    def label(self) -> str:
        """As a page says it: "1234" when exact, "about 12,000" when estimated."""
        return f"about {self.value:,}" if self.estimated else str(self.value)


def rounded(value: int) -> int:
    """An estimate to two significant figures (12,345 -> 12,000; 523,112 -> 520,000): its
    precision, no more."""
    if value < 100:
        return value
    scale = 10 ** (int(math.log10(value)) - 1)
    return int(round(value / scale) * scale)


def planner_rows(queryset: QuerySet[Any]) -> int:
    """How many rows PostgreSQL's planner expects ``queryset`` to return (no row is read). For a
    query without a filter this is the table's ``pg_class.reltuples``."""
    text = queryset.order_by().explain(format="json")
    if not text:
        # A filter the ORM knows matches nothing (``none()``, ``pk__in=[]``) is never sent.
        return 0
    plan = json.loads(text)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_of(object_list: Any, *, exact_up_to: int | None = None, estimate_first: bool = False) -> Counted:
    """The number of rows of ``object_list``: exact for lists, on SQLite and up to
    ``exact_up_to`` matches (one bounded count: ``count(*)`` over at most that many plus one);
    beyond that, on PostgreSQL, the planner's estimate (never less than what was counted).
    ``estimate_first``: the list is not narrowed to its reader, so an estimate far above the
    bound is taken without counting."""
    if not isinstance(object_list, QuerySet):
        return Counted(len(object_list))
    if connections[object_list.db].vendor != "postgresql":
        return Counted(object_list.count())
    limit = exact_count_up_to() if exact_up_to is None else exact_up_to
    unordered = object_list.order_by()
    if not unordered.query.combinator:
        # Only the ids: what a row shows (annotations, joined columns) is no part of a count.
        unordered = unordered.values("pk")
    if estimate_first:
        estimate = planner_rows(unordered)
        if estimate > TRUSTED_ESTIMATE_FACTOR * limit:
            return Counted(rounded(estimate), estimated=True)
    # Otherwise the bounded count comes first. The planner's estimate of a list filtered by what
    # its reader may see (an OR of subqueries) can be a share of the whole table, so it is only
    # asked once the reader's own rows are known to exceed the bound, and never goes below them.
    counted = unordered[: limit + 1].count()
    if counted <= limit:
        return Counted(counted)
    return Counted(rounded(max(planner_rows(unordered), counted)), estimated=True)


class EstimatedPage(Page):
    """A page of an estimated list: whether another page follows is known from the rows."""

    def __init__(self, object_list: Sequence[Any], number: int, paginator: Paginator, *, more: bool) -> None:
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1 if len(self.object_list) else 0


class EstimatedCountPaginator(Paginator):
    """Django's paginator, counting as ``count_of`` does. ``count_is_estimate`` and
    ``count_label`` ("about 12,000") tell pages and the API which count they show."""

    exact_up_to: int | None = None
    # The list is not narrowed to its reader: see ``count_of``.
    estimate_first = False

    def __init__(
        self, object_list: Any, per_page: int, *args: Any, estimate_first: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(object_list, per_page, *args, **kwargs)
        if estimate_first is not None:
            self.estimate_first = estimate_first

    @cached_property
    def counted(self) -> Counted:
        return count_of(self.object_list, exact_up_to=self.exact_up_to, estimate_first=self.estimate_first)

    @cached_property
    def count(self) -> int:
        return self.counted.value

    @property
    def count_is_estimate(self) -> bool:
        return self.counted.estimated

    @property
    def count_label(self) -> str:
        return self.counted.label

    def validate_number(self, number: Any) -> int:
        if not self.count_is_estimate:
            return super().validate_number(number)
        # Only the lower bound: the estimate is no upper bound (``page`` finds the real end).
        try:
            valid = int(number)
        except (TypeError, ValueError):
            return super().validate_number(number)
        if valid < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return valid

    def page(self, number: Any) -> Page:
        if not self.count_is_estimate:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        return EstimatedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)

    def get_page(self, number: Any) -> Page:
        """As Django's: a bad number is page one, one past the end the last page. Past the end
        of an estimated list, the real last page needs the real count: counted then, once."""
        try:
            return super().get_page(number)
        except EmptyPage:
            self.__dict__["counted"] = count_of(self.object_list, exact_up_to=MAX_EXACT)
            for stale in ("count", "num_pages"):
                self.__dict__.pop(stale, None)
            return super().get_page(number)


class EstimateFirstPaginator(EstimatedCountPaginator):
    """For a list not narrowed to its reader (an API list read by an IAM admin or auditor)."""

    estimate_first = True
