"""Runtime pages: the activity of the token endpoint (every issuance and refusal), filterable and
exportable. Rows come through ``runtime.selectors``: a business user sees the events of the
integrations they own, reviewers, IAM admins and auditors every event."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.csv_export import csv_response
from governance.models import User
from governance.web import AuthenticatedHttpRequest
from runtime import selectors
from runtime.filters import TokenEventFilter
from runtime.models import TokenEvent

PAGE_SIZE = 50


@login_required
@require_GET
def activity(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    filterset = TokenEventFilter(request.GET, queryset=selectors.token_events_listed(request.user))
    if request.GET.get("format") == "csv":
        return _csv(filterset.qs)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "runtime/activity.html",
        {"filter": filterset, "page": page, "query": query.urlencode()},
    )


def _username(user: User | None) -> str:
    return user.username if user else ""


def _when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else ""


# The export's columns: each one's header and how a row's cell is read.
CSV_COLUMNS: dict[str, Callable[[TokenEvent], object]] = {
    "id": attrgetter("pk"),
    "at": lambda event: _when(event.at),
    "outcome": attrgetter("outcome"),
    "error": attrgetter("error"),
    "reason": attrgetter("reason"),
    "integration_id": attrgetter("integration_id"),
    "integration": lambda event: event.integration.name if event.integration else "",
    "owner": lambda event: _username(event.owner),
    "acting_for": lambda event: _username(event.acting_for),
    "workload_issuer": attrgetter("workload_issuer"),
    "workload_subject": attrgetter("workload_subject"),
    "chain": lambda event: " ".join(str(link) for link in event.chain or []),
    "audience": attrgetter("audience"),
    "scopes_requested": lambda event: " ".join(event.scopes_requested or []),
    "scopes_granted": lambda event: " ".join(event.scopes_granted or []),
    "jti": attrgetter("jti"),
    "expires_at": lambda event: _when(event.expires_at),
    "task": attrgetter("task"),
}


def _csv(qs: QuerySet[TokenEvent]) -> StreamingHttpResponse:
    """Streamed in chunks: an export of a month of token events never sits in memory."""
    rows = ([cell(event) for cell in CSV_COLUMNS.values()] for event in qs.iterator(chunk_size=1000))
    return csv_response("token-events.csv", CSV_COLUMNS, rows)
