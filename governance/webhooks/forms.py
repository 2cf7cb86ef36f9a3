"""The subscription form of the webhooks page."""

from __future__ import annotations

from django import forms

from governance.forms import AccessibleForm
from governance.webhooks.events import ALIASES, EVENT_TYPES


class SubscriptionForm(AccessibleForm):
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
