"""``?ordering=`` that refuses what it cannot sort by.

DRF's ``OrderingFilter`` drops unknown or misspelt fields without a word (``?ordering=nmae``
sorts by the default), so a client never learns its mistake and the schema can only say
"a string". Here every term must be one of the view's ``ordering_fields``, optionally prefixed
with ``-``, separated by commas — anything else is a 400 naming the parameter — and the schema
publishes exactly that as a pattern.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request


def _declared_fields(view: Any) -> list[str] | None:
    fields = getattr(view, "ordering_fields", None)
    if not isinstance(fields, (list, tuple)):
        return None
    return [item if isinstance(item, str) else item[0] for item in fields]


def ordering_pattern(fields: list[str]) -> str:
    """The regular expression (ECMA and Python alike) of a valid ``ordering`` value."""
    term = "-?(?:" + "|".join(re.escape(f) for f in sorted(fields, key=lambda f: (-len(f), f))) + ")"
    return f"^{term}(?:,{term})*$"


class StrictOrderingFilter(OrderingFilter):
    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param, "")
        if raw == "":
            return self.get_default_ordering(view)
        valid = {item[0] for item in self.get_valid_fields(queryset, view, {"request": request})}
        terms = raw.split(",")
        unknown = [term for term in terms if term.removeprefix("-") not in valid]
        if unknown:
            choices = ", ".join(sorted(valid))
            raise ValidationError(
                {self.ordering_param: [f"Cannot sort by {unknown[0]!r}: use {choices} (prefix - to reverse)."]}
            )
        return terms

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        fields = _declared_fields(view)
        if not fields:
            return super().get_schema_operation_parameters(view)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by {', '.join(fields)}; prefix - to reverse, separate several with commas.",
                "schema": {"type": "string", "pattern": ordering_pattern(fields)},
            }
        ]
