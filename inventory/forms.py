"""Forms of the inventory pages. They parse and show input; the services validate the rules
again (whoever calls) and their field errors are put back next to the field, input kept."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import QueryDict
from django.utils import timezone

from governance.exceptions import ValidationFailed
from governance.fields import IdChoiceField, IdMultipleChoiceField
from governance.forms import AccessibleForm, PersonField, people_options
from governance.models import User
from governance.roles import sees_everything
from governance.selectors import people
from governance.validators import validate_single_line
from inventory.choices import (
    ASYMMETRIC_ALGORITHMS,
    AccessLevel,
    Autonomy,
    CredentialType,
    DataClassification,
    DiscoverySource,
    Environment,
    IntegrationKind,
    IssuerKind,
    OwnerRole,
    Sensitivity,
)
from inventory.credentials import secret_problem
from inventory.models import Integration, ResourceSystem, Scope, TrustedIssuer, WorkloadBinding
from inventory.selectors import owned_by
from inventory.services import (
    EXTERNAL_APP_IDS_MAX,
    ISSUER_FIELDS,
    PLAIN_INPUT_FIELDS,
    external_app_id_problem,
    external_app_ids_normalise,
    keys_are_pasted,
)

TOKEN_ALGORITHM_CHOICES = ResourceSystem._meta.get_field("token_algorithm").choices or []

# Free text: only the known secret formats are refused there (no entropy check).
FREE_TEXT_FIELDS = frozenset({"purpose"})


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
        ("auth", "How it authenticates", ["workload_identity", "external_app_ids"]),
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
    external_app_ids = forms.CharField(
        required=False,
        max_length=EXTERNAL_APP_IDS_MAX * 240,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="External app ids",
        help_text="How the identity providers name it, one per line as source: app key, e.g. "
        "google: 1234.apps.googleusercontent.com. Sources: " + ", ".join(DiscoverySource.values) + ". "
        "Discovery matches the OAuth grants it finds against these. Leave empty if none.",
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

    def clean_external_app_ids(self) -> list[tuple[str, str]]:
        """Lines of ``source: app key`` (the source in any case); the service checks them again,
        and whether another integration holds one."""
        pairs: list[tuple[str, str]] = []
        problems: list[str] = []
        for number, line in enumerate(str(self.cleaned_data.get("external_app_ids") or "").splitlines(), start=1):
            if not line.strip():
                continue
            source, sep, key = line.partition(":")
            source, key = source.strip().lower(), key.strip()
            problem = external_app_id_problem(source, key) if sep else "Write it as source: app key."
            if problem:
                problems.append(f"Line {number}: {problem}")
            else:
                pairs.append((source, key))
        if problems:
            raise forms.ValidationError(problems)
        try:
            return external_app_ids_normalise(pairs)
        except ValidationFailed as exc:  # more than an integration may have
            raise forms.ValidationError(exc.errors.get("external_app_ids") or [exc.detail]) from None

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["requested_scopes"] = list(data["requested_scopes"])
        data["invokes"] = list(data["invokes"])
        return data

    def scope_groups(self) -> list[dict[str, Any]]:
        return scope_groups(self, self.active_scopes)

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
    audience = forms.CharField(
        required=False,
        max_length=300,
        validators=[validate_single_line],
        label="Token audience",
        help_text="How its resource servers name themselves in access tokens (the aud claim), e.g. its API's URL. "
        "Empty: urn:ai-governance:system:<code>.",
    )
    # Not required: a client that leaves it out (a script posting the older form) gets the default.
    token_algorithm = forms.TypedChoiceField(
        choices=TOKEN_ALGORITHM_CHOICES,
        required=False,
        empty_value="ES256",
        initial="ES256",
        label="Token signing algorithm",
        help_text="How the portal signs access tokens for it (RS256 for resource servers that only accept RSA).",
    )
    # Not required either, for the same reason: left out, a system is a production one.
    environment = forms.TypedChoiceField(
        choices=Environment.choices,
        required=False,
        empty_value=Environment.PRODUCTION,
        initial=Environment.PRODUCTION,
        help_text="Which environment its data lives in; runtime policy can keep development integrations out of "
        "production systems.",
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
    jit_eligible = forms.BooleanField(
        required=False,
        label="Just-in-time eligible",
        help_text="An integration that does not hold it may ask for it at run time for one task; a reviewer "
        "decides and the grant ends by itself.",
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
    initial["external_app_ids"] = "\n".join(
        f"{row.source}: {row.app_key}" for row in integration.external_app_ids.all()
    )
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


class IssuerChoiceField(IdChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.issuer})"


class WorkloadBindingForm(AccessibleForm):
    """The workload identity an integration's tokens must prove. Required claims are lines of
    ``path=value`` (a text value) or ``path:=value`` (a number, true or false, as JSON)."""

    issuer = IssuerChoiceField(
        queryset=TrustedIssuer.objects.none(),
        empty_label="Choose a trusted issuer",
        help_text="Who issues the integration's workload tokens (IAM admins keep this list).",
    )
    subject = forms.CharField(
        max_length=300,
        strip=True,
        validators=[validate_single_line],
        help_text="The exact sub claim, e.g. spiffe://example.org/ns/ai/sa/agent, "
        "system:serviceaccount:ai:agent or repo:org/repo:environment:prod.",
    )
    required_claims = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Required claims",
        help_text="Optional, one per line: path=value (text), or path:=value for a number or true/false, "
        "e.g. repository_id=123456 or kubernetes.io.namespace=ai. At most 10.",
    )

    def __init__(self, *args: Any, issuers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        issuer = self.fields["issuer"]
        assert isinstance(issuer, IssuerChoiceField)
        issuer.queryset = issuers

    def clean_required_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        for number, line in enumerate(str(self.cleaned_data.get("required_claims") or "").splitlines(), start=1):
            if not line.strip():
                continue
            path, typed, value = _claim_line(line)
            if not path:
                raise forms.ValidationError(f"Line {number}: write path=value.")
            if path in claims:
                raise forms.ValidationError(f"Line {number}: {path} is given twice.")
            if typed:
                try:
                    claims[path] = json.loads(value)
                except (ValueError, RecursionError):  # RecursionError: nested too deep
                    raise forms.ValidationError(f"Line {number}: after := give a number, true or false.") from None
                if not isinstance(claims[path], (bool, int, float)):
                    raise forms.ValidationError(f"Line {number}: after := give a number, true or false.")
            else:
                claims[path] = value
        return claims


def _claim_line(line: str) -> tuple[str, bool, str]:
    """``path=value`` -> (path, False, value); ``path:=value`` -> (path, True, value)."""
    path, sep, value = line.partition("=")
    if not sep:
        return "", False, ""
    typed = path.endswith(":")
    return path.removesuffix(":").strip(), typed, value.strip()


def claims_as_lines(claims: dict[str, Any]) -> str:
    """Required claims as the form shows them (text values with =, others with :=)."""
    return "\n".join(
        f"{path}={value}" if isinstance(value, str) else f"{path}:={json.dumps(value)}"
        for path, value in sorted(claims.items())
    )


def binding_initial(binding: WorkloadBinding | None) -> dict[str, Any]:
    if binding is None:
        return {}
    return {
        "issuer": binding.issuer_id,
        "subject": binding.subject,
        "required_claims": claims_as_lines(binding.required_claims),
    }


# --- Trusted workload issuers -----------------------------------------------------------------


class IssuerForm(AccessibleForm):
    """A trusted issuer's configuration. The service checks each kind's rules; ``jwks`` is
    parsed as JSON here (a pasted set), checked for public keys there."""

    name = forms.CharField(max_length=120, validators=[validate_single_line], help_text="e.g. Production cluster.")
    kind = forms.ChoiceField(choices=IssuerKind.choices, help_text="Fixed once created.")
    issuer = forms.CharField(
        max_length=300,
        validators=[validate_single_line],
        label="Issuer (iss)",
        help_text="Exactly the iss of its tokens: an https URL for OpenID Connect "
        "(e.g. https://token.actions.githubusercontent.com), spiffe://<trust domain> for SPIFFE.",
    )
    discovery_url = forms.CharField(
        max_length=500,
        required=False,
        validators=[validate_single_line],
        label="Discovery URL",
        help_text="OpenID Connect only; empty: <issuer>/.well-known/openid-configuration.",
    )
    jwks_uri = forms.CharField(
        max_length=500,
        required=False,
        validators=[validate_single_line],
        label="Bundle URL",
        help_text="SPIFFE: the trust domain's JWT bundle (a JWKS URL). OpenID Connect issuers name "
        "theirs in the discovery document.",
    )
    jwks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        label="Pasted JWKS",
        help_text="Static JWKS, or a SPIFFE bundle without a URL: public keys only (RSA, EC, Ed25519).",
    )
    allowed_algorithms = forms.MultipleChoiceField(
        choices=[(alg, alg) for alg in ASYMMETRIC_ALGORITHMS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Tokens signed otherwise are refused; none and HMAC are never allowed. SPIFFE: no EdDSA.",
    )
    audience = forms.CharField(
        max_length=300,
        required=False,
        validators=[validate_single_line],
        help_text="The aud its tokens must carry; empty: the portal's token endpoint URL.",
    )
    max_token_age_seconds = forms.IntegerField(
        label="Maximum token age (seconds)", help_text="Tokens issued longer ago (iat) are refused."
    )
    clock_skew_seconds = forms.IntegerField(label="Clock skew (seconds)", help_text="At most 60.")
    key_cache_seconds = forms.IntegerField(
        label="Key cache (seconds)", help_text="How long fetched keys are used before they are fetched again."
    )

    def __init__(self, *args: Any, fixed_kind: str | None = None, **kwargs: Any) -> None:
        """``fixed_kind``: the issuer exists and its kind cannot change."""
        super().__init__(*args, **kwargs)
        if fixed_kind is not None:
            self.fields["kind"].disabled = True
            self.fields["kind"].initial = fixed_kind

    def clean_jwks(self) -> dict[str, Any]:
        text = self.cleaned_data["jwks"].strip()
        if not text:
            return {}
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise forms.ValidationError("Not valid JSON: paste the JWKS document as it is.") from None
        if not isinstance(document, dict):
            raise forms.ValidationError('A JWKS is a JSON object with a "keys" list.')
        return document


def issuer_initial(issuer: TrustedIssuer | None) -> dict[str, Any]:
    """The issuer form filled with ``issuer``'s configuration (pasted keys as JSON; a fetched
    set is not input and stays out)."""
    if issuer is None:
        return {
            "kind": IssuerKind.OIDC,
            "allowed_algorithms": list(TrustedIssuer().allowed_algorithms),
            "max_token_age_seconds": 3600,
            "clock_skew_seconds": 30,
            "key_cache_seconds": 300,
        }
    initial = {field: getattr(issuer, field) for field in ISSUER_FIELDS}
    initial["jwks"] = json.dumps(issuer.jwks, indent=2) if keys_are_pasted(issuer) and issuer.jwks else ""
    return initial


def scope_groups(form: forms.BaseForm, active_scopes: QuerySet[Scope]) -> list[dict[str, Any]]:
    """The scope picker of a form with a ``requested_scopes`` field: active scopes grouped by
    system, with what is ticked (kept from the submitted input when the form comes back with
    errors)."""
    if form.is_bound:
        assert isinstance(form.data, QueryDict)  # a bound page form holds the posted data
        chosen = set(form.data.getlist(form.add_prefix("requested_scopes")))
    else:
        chosen = {str(getattr(scope, "pk", scope)) for scope in form.initial.get("requested_scopes", [])}
    groups: dict[str, dict[str, Any]] = {}
    for scope in active_scopes.order_by("system__name", "name"):
        group = groups.setdefault(scope.system.code, {"system": scope.system, "scopes": []})
        group["scopes"].append({"scope": scope, "checked": str(scope.pk) in chosen})
    return list(groups.values())
