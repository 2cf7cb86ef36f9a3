"""Page-number pagination whose parameters mean what the schema says they mean.

DRF's own quietly replaces a ``page_size`` it cannot read (``abc``, ``0``, ``100000``) with the
default or the maximum, and answers a ``page`` that is not a number with a 404 as if the page
were merely past the end. Here a malformed value is a 400 naming the parameter, an empty one
counts as absent (as for every query parameter: ``allowEmptyValue``), and only a well-formed page
past the last one is a 404.

Counts follow ``governance.paging``: exact up to ``PAGING_EXACT_COUNT_UP_TO`` matches, beyond
that (on PostgreSQL) the planner's estimate, rounded, with ``count_is_estimate: true`` beside
``count``; ``next`` is read from the rows, never from the estimate.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from governance.paging import EstimatedCountPaginator


def _whole_number(request: Request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    """The parameter as an int within the bounds, None when absent or empty, else a 400."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
    # ASCII digits only: int() would also take " 7", "+7", "7_0" and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise ValidationError({name: [f"A whole number, {bounds}."]})
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationError({name: [f"A whole number, {bounds}."]})
    return value


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # Largest page number the schema admits (the database's id range is far beyond any page).
    max_page = 2**31 - 1
    # A list not narrowed to its reader sets EstimateFirstPaginator (see governance.paging.count_of).
    django_paginator_class: type[EstimatedCountPaginator] = EstimatedCountPaginator

    def get_page_size(self, request: Request) -> int:
        size = _whole_number(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        number = _whole_number(request, self.page_query_param, minimum=1, maximum=self.max_page)
        return 1 if number is None else number

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None  # set by paginate_queryset, which every list calls first
        paginator = self.page.paginator
        return Response(
            {
                "count": paginator.count,
                "count_is_estimate": getattr(paginator, "count_is_estimate", False),
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        described = super().get_paginated_response_schema(schema)
        properties = described["properties"]
        properties["count"]["description"] = (
            "How many results the list holds: exact up to 10,000 matches (by default); beyond that the "
            "database's estimate, rounded to two significant figures, and count_is_estimate is true."
        )
        properties["count"]["minimum"] = 0
        estimate = {
            "type": "boolean",
            "example": False,
            "description": "true when count is an estimate (a broad list over a large table); follow next, "
            "never count, to reach the end.",
        }
        # Beside count, in the order the answer has them.
        described["properties"] = {"count": properties.pop("count"), "count_is_estimate": estimate, **properties}
        described["required"] = [*described.get("required", []), "count_is_estimate"]
        return described

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1 (a page past the last one is a 404).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}, at most {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
