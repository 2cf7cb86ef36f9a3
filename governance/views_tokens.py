"""A person's own API tokens, from their home page: create one (its key is shown once, in the
answer to the POST that made it, and never again) and revoke one. The services audit both."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from governance.selectors import api_tokens_of
from governance.services import api_token_issue_personal, api_token_revoke
from governance.web import attempt, signed_in

HOME_PANEL = "#panel-my-api-tokens"


@never_cache  # the page carries a secret: no browser or proxy may keep a copy
@login_required
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    try:
        days = int(request.POST.get("expires_days", ""))
    except ValueError:
        days = 0  # refused by the service as a lifetime not offered
    issued = attempt(
        request,
        lambda: api_token_issue_personal(actor=user, name=request.POST.get("name", ""), expires_days=days),
        success=lambda result: f"Token {result[0].prefix}… created. Copy it now: it is not shown again.",
    )
    if issued is None:
        return redirect(reverse("home") + HOME_PANEL)
    token, key = issued
    return render(request, "governance/api_token_created.html", {"token": token, "key": key})


@login_required
@require_POST
def api_token_revoke_own(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    token = get_object_or_404(api_tokens_of(user), pk=pk)
    attempt(
        request,
        lambda: api_token_revoke(actor=user, token=token, reason="Revoked by its owner on their home page."),
        success=f"Token {token.prefix}… revoked: it no longer opens the API.",
    )
    return redirect(reverse("home") + HOME_PANEL)
