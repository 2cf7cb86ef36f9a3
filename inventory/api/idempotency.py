"""``Idempotency-Key`` for ``POST /api/v1/integrations/`` (API.md): the same key and body from
the same caller within 24 h returns the first response and registers nothing new. The same
scheme as approvals' (kept in the cache; only successes are remembered). Inventory may not import
approvals, so it has its own copy; it belongs in ``governance.api`` (see the report)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.core.cache import cache
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from governance.exceptions import ValidationFailed

TTL_SECONDS = 24 * 3600
HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Same key and body within 24 h: the first response is returned and nothing new is created.",
)


def idempotent(request: Request, create: Callable[[], Response]) -> Response:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return create()
    if len(key) > 200:
        raise ValidationFailed.on("Idempotency-Key", "At most 200 characters.")
    digest = hashlib.sha256(key.encode()).hexdigest()
    cache_key = f"idempotency:{request.user.pk}:{request.path}:{digest}"
    body = hashlib.sha256(json.dumps(request.data, sort_keys=True, default=str).encode()).hexdigest()
    seen = cache.get(cache_key)
    if seen is not None:
        if seen["body"] != body:
            raise ValidationFailed.on("Idempotency-Key", "This key was already used with a different body.")
        return Response(seen["data"], status=seen["status"], headers={"Idempotent-Replayed": "true"})
    response = create()
    if response.status_code < 400:
        cache.set(cache_key, {"body": body, "data": response.data, "status": response.status_code}, TTL_SECONDS)
    return response
