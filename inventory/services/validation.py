"""The rules an integration's input meets whoever sends it (page, API, import, demo data): every
problem found at once, each naming its field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from governance.exceptions import Unprocessable, ValidationFailed
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters, single_line_errors
from inventory.choices import Autonomy, CredentialType, DataClassification, Environment, IntegrationKind, OwnerRole
from inventory.credentials import secret_problem
from inventory.models import Integration

# The fields an owner provides, in the order the API shows them; the rest is computed or read-only.
INTEGRATION_INPUT_FIELDS: tuple[str, ...] = (
    "name",
    "kind",
    "purpose",
    "vendor",
    "environment",
    "business_owner",
    "technical_owner",
    "backup_owner",
    "data_classifications",
    "acts_for_users",
    "autonomy",
    "requested_scopes",
    "workload_identity",
    "credentials",
    "invokes",
    "ticket_ref",
    "tags",
    "external_app_ids",
)
# Input stored in rows of their own (scopes, credentials, the integrations it calls, how the
# identity providers name it) rather than in a column of the integration.
RELATED_INPUT_FIELDS: tuple[str, ...] = ("requested_scopes", "credentials", "invokes", "external_app_ids")
PLAIN_INPUT_FIELDS: tuple[str, ...] = tuple(f for f in INTEGRATION_INPUT_FIELDS if f not in RELATED_INPUT_FIELDS)
# An owner role's value is the name of the integration field that holds it.
OWNER_FIELDS: tuple[str, ...] = tuple(OwnerRole.values)
# Fields shown on one line (and put in email subjects): no control characters.
SINGLE_LINE_FIELDS = ("name", "vendor", "workload_identity", "ticket_ref", "tags")
TAG_MAX_LENGTH = 50


class _Problems:
    """Field errors found in one input. ``invalid`` input breaks its form; ``unprocessable``
    input is well formed but cannot be acted on (an integration invoking itself, a secret-looking
    value, dates out of order or in the future): alone it is a 422 for the API, with invalid
    input a 400 naming both."""

    def __init__(self) -> None:
        self.invalid: dict[str, list[str]] = {}
        self.unprocessable: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.invalid.setdefault(field, []).append(message)

    def refuse(self, field: str, message: str) -> None:
        self.unprocessable.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self.invalid:
            for field, messages in self.unprocessable.items():
                for message in messages:
                    self.add(field, message)
            field, messages = next(iter(self.invalid.items()))
            raise ValidationFailed(f"{field}: {messages[0]}", errors=self.invalid)
        if self.unprocessable:
            field, messages = next(iter(self.unprocessable.items()))
            raise Unprocessable(f"{field}: {messages[0]}", errors=self.unprocessable)


def unknown_fields_refuse(values: Mapping[str, Any]) -> None:
    """Input naming a field an owner does not provide is refused, never silently dropped."""
    unknown = set(values) - set(INTEGRATION_INPUT_FIELDS)
    if unknown:
        raise ValidationFailed.on(sorted(unknown)[0], "Unknown field.")


def integration_input_validate(values: Mapping[str, Any], *, instance: Integration | None) -> None:
    """Check ``values`` (a new integration's, or a change of ``instance``) against every rule
    on the input; raise one error naming every field at fault."""
    problems = _Problems()
    _check_required_and_choices(problems, values, instance)
    _check_owners(problems, values, instance)
    _check_lists(problems, values, instance)
    _check_text(problems, values)
    _check_credentials(problems, values)
    problems.raise_any()


def _check_required_and_choices(problems: _Problems, values: Mapping[str, Any], instance: Integration | None) -> None:
    for field in ("name", "purpose"):
        if (field in values or instance is None) and not str(values.get(field) or "").strip():
            problems.add(field, "This field is required.")
    choice_fields = {"kind": IntegrationKind.values, "environment": Environment.values, "autonomy": Autonomy.values}
    for field, allowed in choice_fields.items():
        if field in values and values[field] not in allowed:
            problems.add(field, f"Choose one of: {', '.join(allowed)}.")
    if instance is None and "kind" not in values:
        problems.add("kind", "This field is required.")


def _check_owners(problems: _Problems, values: Mapping[str, Any], instance: Integration | None) -> None:
    business_owner = (
        values["business_owner"] if "business_owner" in values else getattr(instance, "business_owner", None)
    )
    if business_owner is None:
        problems.add("business_owner", "Every integration needs a business owner.")
    for field in OWNER_FIELDS:
        person = values.get(field)
        if person is not None and (not person.is_active or person.is_service_account):
            problems.add(field, f"{person.username} cannot own an integration (inactive or a service account).")


def _check_lists(problems: _Problems, values: Mapping[str, Any], instance: Integration | None) -> None:
    if "data_classifications" in values:
        classes = values["data_classifications"] or []
        bad = [c for c in classes if c not in DataClassification.values]
        if bad or not isinstance(classes, list):
            problems.add("data_classifications", f"Unknown classification(s): {', '.join(map(str, bad))}.")
    for scope in values.get("requested_scopes") or []:
        if not scope.is_active:
            problems.add("requested_scopes", f"{scope.code} is retired and cannot be requested.")
    for other in values.get("invokes") or []:
        if instance is not None and other.pk == instance.pk:
            problems.refuse("invokes", "An integration cannot invoke itself.")
    if "tags" in values and not all(isinstance(t, str) for t in values["tags"] or []):
        problems.add("tags", "Tags are short strings.")
    elif any(len(tag) > TAG_MAX_LENGTH for tag in values.get("tags") or []):
        problems.add("tags", f"A tag is at most {TAG_MAX_LENGTH} characters.")
    # How long the lists of one integration may be (the deployment's limits).
    for field, limit in (
        ("tags", settings.INTEGRATION_MAX_TAGS),
        ("credentials", settings.INTEGRATION_MAX_CREDENTIALS),
        ("invokes", settings.INTEGRATION_MAX_INVOKES),
    ):
        count = len(values.get(field) or [])
        if count > limit:
            problems.add(field, f"At most {limit} per integration ({count} given).")


def _check_text(problems: _Problems, values: Mapping[str, Any]) -> None:
    for field, messages in single_line_errors(values, SINGLE_LINE_FIELDS).items():
        for message in messages:
            problems.add(field, message)
    # The inventory records what a credential is, never a secret value: text that looks like
    # one is refused wherever it is typed. Free text (the purpose) is checked for the known
    # formats only, since prose can look random.
    for field in ("name", "vendor", "workload_identity", "ticket_ref"):
        problem = secret_problem(str(values.get(field) or ""))
        if problem:
            problems.refuse(field, problem)
    problem = secret_problem(str(values.get("purpose") or ""), check_entropy=False)
    if problem:
        problems.refuse("purpose", problem)
    for tag in values.get("tags") or []:
        problem = secret_problem(str(tag))
        if problem:
            problems.refuse("tags", problem)


def _check_credentials(problems: _Problems, values: Mapping[str, Any]) -> None:
    for index, cred in enumerate(values.get("credentials") or []):
        prefix = f"credentials.{index}"
        if cred.get("type") not in CredentialType.values:
            problems.add(f"{prefix}.type", f"Choose one of: {', '.join(CredentialType.values)}.")
        identifier = str(cred.get("identifier") or "").strip()
        if not identifier:
            problems.add(f"{prefix}.identifier", "Give the key id, client id, account or fingerprint.")
        elif has_control_characters(identifier):
            problems.add(f"{prefix}.identifier", SINGLE_LINE_MESSAGE)
        problem = secret_problem(identifier)
        if problem:
            problems.refuse(f"{prefix}.identifier", problem)
        created, expires = cred.get("created_at"), cred.get("expires_at")
        if created and expires and expires <= created:
            problems.refuse(f"{prefix}.expires_at", "The expiry must be after the creation date.")
        rotated = cred.get("last_rotated_at")
        if rotated and rotated > timezone.now():
            problems.refuse(f"{prefix}.last_rotated_at", "The last rotation cannot be in the future.")
