"""Input serializers that take JSON as the schema describes it, and nothing looser.

DRF is generous with input: a ``CharField`` takes the number ``0`` (and stores ``"0"``), a
``BooleanField`` takes ``"yes"`` and ``1``, an ``IntegerField`` takes ``"7"`` and ``7.0``, a
primary key takes ``"7"``, a ``DateTimeField`` takes ``"2000-01-01"`` and
``"2000-01-01 10:00"``. The published schema says "string", "boolean", "integer", "date-time",
so a client that sends those values breaks the contract without knowing, and the fuzzer reports
every one of them. ``StrictInputMixin`` checks the JSON type of every field first (and the
RFC 3339 form of date-times, and the 64-bit range of unbounded integers) and answers a 400 that
names the field; only then does DRF's own validation run.

The regular expressions here are also what ``governance.api.schema`` publishes, so what the
schema says and what the API accepts cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from governance.validators import INT64_MAX, INT64_MIN

# RFC 3339 date-time as DRF can take it: upper-case T and Z, seconds 00-59 (no leap second),
# years 0002-9998 (a time-zone offset on year 1 or 9999 leaves Python's datetime range).
DATETIME_PATTERN = (
    r"^(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DATETIME = re.compile(DATETIME_PATTERN)


def char_class(*ranges: tuple[int, int]) -> str:
    """The inside of a regex character class (ECMA and Python alike) from code point ranges. Every
    member is written as a ``\\uXXXX-\\uYYYY`` range, even a single character: schemathesis 4.32
    cannot draw from a class that mixes a lone non-ASCII escape with other members."""
    return "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in ranges)


# What DRF's CharField strips from both ends before any check: Python's str.isspace().
SPACE_RANGES = (
    (0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
SPACE_CLASS = char_class(*SPACE_RANGES)


def trimmed_pattern(core: str, *, blank: bool) -> str:
    """A pattern for what a CharField with a RegexValidator(``^core$``) takes as sent: DRF strips
    the ends before validating, and a blank-allowed field takes whitespace alone (not "" itself:
    drf-spectacular adds the empty string as a oneOf branch of its own)."""
    if blank:
        return f"^(?:[{SPACE_CLASS}]+|[{SPACE_CLASS}]*{core}[{SPACE_CLASS}]*)$"
    return f"^[{SPACE_CLASS}]*{core}[{SPACE_CLASS}]*$"


def _expect(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` is not of the JSON type ``field`` takes (None when it is, or not checked)."""
    if isinstance(field, serializers.ManyRelatedField | serializers.ListField):
        return None if isinstance(value, list) else "Expected a list."
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        if isinstance(value, bool) or not isinstance(value, int):
            return "Expected an integer id."
        return None if INT64_MIN <= value <= INT64_MAX else "Not a valid id."
    if isinstance(field, serializers.SlugRelatedField):
        return None if isinstance(value, str) else "Expected a string."
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Expected true or false."
    if isinstance(field, serializers.IntegerField):
        if isinstance(value, bool) or not isinstance(value, int):
            return "Expected an integer."
        return None if INT64_MIN <= value <= INT64_MAX else "Out of the 64-bit integer range."
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "Expected a number."
    if isinstance(field, serializers.DateTimeField):
        if not isinstance(value, str):
            return "Expected a date-time string."
        return None if _DATETIME.match(value) else "Use an RFC 3339 date-time, e.g. 2030-01-31T09:00:00Z."
    if isinstance(field, serializers.DateField | serializers.TimeField | serializers.DurationField):
        return None if isinstance(value, str) else "Expected a string."
    if isinstance(field, serializers.ChoiceField):
        if all(isinstance(key, str) for key in field.choices):
            return None if isinstance(value, str) else "Expected a string."
        return None
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "Expected a string."
    return None


def json_type_errors(serializer: serializers.Serializer[Any], data: Any) -> dict[str, Any]:
    """The type errors of ``data`` against ``serializer``'s writable fields, nested like DRF's
    own errors (``{"credentials": {"0": {"type": [...]}}}``); empty when every value fits."""
    if not isinstance(data, Mapping):
        return {}  # DRF answers a non-object body itself
    errors: dict[str, Any] = {}
    for name, field in serializer.fields.items():
        if field.read_only or name not in data:
            continue
        found = _field_errors(field, data[name])
        if found:
            errors[name] = found
    return errors


def _field_errors(field: Any, value: Any) -> Any:
    if value is None:
        return None  # DRF decides: allowed when the field says allow_null, else "may not be null"
    if isinstance(field, serializers.ListSerializer):
        if not isinstance(value, list):
            return ["Expected a list."]
        return _item_errors(field.child, value)
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, Mapping):
            return ["Expected an object."]
        return json_type_errors(field, value) or None
    problem = _expect(field, value)
    if problem:
        return [problem]
    if isinstance(field, serializers.ListField):
        return _item_errors(field.child, value)
    if isinstance(field, serializers.ManyRelatedField):
        return _item_errors(field.child_relation, value)
    return None


def _item_errors(child: Any, items: list[Any]) -> Any:
    errors = {str(index): found for index, item in enumerate(items) if (found := _field_errors(child, item))}
    return errors or None


if TYPE_CHECKING:
    # What the mixin is mixed into, so that the type checker knows the methods it extends.
    _SerializerBase = serializers.Serializer[Any]
else:
    _SerializerBase = object


class StrictInputMixin(_SerializerBase):
    """First base of an input serializer: JSON types (and date-time forms) are checked before
    DRF's validation, and a mismatch is a 400 naming the field."""

    def to_internal_value(self, data: Any) -> Any:
        errors = json_type_errors(self, data)
        if errors:
            raise serializers.ValidationError(errors, code="invalid")
        missing = _nul_lookups(self, data)
        if missing:
            raise serializers.ValidationError(missing, code="does_not_exist")
        return super().to_internal_value(data)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _nul_lookups(serializer: serializers.Serializer[Any], data: Any) -> dict[str, list[str]]:
    """The related fields (usernames, scope codes, ids) whose value holds a NUL character: no
    such object exists, and PostgreSQL refuses NUL in a query's text, so they are answered as
    "does not exist" (a 422) before any lookup."""
    if not isinstance(data, dict):
        return {}
    related = (serializers.RelatedField, serializers.ManyRelatedField)
    return {
        name: [f"No object named {data[name]!r} exists."]
        for name, field in serializer.fields.items()
        if isinstance(field, related) and not field.read_only and name in data and _has_nul(data[name])
    }
