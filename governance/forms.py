"""Form pieces every app's pages share: inputs that carry their help text and errors to
assistive technology."""

from __future__ import annotations

from typing import Any

from django import forms


class AccessibleErrorsMixin(forms.BaseForm):
    """Ties help texts and errors to their inputs: an input with help text points at it
    (``aria-describedby="<auto_id>-help"``); an input with an error carries ``aria-invalid`` and
    points at its message too (``<auto_id>-error``). Templates render those two ids. Errors added
    after validation (a service's field errors) are marked by calling ``mark_errors`` again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs["aria-describedby"] = f"{self[name].auto_id}-help"

    def full_clean(self) -> None:
        super().full_clean()
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
