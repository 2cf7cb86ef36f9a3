"""Form pieces every app's pages share: inputs that carry their help text and errors to
assistive technology."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from governance.exceptions import DomainError


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
