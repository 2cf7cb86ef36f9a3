"""Webhook pages: IAM admins create and delete subscriptions, read every delivery and attempt,
and redeliver; auditors read. Everyone else gets a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from governance.exceptions import DomainError
from governance.webhooks import selectors, services
from governance.webhooks.forms import SubscriptionForm
from governance.webhooks.permissions import can_manage_webhooks, can_view_webhooks


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    if not can_view_webhooks(request.user):
        raise Http404
    form = SubscriptionForm(request.POST or None)
    created_secret = ""
    if request.method == "POST":
        if not can_manage_webhooks(request.user):
            raise Http404
        if form.is_valid():
            try:
                sub, created_secret = services.subscription_create(
                    actor=request.user,  # type: ignore[arg-type]
                    name=form.cleaned_data["name"],
                    target_url=form.cleaned_data["target_url"],
                    event_types=form.patterns(),
                )
            except DomainError as exc:
                for field, msgs in (exc.errors or {"__all__": [exc.detail]}).items():
                    form.add_error(field if field in form.fields else None, msgs)
                form.mark_invalid()
            else:
                messages.success(request, f"Subscription “{sub.name}” created.")
                form = SubscriptionForm()
    subs = selectors.subscriptions_for(request.user)
    return render(
        request,
        "webhooks/list.html",
        {
            "subscriptions": subs,
            "form": form,
            "can_manage": can_manage_webhooks(request.user),
            "created_secret": created_secret,
        },
    )


@login_required
@require_GET
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sub = get_object_or_404(selectors.subscriptions_for(request.user, include_deleted=True), pk=pk)
    deliveries = selectors.deliveries_for(request.user).filter(subscription=sub).order_by("-id")
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "webhooks/detail.html",
        {"sub": sub, "page": page, "query": "", "can_manage": can_manage_webhooks(request.user)},
    )


@login_required
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    sub = get_object_or_404(selectors.subscriptions_for(request.user), pk=pk)
    try:
        services.subscription_delete(actor=request.user, subscription=sub)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("webhooks:detail", pk=sub.pk)
    messages.success(request, f"Subscription “{sub.name}” deleted.")
    return redirect("webhooks:list")


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(selectors.deliveries_for(request.user), pk=pk)
    try:
        services.delivery_redeliver(actor=request.user, delivery=delivery)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Event {delivery.event_id} will be sent again now.")
    return redirect("webhooks:detail", pk=delivery.subscription_id)
