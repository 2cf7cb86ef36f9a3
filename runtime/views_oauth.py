"""``POST /oauth/token``: the token exchange endpoint (RFC 8693 over RFC 6749's token endpoint).

A plain Django view, not the API: OAuth clients speak form-encoded requests and RFC 6749
section 5.2 JSON errors, not problem details. It is exempt from CSRF (no cookie is ever used)
and from the atomic-request middleware (``/oauth/``): a refusal answers 400 and must still leave
its record in the token log, so ``runtime.exchange.token_exchange`` manages its own writes.
Responses are never cached (``Cache-Control: no-store``, ``Pragma: no-cache``, RFC 6749 5.1).

A small per-client-address rate limit (``RUNTIME_TOKEN_RATE_PER_MINUTE``, in the cache) keeps a
misbehaving client from filling the log; over the limit the endpoint answers 429 with
``Retry-After`` and records nothing. Every other answer but 405 (not a token request) is recorded,
a malformed request too.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from governance import context
from runtime.errors import INVALID_REQUEST, ExchangeRefused
from runtime.exchange import token_exchange
from runtime.log import TokenAttempt, record
from runtime.models import TokenOutcome

FORM_TYPE = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(body: dict[str, Any], status: int, **headers: str) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for name, value in {**_NO_STORE, **headers}.items():
        response[name] = value
    return response


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return _json({"error": error, "error_description": description}, status)


def _over_rate_limit(request: HttpRequest) -> bool:
    """Fixed one-minute windows per client address; 0 disables the limit."""
    limit = settings.RUNTIME_TOKEN_RATE_PER_MINUTE
    if not limit:
        return False
    address = context.current().client_ip or request.META.get("REMOTE_ADDR", "")
    key = f"runtime:token-rate:{address}:{int(time.time() // 60)}"
    if cache.add(key, 1, timeout=70):
        return False
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=70)
        return False


def _form(request: HttpRequest) -> dict[str, str] | ExchangeRefused:
    """The form's parameters, each once (RFC 6749 section 3.2), or the refusal to answer."""
    # Tokens in a URL end up in access logs: refused first, whatever the body says.
    if request.GET:
        return ExchangeRefused(INVALID_REQUEST, "Send the parameters in the request body, not in the URL.")
    content_type = request.content_type or ""
    if content_type.lower() != FORM_TYPE:
        return ExchangeRefused(INVALID_REQUEST, f"Send the parameters as {FORM_TYPE}.")
    params: dict[str, str] = {}
    try:
        form = list(request.POST.lists())
    except (RequestDataTooBig, TooManyFieldsSent):
        return ExchangeRefused(INVALID_REQUEST, "The request body is too large or has too many parameters.")
    for name, values in form:
        if len(values) > 1:
            return ExchangeRefused(INVALID_REQUEST, f"The parameter {name[:40]} is given more than once.")
        params[name] = values[0]
    return params


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    """Exchange a workload token for an access token; see ``runtime.exchange``."""
    if request.method != "POST":
        response = _error(INVALID_REQUEST, "The token endpoint accepts POST only.", status=405)
        response["Allow"] = "POST"
        return response
    if _over_rate_limit(request):
        return _json(
            {"error": "slow_down", "error_description": "Too many token requests from this address; wait a minute."},
            429,
            **{"Retry-After": "60"},
        )
    params = _form(request)
    if isinstance(params, ExchangeRefused):
        record(TokenAttempt(), outcome=TokenOutcome.REFUSED, error=params.error, reason=params.reason)
        return _error(params.error, params.description, params.status)
    try:
        body = token_exchange(params)
    except ExchangeRefused as refusal:
        return _error(refusal.error, refusal.description, refusal.status)
    return _json(body, 200)
