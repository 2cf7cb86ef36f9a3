"""The API's JSON parser: DRF's, plus a bound on nesting. Python's decoder raises
``RecursionError`` (not ``ValueError``) on deeply nested input, which DRF does not catch, so
``[[[[…]]]]`` a thousand levels deep ended in a 500; and a document that parses just under the
interpreter's limit can still exhaust it later (validation, error rendering). No request of
this API nests deeper than a few levels, so anything beyond ``MAX_DEPTH`` is a 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def _too_deep(document: Any, limit: int) -> bool:
    """Whether ``document`` nests lists/objects deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        if _too_deep(document, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        return document
