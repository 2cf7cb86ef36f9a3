"""``Idempotency-Key`` for every POST under /api/v1/ that creates something: the same key and body from the
same caller within 24 h returns the first response again and creates nothing new; the same key
with another body is a 422; a second request while the first is still running is a 409.

Done as middleware so that every app's creating endpoint gets it without doing anything. The
caller is the API token (hash of the ``Authorization`` header) or the session's user. Only
successful (2xx) responses are kept, so a refused request can be fixed and retried with its key.
The view runs in one transaction with the remembered response (a 5xx rolls it back), so a crash
between the change and the record cannot let a retry create the object twice.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from governance.api.problems import problem_response
from governance.models import IdempotencyRecord, IdempotencyStatus

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
# A request that died half-way leaves an in-progress record; after this it no longer blocks.
STALE_IN_PROGRESS = timedelta(minutes=5)
MAX_KEY_LENGTH = 200
_CHUNK = 64 * 1024
# POSTs that ask a question about now rather than create something: answered afresh every time
# (a remembered "allow" replayed after a suspension would be a stale allow; an evidence pack is
# measured when asked for, its export audited each time, and a ZIP is no response to remember).
FRESH_ANSWER_PATHS = ("/api/v1/decisions/", "/api/v1/evidence-pack/")


def _caller(request: HttpRequest) -> str:
    # Split as the token authentication splits it (on any whitespace), so that every header it
    # accepts as a token is that token's caller here too; a header without a key names a caller
    # that the view refuses (401), never a crash.
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if parts and parts[0].lower() == "token":
        return "t:" + hashlib.sha256(" ".join(parts[1:]).encode()).hexdigest()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"u:{user.pk}"
    return ""


def _body_hash(request: HttpRequest) -> str:
    """The hash of the path and the body that a replay must repeat. A body larger than what is
    read into memory (a file upload) is hashed as it is copied to a temporary file, which the view
    then reads in its place: the upload is never held in memory."""
    digest = hashlib.sha256(request.path.encode() + b"\n")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0):
        digest.update(request.body)
        return digest.hexdigest()
    spool = tempfile.SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
    remaining = length
    while remaining > 0:
        chunk = request.read(min(_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        spool.write(chunk)
        remaining -= len(chunk)
    spool.seek(0)
    # The view reads the copy as if nothing had read the request yet.
    request._stream = spool  # type: ignore[assignment]
    request._read_started = False  # type: ignore[attr-defined]
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if request.method != "POST" or not key or not request.path.startswith("/api/v1/"):
            return self.get_response(request)
        if request.path.startswith(FRESH_ANSWER_PATHS):
            return self.get_response(request)
        caller = _caller(request)
        if not caller:
            return self.get_response(request)  # not authenticated: the view answers 401
        # Printable ASCII (as the schema's pattern says): no control character in a stored key.
        if len(key) > MAX_KEY_LENGTH or any(not " " <= ch <= "~" for ch in key):
            return problem_response(
                status=400,
                detail=f"{HEADER}: at most {MAX_KEY_LENGTH} printable ASCII characters.",
                errors={HEADER: [f"At most {MAX_KEY_LENGTH} printable ASCII characters."]},
            )
        body_hash = _body_hash(request)
        record, replay = self._claim(caller, key, body_hash, request)
        if replay is not None:
            return replay
        assert record is not None
        kept = False
        try:
            # The change and the remembered response commit together: a worker that dies after
            # the change cannot leave a key that a retry would run again (and create twice).
            with transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)  # nothing half-applied by a failed request
                elif 200 <= response.status_code < 300 and not getattr(response, "streaming", False):
                    kept = bool(
                        IdempotencyRecord.objects.filter(pk=record.pk).update(
                            status=IdempotencyStatus.DONE,
                            response_status=response.status_code,
                            response_body=response.content.decode("utf-8", errors="replace"),
                            response_content_type=response.get("Content-Type", "application/json"),
                        )
                    )
        finally:
            if not kept:
                IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return response

    def _claim(
        self, caller: str, key: str, body_hash: str, request: HttpRequest
    ) -> tuple[IdempotencyRecord | None, HttpResponse | None]:
        now = timezone.now()
        for _ in range(2):
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        caller=caller,
                        key=key,
                        method="POST",
                        path=request.path[:500],
                        body_hash=body_hash,
                        created_at=now,
                    )
                return record, None
            except IntegrityError:
                pass
            existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
            if existing is None:
                continue  # deleted in between: try again
            expired = existing.created_at < now - TTL
            abandoned = (
                existing.status == IdempotencyStatus.IN_PROGRESS and existing.created_at < now - STALE_IN_PROGRESS
            )
            if expired or abandoned:
                IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
                continue
            if existing.body_hash != body_hash:
                return None, problem_response(
                    status=422,
                    detail=f"This {HEADER} was already used with a different request body or path.",
                    type_slug="idempotency-key-reused",
                    errors={HEADER: ["Already used with a different request body or path."]},
                )
            if existing.status == IdempotencyStatus.IN_PROGRESS:
                response = problem_response(
                    status=409,
                    detail=f"A request with this {HEADER} is still being processed; retry shortly.",
                    type_slug="idempotency-in-progress",
                )
                response["Retry-After"] = "1"
                return None, response
            replay = HttpResponse(
                existing.response_body,
                status=existing.response_status or 200,
                content_type=existing.response_content_type or "application/json",
            )
            replay["Idempotent-Replayed"] = "true"
            return None, replay
        return None, problem_response(status=409, detail=f"Could not reserve this {HEADER}; retry shortly.")


def purge_expired() -> int:
    """Periodic: forget records older than 24 h."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - TTL).delete()
    return deleted
