"""The decision log's page: every runtime policy decision (token exchange and decision API), with
the enforced version's decision and reasons, each shadow version's result and the time it took,
filterable. For IAM admins, reviewers and auditors (``runtime.permissions.can_read_policies``);
anyone else is answered 404, as for anything they may not see."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.web import AuthenticatedHttpRequest
from runtime import selectors
from runtime.filters import PolicyDecisionFilter
from runtime.permissions import can_read_policies

PAGE_SIZE = 50


@login_required
@require_GET
def decisions(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not can_read_policies(request.user):
        raise Http404("No such page.")
    filterset = PolicyDecisionFilter(request.GET, queryset=selectors.policy_decisions_listed(request.user))
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "runtime/decisions.html",
        {"filter": filterset, "page": page, "query": query.urlencode()},
    )
