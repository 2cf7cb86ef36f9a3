"""Input rules every app shares: a single-line value (a name, an identifier, a ticket reference,
a tag) holds no control character. A newline in a name is not cosmetic: the name ends up in
email subjects, where Django refuses it (``BadHeaderError``) and the notification is never sent;
in CSV exports and log lines it forges rows. Services check their single-line fields with
``single_line_errors`` (whoever calls); forms and serializers may add ``validate_single_line`` to
a field so the error shows next to it before the service is reached.

``header_safe`` is the other half: whatever is already stored, a value put in a mail header is
made single-line and bounded, so one bad row can never block notifications.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError

# The range of a database id (a 64-bit signed integer): a number outside it is no id, and is
# refused as such before it reaches the database (SQLite raises OverflowError for it).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

SINGLE_LINE_MESSAGE = "Use a single line: no line breaks, tabs or other control characters."

# Unicode "Cc" (C0 and C1 controls, incl. CR, LF, TAB, NEL) and the line/paragraph separators
# (U+2028, U+2029), which some mail and log readers treat as line breaks.
_SEPARATORS = {"\u2028", "\u2029"}


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" or ch in _SEPARATORS for ch in value)


def validate_single_line(value: Any) -> None:
    """A Django/DRF validator: refuses control characters in a single-line field."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(SINGLE_LINE_MESSAGE, code="control_characters")


def single_line_errors(values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, list[str]]:
    """``{field: [message]}`` for each of ``fields`` present in ``values`` whose value (a string,
    or a list of strings such as tags) holds a control character."""
    errors: dict[str, list[str]] = {}
    for field in fields:
        value = values.get(field)
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, str) and has_control_characters(item) for item in items):
            errors[field] = [SINGLE_LINE_MESSAGE]
    return errors


_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def header_safe(value: str, *, max_length: int = 200) -> str:
    """``value`` as a mail header can carry it: every run of control characters (CR, LF, TAB…)
    becomes one space, spaces are collapsed, and it is cut to ``max_length`` characters with an
    ellipsis. Used by the outbox for subjects, at enqueue and again at delivery."""
    text = _SPACES.sub(" ", _CONTROL_RUN.sub(" ", value or "")).strip()
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text
