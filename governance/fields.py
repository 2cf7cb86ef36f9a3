"""Form fields every app's pages share.

``ModelChoiceField`` and ``ModelMultipleChoiceField`` look each submitted id up in the database
and turn ``ValueError``/``TypeError`` into "not a valid choice" — but not ``OverflowError``,
which SQLite raises for an integer beyond 64 bits ("Python int too large to convert to SQLite
INTEGER"), so a posted ``99999999999999999999`` was a 500. These refuse such an id as an
unknown choice before it reaches the database (PostgreSQL answers the same ids with nothing).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from governance.validators import INT64_MAX, INT64_MIN


def _out_of_range(value: Any) -> bool:
    try:
        number = int(str(value).strip())
    except ValueError:
        return False  # not an integer at all: Django reports it as it always did
    return not INT64_MIN <= number <= INT64_MAX


class IdChoiceField(forms.ModelChoiceField):
    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and self.to_field_name is None and _out_of_range(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    def clean(self, value: Any) -> Any:
        if self.to_field_name is None and isinstance(value, list | tuple):
            for pk in value:
                if _out_of_range(pk):
                    raise ValidationError(
                        self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                    )
        return super().clean(value)
