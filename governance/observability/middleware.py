"""Times every request for the latency histogram (``governance.observability.http``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from governance.observability.http import STATIC, UNMATCHED, observe

# The scrape is not a request of the portal's: timing it would make every scrape change the
# figures it reports.
METRICS_ROUTE = "metrics"


class RequestMetricsMiddleware:
    """First in MIDDLEWARE, so the time includes every other middleware. The route is read after
    the response, once the URL resolver has named it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None:
            route = match.view_name
        elif settings.STATIC_URL and request.path.startswith(settings.STATIC_URL):
            route = STATIC
        else:
            route = UNMATCHED
        if route != METRICS_ROUTE:
            observe(
                method=request.method or "",
                route=route,
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
        return response
