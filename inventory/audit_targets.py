"""How the audit trail, histories and grants name and link the inventory's objects
(governance.targets), and how histories label the integration's fields (governance.history)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def _integration_url(obj: Any) -> str:
    return reverse("inventory:detail", args=[obj.pk])


def register() -> None:
    from governance.history import register_field_display
    from governance.targets import register_target
    from inventory import selectors
    from inventory.choices import DataClassification
    from inventory.models import Grant, Integration, OwnershipTransfer, ResourceSystem, Scope, TrustedIssuer

    register_target(
        Integration._meta.label_lower,
        visible=lambda user: selectors.integrations_for(user).only("pk", "name"),
        label=lambda obj: obj.name,
        url=_integration_url,
    )
    register_target(
        Grant._meta.label_lower,
        visible=lambda user: selectors.grants_for(user).select_related("integration", "scope"),
        label=lambda obj: f"{obj.scope.code} for {obj.integration.name}",
        url=lambda obj: _integration_url(obj.integration),
    )
    register_target(
        OwnershipTransfer._meta.label_lower,
        visible=lambda user: selectors.transfers_for(user).select_related("integration", "to_user"),
        label=lambda obj: f"{obj.get_role_display()} of {obj.integration.name} to {obj.to_user.label}",
        url=lambda obj: reverse("inventory:transfer", args=[obj.pk]),
    )
    register_target(
        TrustedIssuer._meta.label_lower,
        visible=selectors.issuers_for,
        url=lambda obj: reverse("inventory:issuer", args=[obj.pk]),
    )
    # The catalog is public to every signed-in user.
    register_target(
        ResourceSystem._meta.label_lower,
        visible=lambda user: selectors.resource_systems() if user.is_authenticated else ResourceSystem.objects.none(),
        url=lambda obj: reverse("inventory:catalog"),
    )
    register_target(Scope._meta.label_lower, visible=selectors.scopes_for, url=lambda obj: reverse("inventory:catalog"))
    integration = Integration._meta.label_lower
    register_field_display(integration, "data_classifications", choices=DataClassification.choices)
    register_field_display(integration, "invokes", label="Calls")
    register_field_display(integration, "acts_for_users", label="Acts for its users")
