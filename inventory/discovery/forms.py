"""Forms of the discovery pages. They parse and show input; the services validate the rules again
(whoever calls) and their field errors are put back next to the field, input kept."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from governance.choices import Level
from governance.fields import IdChoiceField, IdMultipleChoiceField
from governance.forms import AccessibleForm, PersonField
from governance.validators import validate_single_line
from inventory.choices import DataClassification, Environment, IntegrationKind
from inventory.discovery.choices import FindingKind, FindingStatus, Source
from inventory.discovery.selectors import (
    DEFAULT_ORDERING,
    FINDING_ORDERINGS,
    STATUS_ACTIVE,
    STATUS_ALL,
    STATUS_CLOSED,
    FindingFilters,
)
from inventory.forms import scope_groups
from inventory.models import Integration, Scope

_ANY = [("", "Any")]
# The registration's text fields are as long as the integration keeps them (the registration
# service does not check lengths: a longer name would fail in the database, not beside the field).
_NAME_MAX = Integration._meta.get_field("name").max_length
_VENDOR_MAX = Integration._meta.get_field("vendor").max_length
# How long a reason or comment may be: a few sentences, as the other pages take them.
REASON_MAX_LENGTH = 2000


class FindingFilterForm(AccessibleForm):
    """The work list's filters (a GET form). A value that does not parse is shown as an error
    beside its field and ignored; the other filters still apply."""

    q = forms.CharField(
        label="Text", required=False, max_length=200, help_text="Part of the name, app key or publisher."
    )
    source = forms.ChoiceField(label="Source", required=False, choices=_ANY + list(Source.choices))
    kind = forms.ChoiceField(label="Finding", required=False, choices=_ANY + list(FindingKind.choices))
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[
            (STATUS_ACTIVE, "Needs a decision"),
            (STATUS_CLOSED, "Decided or closed"),
            (STATUS_ALL, "Any status"),
            *FindingStatus.choices,
        ],
    )
    risk_tier = forms.ChoiceField(label="Risk", required=False, choices=_ANY + list(Level.choices))
    people_min = forms.IntegerField(label="People affected, at least", required=False, min_value=0, max_value=10**9)
    person = forms.CharField(
        label="Consented by", required=False, max_length=320, help_text="A username, an email or the provider's id."
    )
    ordering = forms.ChoiceField(
        required=False, choices=[(key, key) for key in FINDING_ORDERINGS], widget=forms.HiddenInput
    )

    def filters(self) -> FindingFilters:
        """The valid filters (an invalid one is left out), active findings by default."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        return FindingFilters(
            source=data.get("source") or "",
            kind=data.get("kind") or "",
            status=data.get("status") or STATUS_ACTIVE,
            risk_tier=data.get("risk_tier") or "",
            people_min=data.get("people_min"),
            person=(data.get("person") or "").strip(),
            text=(data.get("q") or "").strip(),
            ordering=data.get("ordering") or DEFAULT_ORDERING,
        )


def _upload_help() -> str:
    limit = filesizeformat(settings.DISCOVERY_UPLOAD_MAX_BYTES)
    return (
        "The provider's JSON as its API returns it: one page, several pages one after the other, or "
        f"JSON lines. At most {limit}."
    )


class UploadForm(AccessibleForm):
    """An upload of one source's export. The importer checks the size and, in the background,
    every record."""

    source = forms.ChoiceField(label="Source", choices=Source.choices)
    tenant = forms.CharField(
        label="Tenant",
        required=False,
        max_length=200,
        validators=[validate_single_line],
        help_text="The Google customer, Entra tenant id, Slack enterprise, GitHub organisation or Okta org.",
    )
    complete = forms.BooleanField(
        label="This is everything the source lists",
        required=False,
        initial=True,
        help_text="Then what the file does not mention is marked gone. Untick for a partial export.",
    )
    file = forms.FileField(label="Export file", help_text="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _upload_help()
        self.fields["file"].widget.attrs["aria-describedby"] = f"{self['file'].auto_id}-help"


class ScopeCodeChoiceField(IdChoiceField):
    """A catalog scope, shown by its code (``system:name``)."""

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.code)


class ScopeMappingForm(AccessibleForm):
    """One provider scope mapped to the scope catalog (a new mapping, or a change of one)."""

    source = forms.ChoiceField(label="Source", choices=Source.choices)
    provider_scope = forms.CharField(
        label="Provider scope",
        max_length=300,
        validators=[validate_single_line],
        help_text="Exactly as the provider names it, e.g. https://www.googleapis.com/auth/drive.readonly.",
    )
    scope = ScopeCodeChoiceField(
        label="Catalog scope", queryset=Scope.objects.none(), help_text="The scope of the catalog it amounts to."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["scope"]
        assert isinstance(field, IdChoiceField)
        field.queryset = Scope.objects.filter(is_active=True).order_by("code")


class AssignForm(AccessibleForm):
    owner = PersonField(
        label="Owner to answer for it", help_text="They are told by email and may claim it or say it is not needed."
    )


class ReasonForm(AccessibleForm):
    """A reason, for the decisions that need one (dismiss, revoke)."""

    reason = forms.CharField(label="Reason", max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))


class RevokeForm(ReasonForm):
    """Ask for a revocation: of every present consent to the app, or of one person's."""

    consent = forms.TypedChoiceField(label="Whose consent", coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, consents: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["consent"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Everyone's (every present consent)")] + [
            (consent.pk, consent.person.label if consent.person else consent.person_key) for consent in consents
        ]


class NotNeededForm(AccessibleForm):
    comment = forms.CharField(
        label="Comment", required=False, max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )


class ClaimForm(AccessibleForm):
    """The registration a claim makes, prefilled from what the provider shows: the app's name and
    publisher, the catalog scopes its provider scopes map to. IAM admins claim on someone's
    behalf (``owner``); a person claims for themselves (no owner field)."""

    owner = PersonField(label="Owner", help_text="The person who answers for it: business and technical owner.")
    name = forms.CharField(label="Name", max_length=_NAME_MAX, validators=[validate_single_line])
    kind = forms.ChoiceField(label="Kind", choices=IntegrationKind.choices)
    vendor = forms.CharField(label="Vendor", required=False, max_length=_VENDOR_MAX, validators=[validate_single_line])
    purpose = forms.CharField(
        label="What it is used for",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For the reviewers: what work it does and for whom.",
    )
    environment = forms.ChoiceField(label="Environment", choices=Environment.choices)
    data_classifications = forms.MultipleChoiceField(
        label="Data it touches",
        required=False,
        choices=DataClassification.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    requested_scopes = IdMultipleChoiceField(
        queryset=Scope.objects.none(),
        required=False,
        label="Scopes it needs",
        help_text="Ticked: the catalog scopes the provider's scopes map to. Nothing is granted until approved.",
    )

    def __init__(self, *args: Any, with_owner: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_owner:
            del self.fields["owner"]
        self.active_scopes = Scope.objects.filter(is_active=True).select_related("system")
        field = self.fields["requested_scopes"]
        assert isinstance(field, IdMultipleChoiceField)
        field.queryset = self.active_scopes

    def values(self) -> dict[str, Any]:
        """The registration's values for the service (everything but the owner)."""
        data = {name: value for name, value in self.cleaned_data.items() if name != "owner"}
        data["requested_scopes"] = list(data.get("requested_scopes") or [])
        return data

    def scope_groups(self) -> list[dict[str, Any]]:
        return scope_groups(self, self.active_scopes)
