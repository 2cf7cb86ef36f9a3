"""A person's own notification choices (``/account/notifications/``): how review work reaches
them — one email per item as it arrives, or one daily digest. The service audits the change."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance.models import ReviewerEmails
from governance.selectors import reviewer_emails_of
from governance.services import notification_preference_set
from governance.web import attempt, signed_in


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if request.method == "POST":
        chosen = request.POST.get("reviewer_emails", "")
        done = attempt(
            request,
            lambda: notification_preference_set(actor=user, user=user, reviewer_emails=chosen),
            success=lambda preference: f"Saved: {preference.get_reviewer_emails_display().lower()}.",
        )
        if done is not None:
            return redirect("account-notifications")
    return render(
        request,
        "governance/notifications.html",
        {"choices": ReviewerEmails.choices, "current": reviewer_emails_of(user)},
    )
