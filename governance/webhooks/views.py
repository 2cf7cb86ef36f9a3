"""Webhook pages: IAM admins create and delete subscriptions, read every delivery and attempt,
and redeliver; auditors read. Everyone else gets a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from governance.exceptions import ValidationFailed
from governance.targets import attach_target_links
from governance.web import attempt, signed_in
from governance.webhooks import selectors, services
from governance.webhooks.forms import SubscriptionForm
from governance.webhooks.permissions import can_manage_webhooks, can_view_webhooks


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    """The subscriptions, and the form that creates one (its secret is shown this once)."""
    user = signed_in(request)
    if not can_view_webhooks(user):
        raise Http404
    form = SubscriptionForm(request.POST or None)
    created_secret = ""
    if request.method == "POST" and form.is_valid():
        try:
            sub, created_secret = services.subscription_create(
                actor=user,
                name=form.cleaned_data["name"],
                target_url=form.cleaned_data["target_url"],
                event_types=form.patterns(),
            )
        except ValidationFailed as exc:  # a refusal (NotAllowed) is the 403 page
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Subscription “{sub.name}” created.")
            form = SubscriptionForm()
    return render(
        request,
        "webhooks/list.html",
        {
            "subscriptions": selectors.subscriptions_for(user),
            "form": form,
            "can_manage": can_manage_webhooks(user),
            "created_secret": created_secret,
        },
    )


@login_required
@require_GET
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    sub = get_object_or_404(selectors.subscriptions_for(user, include_deleted=True), pk=pk)
    deliveries = selectors.deliveries_for(user).filter(subscription=sub).order_by("-id")
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    attach_target_links(user, page, type_attr="target_type", id_attr="target_id")
    return render(
        request,
        "webhooks/detail.html",
        {"sub": sub, "page": page, "query": "", "can_manage": can_manage_webhooks(user)},
    )


@login_required
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    sub = get_object_or_404(selectors.subscriptions_for(user), pk=pk)
    deleted = attempt(
        request,
        lambda: services.subscription_delete(actor=user, subscription=sub),
        success=f"Subscription “{sub.name}” deleted.",
    )
    return redirect("webhooks:list") if deleted else redirect("webhooks:detail", pk=sub.pk)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    delivery = get_object_or_404(selectors.deliveries_for(user), pk=pk)
    attempt(
        request,
        lambda: services.delivery_redeliver(actor=user, delivery=delivery),
        success=f"Event {delivery.event_id} will be sent again now.",
    )
    return redirect("webhooks:detail", pk=delivery.subscription_id)
