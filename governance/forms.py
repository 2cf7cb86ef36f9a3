"""Form pieces every app's pages share: inputs that carry their help text and errors to
assistive technology, and a person named by username with suggestions as one types."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from governance.exceptions import DomainError
from governance.models import User
from governance.selectors import people, people_suggested
from governance.validators import validate_single_line


class AccessibleErrorsMixin(forms.BaseForm):
    """Ties help texts and errors to their inputs: an input with help text points at it
    (``aria-describedby="<auto_id>-help"``); an input with an error carries ``aria-invalid`` and
    points at its message too (``<auto_id>-error``). Templates render those two ids. A service's
    errors go on the form with ``add_service_errors``; other errors added after validation are
    marked by calling ``mark_errors`` again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs["aria-describedby"] = f"{self[name].auto_id}-help"

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_errors()

    def add_service_errors(self, exc: DomainError) -> None:
        """Show a refused service call on the form: each of its field errors next to its field (an
        error on a field the form does not have is form-wide), or its message form-wide."""
        for name, messages in (exc.errors or {NON_FIELD_ERRORS: [exc.detail]}).items():
            self.add_error(name if name in self.fields else None, messages)
        self.mark_errors()

    def mark_errors(self) -> None:
        for name in self.errors:
            if name not in self.fields:
                continue
            auto_id = self[name].auto_id
            attrs = self.fields[name].widget.attrs
            attrs["aria-invalid"] = "true"
            ids = [f"{auto_id}-error"] + ([f"{auto_id}-help"] if self.fields[name].help_text else [])
            attrs["aria-describedby"] = " ".join(ids)


class AccessibleForm(AccessibleErrorsMixin, forms.Form):
    """A plain form whose inputs carry their help text and errors (see ``AccessibleErrorsMixin``)."""


# The id of the one <datalist> a page with person fields renders (``people_options``).
PEOPLE_DATALIST_ID = "people-options"


class PersonSearchInput(forms.TextInput):
    """A username box with suggestions from the page's ``<datalist>``: the user's colleagues at
    first, then matches from ``inventory:people`` as they type (``inventory/people.js``).
    Without script it is a plain username box, checked on the server. Never a list of every
    account (there may be 100,000)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            {"list": PEOPLE_DATALIST_ID, "autocomplete": "off", "spellcheck": "false", "data-people-search": ""}
            | (attrs or {})
        )


class PersonField(forms.CharField):
    """A person named by username, as the API takes them; an unknown, inactive or service
    account is an error next to the field. Cleans to a ``User`` (or None when left empty)."""

    widget = PersonSearchInput
    default_error_messages = {
        "unknown": "No active person has the username “%(value)s”. Type part of their name and pick a suggestion.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 150)
        super().__init__(**kwargs)
        self.validators.append(validate_single_line)

    def prepare_value(self, value: Any) -> Any:
        return value.username if isinstance(value, User) else value

    def clean(self, value: Any) -> User | None:
        username = super().clean(value)
        if not username:
            return None
        person = people().filter(username=username).first()
        if person is None:
            raise forms.ValidationError(self.error_messages["unknown"], code="unknown", params={"value": username})
        return person


def people_options(user: Any, *named: Any) -> list[User]:
    """The first suggestions of a page's person fields: the user's colleagues, and the people
    already named (current owners), without duplicates."""
    seen: dict[int, User] = {p.pk: p for p in people_suggested(user, limit=25)}
    for person in named:
        if isinstance(person, User) and person.pk not in seen:
            seen[person.pk] = person
    return sorted(seen.values(), key=lambda p: p.username)
