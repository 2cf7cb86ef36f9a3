"""The co-owners and delegates of one integration: the section of its detail page that lists
them (with the form an owner names one with) and the two buttons behind it. Views fetch the
integration through the visibility gate (unseen: 404) and call the services, which decide who
may name or remove whom."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from governance.forms import AccessibleForm
from governance.models import User
from governance.web import AuthenticatedHttpRequest, attempt
from inventory import permissions, selectors, services
from inventory.choices import IntegrationStatus
from inventory.forms import PersonField
from inventory.models import Integration


class DelegateForm(AccessibleForm):
    person = PersonField(
        label="Co-owner or delegate",
        help_text="Type a name or username. They may see, change and renew this integration, never own it.",
    )
    reason = forms.CharField(
        required=False, max_length=300, help_text="Optional: why, for them and the audit trail (e.g. covering leave)."
    )


def delegates_section(request: HttpRequest, integration: Integration) -> dict[str, Any] | None:
    """The section's context: who acts on the integration beside its owners, and, for those who
    may change that, the form. Nothing to show to a reader when there is nobody. Two queries."""
    delegates = list(selectors.integration_delegates(integration))
    can_manage = (
        permissions.can_manage_delegates(request.user, integration) and integration.status != IntegrationStatus.RETIRED
    )
    if not delegates and not can_manage:
        return None
    return {"delegates": delegates, "can_manage": can_manage, "form": DelegateForm(prefix="delegate")}


def _visible(request: AuthenticatedHttpRequest, pk: int) -> Integration:
    return get_object_or_404(selectors.integrations_for(request.user), pk=pk)


@login_required
@require_POST
def delegate_add(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    integration = _visible(request, pk)
    form = DelegateForm(request.POST, prefix="delegate")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("inventory:detail", pk=integration.pk)
    person: User = form.cleaned_data["person"]
    attempt(
        request,
        lambda: services.integration_delegate_add(
            actor=request.user, integration=integration, person=person, reason=form.cleaned_data["reason"]
        ),
        success=f"{person.label} may now act on {integration.name}.",
    )
    return redirect("inventory:detail", pk=integration.pk)


@login_required
@require_POST
def delegate_remove(request: AuthenticatedHttpRequest, pk: int, user_id: int) -> HttpResponse:
    integration = _visible(request, pk)
    person = get_object_or_404(selectors.integration_delegates(integration), pk=user_id)
    attempt(
        request,
        lambda: services.integration_delegate_remove(actor=request.user, integration=integration, person=person),
        success=f"{person.label} no longer acts on {integration.name}.",
    )
    return redirect("inventory:detail", pk=integration.pk)
