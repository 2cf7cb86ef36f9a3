"""Forms of the inventory pages. They parse and show input; the services validate the rules
again (whoever calls) and their field errors are put back next to the field, input kept."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django import forms
from django.db.models import Q
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import QueryDict
from django.utils import timezone

from governance.exceptions import ValidationFailed
from governance.fields import IdMultipleChoiceField
from governance.forms import AccessibleForm
from governance.models import User
from governance.roles import sees_everything
from governance.selectors import people, people_suggested
from governance.validators import validate_single_line
from inventory.choices import (
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    Environment,
    IntegrationKind,
    OwnerRole,
    Sensitivity,
)
from inventory.credentials import secret_problem
from inventory.models import Integration, Scope
from inventory.selectors import owned_by
from inventory.services import PLAIN_INPUT_FIELDS

# Free text: only the known secret formats are refused there (no entropy check).
FREE_TEXT_FIELDS = frozenset({"purpose"})
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


def _no_secret(value: str, *, entropy: bool = True) -> str:
    problem = secret_problem(value or "", check_entropy=entropy)
    if problem:
        raise forms.ValidationError(problem, code="secret")
    return value


def forget_refused_secrets(form: forms.Form) -> None:
    """Blank, in the re-rendered form, every field that was refused and whose submitted value
    looks like a secret (whether the form or the service refused it): a pasted key must not
    travel back to the browser in the page (cached, screenshotted, shoulder-surfed). Everything
    else typed is kept."""
    if not form.is_bound:
        return
    data: QueryDict | None = None
    for name in form.errors:
        if name not in form.fields:
            continue
        key = form.add_prefix(name)
        raw = form.data.get(key)
        if isinstance(raw, str) and secret_problem(raw, check_entropy=name not in FREE_TEXT_FIELDS):
            if data is None:
                assert isinstance(form.data, QueryDict)  # a bound page form holds the posted data
                data = form.data.copy()
            data[key] = ""
    if data is not None:
        form.data = data


def as_datetime(value: date | None) -> datetime | None:
    if value is None:
        return None
    return timezone.make_aware(datetime.combine(value, time(0, 0)))


class IntegrationForm(AccessibleForm):
    """The self-service registration form, in the sections a person thinks in."""

    SECTIONS = [
        ("what", "What it is", ["name", "kind", "purpose", "vendor", "environment", "ticket_ref", "tags"]),
        ("who", "Who owns it", ["business_owner", "technical_owner", "backup_owner"]),
        ("touches", "What it touches", ["data_classifications", "acts_for_users", "autonomy", "invokes"]),
        ("auth", "How it authenticates", ["workload_identity"]),
    ]

    name = forms.CharField(
        max_length=150,
        validators=[validate_single_line],
        help_text="The name people know it by, e.g. “Sales email assistant”.",
    )
    kind = forms.ChoiceField(
        choices=[("", "Choose…"), *IntegrationKind.choices], help_text="What sort of AI integration it is."
    )
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What it does and for whom, in a sentence or two. Reviewers read this first.",
    )
    vendor = forms.CharField(
        max_length=120,
        required=False,
        validators=[validate_single_line],
        help_text="The company that provides it. Leave empty if it is built in-house.",
    )
    environment = forms.ChoiceField(
        choices=Environment.choices, initial=Environment.PRODUCTION, help_text="Where it runs."
    )
    ticket_ref = forms.CharField(
        max_length=100,
        required=False,
        validators=[validate_single_line],
        label="Ticket reference",
        help_text="Optional: the ServiceNow or Jira ticket for this change.",
    )
    tags = forms.CharField(
        max_length=300,
        required=False,
        validators=[validate_single_line],
        help_text="Optional labels, separated by commas, e.g. sales, pilot.",
    )
    business_owner = PersonField(
        help_text="The person accountable for it (required): usually you. Type a name or username. "
        "Someone else is asked to accept before the role is theirs."
    )
    technical_owner = PersonField(
        required=False,
        help_text="Who runs it day to day; may be the same person. Someone else is asked to accept first.",
    )
    backup_owner = PersonField(
        required=False, help_text="Who answers when the owners are away. They are asked to accept first."
    )
    data_classifications = forms.MultipleChoiceField(
        choices=DataClassification.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Data it handles",
        help_text="Every classification of data it reads or writes.",
    )
    acts_for_users = forms.BooleanField(
        required=False,
        label="It acts as the signed-in user (delegated user context)",
        help_text="Tick if it uses the user's own permissions, e.g. reads their mailbox through an OAuth consent.",
    )
    autonomy = forms.ChoiceField(
        choices=Autonomy.choices,
        initial=Autonomy.HUMAN_IN_LOOP,
        widget=forms.RadioSelect,
        help_text="Does a person approve what it does before it happens?",
    )
    invokes = IdMultipleChoiceField(
        queryset=Integration.objects.none(),
        required=False,
        label="Other integrations it calls",
        help_text="The delegation chain: what this one hands work to. Hold Ctrl (Cmd) to pick several.",
    )
    requested_scopes = IdMultipleChoiceField(
        queryset=Scope.objects.none(),
        required=False,
        label="Scopes it needs",
        help_text="Pick only what it needs; each scope shows how sensitive it is. Nothing is granted until approved.",
    )
    workload_identity = forms.CharField(
        max_length=300,
        required=False,
        validators=[validate_single_line],
        help_text="How it proves what it is without a shared secret: a SPIFFE ID (spiffe://…) or an OIDC issuer and subject. Leave empty if none.",
    )

    def __init__(self, *args: Any, user: Any, visible: Any, instance: Integration | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.instance = instance
        invokes = visible.exclude(status="retired").only("id", "name").order_by("name")
        if sees_everything(user):
            # An admin or reviewer sees every integration: offer those of the same owners (and
            # what it already calls), not a list of 100,000. The API takes any visible id.
            owners = [user.pk, *(instance.owner_ids() if instance is not None else [])]
            current = list(instance.invokes.values_list("pk", flat=True)) if instance is not None else []
            invokes = invokes.filter(owned_by(owners, lookup="in") | Q(pk__in=current))
        if instance is not None:
            invokes = invokes.exclude(pk=instance.pk)
        self.invokes_field.queryset = invokes
        self.active_scopes = Scope.objects.filter(is_active=True).select_related("system")
        self.scopes_field.queryset = self.active_scopes
        if instance is None and not self.is_bound:
            self.initial.setdefault("business_owner", user.username)

    @property
    def invokes_field(self) -> IdMultipleChoiceField:
        field = self.fields["invokes"]
        assert isinstance(field, IdMultipleChoiceField)
        return field

    @property
    def scopes_field(self) -> IdMultipleChoiceField:
        field = self.fields["requested_scopes"]
        assert isinstance(field, IdMultipleChoiceField)
        return field

    def people_options(self) -> list[User]:
        """Suggestions for the owner fields (the page's ``<datalist>``)."""
        named = [getattr(self.instance, role, None) for role in OwnerRole.values]
        return people_options(self.user, *named)

    def clean_name(self) -> str:
        return _no_secret(self.cleaned_data["name"].strip())

    def clean_purpose(self) -> str:
        return _no_secret(self.cleaned_data["purpose"].strip(), entropy=False)

    def clean_vendor(self) -> str:
        return _no_secret(self.cleaned_data["vendor"].strip())

    def clean_workload_identity(self) -> str:
        return _no_secret(self.cleaned_data["workload_identity"].strip())

    def clean_ticket_ref(self) -> str:
        return _no_secret(self.cleaned_data["ticket_ref"].strip())

    def clean_tags(self) -> list[str]:
        # How many tags (and how long) is the service's rule; its error comes back next to the field.
        tags = [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
        for tag in tags:
            _no_secret(tag)
        return tags

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["requested_scopes"] = list(data["requested_scopes"])
        data["invokes"] = list(data["invokes"])
        return data

    def scope_groups(self) -> list[dict[str, Any]]:
        """The scope picker: active scopes grouped by system, with what is ticked (kept from the
        submitted input when the form comes back with errors)."""
        if self.is_bound:
            assert isinstance(self.data, QueryDict)  # a bound page form holds the posted data
            chosen = set(self.data.getlist(self.add_prefix("requested_scopes")))
        else:
            chosen = {str(getattr(s, "pk", s)) for s in self.initial.get("requested_scopes", [])}
        groups: dict[str, dict[str, Any]] = {}
        for scope in self.active_scopes.order_by("system__name", "name"):
            group = groups.setdefault(scope.system.code, {"system": scope.system, "scopes": []})
            group["scopes"].append({"scope": scope, "checked": str(scope.pk) in chosen})
        return list(groups.values())

    def sections(self) -> list[dict[str, Any]]:
        return [{"key": key, "title": title, "fields": [self[n] for n in names]} for key, title, names in self.SECTIONS]


class CredentialForm(AccessibleForm):
    type = forms.ChoiceField(
        choices=[("", "Choose…"), *CredentialType.choices], help_text="What kind of credential it is."
    )
    identifier = forms.CharField(
        max_length=200,
        validators=[validate_single_line],
        label="Identifier or fingerprint",
        help_text="Key id, client id, account name or certificate fingerprint — never the secret itself.",
    )
    created_at = forms.DateField(
        required=False, label="Created", widget=forms.DateInput(attrs={"type": "date"}), help_text="When it was issued."
    )
    expires_at = forms.DateField(
        required=False,
        label="Expires",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty if it never expires.",
    )
    last_rotated_at = forms.DateField(
        required=False,
        label="Last rotated",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty if never rotated.",
    )

    def clean_identifier(self) -> str:
        return _no_secret(self.cleaned_data["identifier"].strip())

    def value(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "type": d["type"],
            "identifier": d["identifier"],
            "created_at": as_datetime(d.get("created_at")),
            "expires_at": as_datetime(d.get("expires_at")),
            "last_rotated_at": as_datetime(d.get("last_rotated_at")),
        }


class BaseCredentialFormSet(forms.BaseFormSet):
    def kept_forms(self) -> list[CredentialForm]:
        """The credential forms filled in and not marked for deletion."""
        return [f for f in self.forms if f.has_changed() and not f.cleaned_data.get(DELETION_FIELD_NAME, False)]

    def values(self) -> list[dict[str, Any]]:
        return [f.value() for f in self.kept_forms() if f.cleaned_data]


CredentialFormSet = forms.formset_factory(CredentialForm, formset=BaseCredentialFormSet, extra=1, can_delete=True)


def apply_service_errors(exc: ValidationFailed, form: IntegrationForm, formset: BaseCredentialFormSet) -> None:
    """Put a service's field errors back next to their fields (``credentials.N.field`` on the
    N-th credential form); anything else becomes a form-wide error."""
    cred_forms = formset.kept_forms()
    placed = False
    for field, messages in exc.errors.items():
        parts = field.split(".")
        for message in messages:
            if parts[0] == "credentials" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(cred_forms):
                target = cred_forms[int(parts[1])]
                target.add_error(parts[2] if parts[2] in target.fields else None, message)
                target.mark_errors()
                placed = True
            elif field in form.fields:
                form.add_error(field, message)
                placed = True
            else:
                form.add_error(None, message)
                placed = True
    if not placed:
        form.add_error(None, exc.detail)
    form.mark_errors()


class TransferForm(AccessibleForm):
    to_user = PersonField(
        label="New owner", help_text="Type a name or username. They must accept before anything changes."
    )
    role = forms.ChoiceField(choices=OwnerRole.choices, help_text="Which owner role they take over.")
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: why, for them and the audit trail.",
    )


class ResourceSystemForm(AccessibleForm):
    code = forms.SlugField(
        max_length=40, help_text="Short code used in scope codes, e.g. msgraph. Fixed once it has scopes."
    )
    name = forms.CharField(
        max_length=120, validators=[validate_single_line], help_text="The system's name, e.g. Microsoft Graph."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What it holds.")
    owners = IdMultipleChoiceField(
        queryset=User.objects.none(), required=False, help_text="Resource owners that workflows and campaigns may ask."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owners = self.fields["owners"]
        assert isinstance(owners, IdMultipleChoiceField)
        owners.queryset = people()


class ScopeForm(AccessibleForm):
    name = forms.CharField(
        max_length=120,
        validators=[validate_single_line],
        help_text="The permission's name in the system, e.g. Mail.Read. Fixed once created.",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What it allows, in plain words."
    )
    sensitivity = forms.ChoiceField(
        choices=Sensitivity.choices, help_text="How sensitive the data or action behind it is."
    )
    access = forms.ChoiceField(choices=AccessLevel.choices, help_text="Read, write (changes data) or admin.")
    is_active = forms.BooleanField(
        required=False, initial=True, label="Can be requested", help_text="Untick to retire the scope."
    )

    def __init__(self, *args: Any, fixed_name: str | None = None, **kwargs: Any) -> None:
        """``fixed_name``: the scope exists and its name, part of its code, cannot change."""
        super().__init__(*args, **kwargs)
        if fixed_name is not None:
            self.fields["name"].disabled = True
            self.fields["name"].initial = fixed_name


def integration_initial(integration: Integration | None) -> dict[str, Any]:
    """The change form filled with what ``integration`` holds (empty for a new one)."""
    if integration is None:
        return {}
    initial: dict[str, Any] = {f: getattr(integration, f) for f in PLAIN_INPUT_FIELDS if f != "tags"}
    initial["tags"] = ", ".join(integration.tags or [])
    initial["requested_scopes"] = list(integration.requested_scopes.all())
    initial["invokes"] = list(integration.invokes.all())
    return initial


def credentials_initial(integration: Integration | None) -> list[dict[str, Any]]:
    """One credential form per credential ``integration`` records, dates as days."""
    if integration is None:
        return []
    return [
        {
            "type": cred.type,
            "identifier": cred.identifier,
            "created_at": cred.created_at.date() if cred.created_at else None,
            "expires_at": cred.expires_at.date() if cred.expires_at else None,
            "last_rotated_at": cred.last_rotated_at.date() if cred.last_rotated_at else None,
        }
        for cred in integration.credentials.all()
    ]
