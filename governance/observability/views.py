"""/metrics: the Prometheus scrape.

Not a page of the portal: no session, no sign-in, no CSRF (GET only). Who may scrape is decided by
the deployment's settings alone (``METRICS_TOKEN``, ``METRICS_ALLOWED_NETWORKS``); without either
the endpoint is off. A refused scrape gets the same 404 as an endpoint that is off, so a probe
learns nothing, not even that metrics are served.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.multiprocess import MultiProcessCollector

from governance.observability import config
from governance.observability.registry import DatabaseCollector

log = logging.getLogger(__name__)


def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal:
        # The reason helps an operator whose scraper gets 404s; the token itself is never logged.
        log.info("Metrics scrape from %s refused: %s.", request.META.get("REMOTE_ADDR", "?"), refusal)
        raise Http404("Not found")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(scrape_registry())
    response = HttpResponse(content_type=content_type)
    if gzip_accepted(request.headers.get("Accept-Encoding", "")):
        body = gzip.compress(body)
        response["Content-Encoding"] = "gzip"
    response.content = body
    response["Cache-Control"] = "no-store"
    return response


def scrape_registry() -> CollectorRegistry:
    """What one scrape reads: the request latencies (this process's, or with
    PROMETHEUS_MULTIPROC_DIR every web process's files) and the database's figures."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        # The per-process collectors (CPU, memory, GC) of the default registry would describe
        # whichever worker answered: multiprocess mode serves only the shared files.
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(REGISTRY)
    registry.register(DatabaseCollector())
    return registry


def _refusal(request: HttpRequest) -> str:
    """Why this scrape may not read the metrics ("" when it may). With both settings, a scrape
    needs both: the right network and the token."""
    if not config.metrics_enabled():
        return "the endpoint is off (neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set)"
    networks = config.metrics_networks()
    if networks and not _address_allowed(request.META.get("REMOTE_ADDR", ""), networks):
        return "the address is not in METRICS_ALLOWED_NETWORKS"
    if settings.METRICS_TOKEN and not _token_matches(request, settings.METRICS_TOKEN):
        return "no bearer token, or not the right one"
    return ""


def _address_allowed(address: str, networks: tuple[config.Network, ...]) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(client.version == network.version and client in network for network in networks)


def _token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    # Digests of equal length: the comparison takes the same time whatever was sent.
    return hmac.compare_digest(
        hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
