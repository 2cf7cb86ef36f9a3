from __future__ import annotations

from django import forms

from governance.webhooks.events import ALIASES, EVENT_TYPES


class SubscriptionForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What receives these events, e.g. ServiceNow production.")
    target_url = forms.URLField(
        label="Target URL",
        max_length=500,
        assume_scheme="https",
        help_text="The receiver's https:// address (a public host).",
    )
    event_types = forms.CharField(
        label="Event types",
        help_text="One pattern per line or comma-separated: integration.*, access_request.decided, grant.revoked, or *. "
        f"Known: {', '.join([*EVENT_TYPES, *ALIASES])}.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def patterns(self) -> list[str]:
        raw = self.cleaned_data["event_types"].replace(",", "\n")
        return [p.strip() for p in raw.splitlines() if p.strip()]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name, field in self.fields.items():
            field.widget.attrs["aria-describedby"] = f"id_{name}-help"

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_invalid()

    def mark_invalid(self) -> None:
        """Tie each error to its input (aria-invalid, aria-describedby), also for errors added later."""
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = f"id_{name}-help id_{name}-error"
