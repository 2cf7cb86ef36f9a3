"""Request latencies: one histogram by method, route and status class, observed by
``RequestMetricsMiddleware`` in every web process.

Labels are bounded whatever clients send: the route is the URL pattern's name (never the raw path,
whose ids would make a series per object), an unknown method is "other", the status is its class.
With PROMETHEUS_MULTIPROC_DIR in the environment (several gunicorn workers) prometheus-client
writes the observations to files there, which a scrape of any worker reads together.
"""

from __future__ import annotations

from prometheus_client import Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests that no URL pattern took: unknown paths, and answers given before routing (an HTTPS
# redirect, a body too large).
UNMATCHED = "unmatched"
# Static files, served by WhiteNoise before routing.
STATIC = "static"

REQUEST_SECONDS = Histogram(
    "governance_http_request_duration_seconds",
    "Time from the request reaching the portal to its response (before a streamed body is sent), "
    "by method, route (URL pattern name) and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def observe(*, method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(
        method=method if method in METHODS else "other",
        route=route or UNMATCHED,
        status=f"{status // 100}xx",
    ).observe(seconds)
