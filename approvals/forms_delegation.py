"""The forms of delegation and reassignment: who stands in for whom and when, and to whom an IAM
admin hands a step. People are typed by username with suggestions limited to those eligible
(the page's ``<datalist>``); the services check eligibility again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from governance.forms import AccessibleForm
from governance.models import User

DATETIME_INPUT = "%Y-%m-%dT%H:%M"
COLLEAGUE_DATALIST_ID = "colleague-options"


class ColleagueField(forms.CharField):
    """A username among ``people`` (the eligible colleagues): cleans to that ``User``."""

    def __init__(self, *, people: QuerySet[User], **kwargs: Any) -> None:
        self.people = people
        kwargs.setdefault("max_length", 150)
        attrs = {"list": COLLEAGUE_DATALIST_ID, "autocomplete": "off", "spellcheck": "false"}
        super().__init__(widget=forms.TextInput(attrs=attrs), **kwargs)

    def clean(self, value: Any) -> User | None:
        username = (super().clean(value) or "").strip()
        if not username:
            return None
        person = self.people.filter(username=username).first()
        if person is None:
            raise forms.ValidationError(
                f"“{username}” is not an eligible colleague: pick one of the suggestions (same reviewer pool).",
                code="not_eligible",
            )
        return person


def _datetime_field(label: str, help_text: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        help_text=help_text,
        input_formats=[DATETIME_INPUT],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT),
    )


class DelegationForm(AccessibleForm):
    """A new delegation. IAM admins also name the person who is away (``delegator``)."""

    delegator = forms.CharField(
        label="Who is away",
        required=False,
        max_length=150,
        help_text="Their username; leave empty for yourself.",
    )
    delegate = forms.CharField(label="Colleague who stands in")
    starts_at = _datetime_field("From", "When your colleague starts deciding for you.")
    ends_at = _datetime_field("Until", "At most 90 days later; everything returns to you then.")
    covers_approvals = forms.BooleanField(label="Approval steps", required=False, initial=True)
    covers_reviews = forms.BooleanField(label="Recertification review items", required=False, initial=True)
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=300,
        help_text="Optional, e.g. “Annual leave”. Your colleague reads it.",
    )

    def __init__(self, *args: Any, colleagues: QuerySet[User], for_others: bool, **kwargs: Any) -> None:
        now = timezone.localtime().replace(second=0, microsecond=0)
        kwargs.setdefault("initial", {"starts_at": now, "ends_at": now + timedelta(days=7)})
        super().__init__(*args, **kwargs)
        self.fields["delegate"] = ColleagueField(
            people=colleagues,
            label="Colleague who stands in",
            help_text="Type a name: only colleagues of your reviewer pool are offered.",
        )
        self.fields["delegate"].widget.attrs["aria-describedby"] = f"{self['delegate'].auto_id}-help"
        if not for_others:
            del self.fields["delegator"]


class PersonChoiceField(forms.ModelChoiceField):
    """A choice of people, each shown with their username."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label} ({obj.username})"


class ReassignForm(AccessibleForm):
    """Hand one open assignment to another eligible reviewer."""

    reason = forms.CharField(
        label="Reason",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: the audit trail and the new reviewer read it.",
    )

    def __init__(self, *args: Any, candidates: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = PersonChoiceField(
            queryset=candidates,
            label="New reviewer",
            to_field_name="username",
            help_text="Reviewers of the step's pool who may decide it (not its requester, owners or people on it).",
        )
        field.widget.attrs["aria-describedby"] = "id_to_user-help"
        # The reviewer comes first on the page, then the reason.
        self.fields = {"to_user": field, **self.fields}
