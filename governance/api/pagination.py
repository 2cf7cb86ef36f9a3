"""Page-number pagination whose parameters mean what the schema says they mean.

DRF's own quietly replaces a ``page_size`` it cannot read (``abc``, ``0``, ``100000``) with the
default or the maximum, and answers a ``page`` that is not a number with a 404 as if the page
were merely past the end. Here a malformed value is a 400 naming the parameter, an empty one
counts as absent (as for every query parameter: ``allowEmptyValue``), and only a well-formed page
past the last one is a 404.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


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

    def get_page_size(self, request: Request) -> int:
        size = _whole_number(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        number = _whole_number(request, self.page_query_param, minimum=1, maximum=self.max_page)
        return 1 if number is None else number

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
