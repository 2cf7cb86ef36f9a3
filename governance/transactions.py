"""One transaction per write request: an error response means nothing changed, and leaves no
row behind.

Services are atomic one by one, but a request may call several (register, then submit) or fail
after one has committed (while building its response). So every unsafe request — a POST, PUT,
PATCH or DELETE to a page, a form, the API or the admin — runs in one database transaction here,
and any error response rolls all of it back: a 4xx (a refusal, the problem details of a domain
error, a form re-rendered with its errors) as much as a 5xx (an unhandled bug, which Django has
already turned into the 500 response by the time it reaches this middleware).

Why a middleware and not ``ATOMIC_REQUESTS``: Django's setting wraps the view only and rolls back
only when the view raises, so a form view that catches a domain error and answers 400 would
commit what the first service wrote; and it wraps reads too, which on SQLite (``BEGIN IMMEDIATE``)
would serialise every page view behind the write lock.

What still happens after a rollback, by design:
* ``transaction.on_commit`` callbacks (email delivery, webhook fan-out, django-q2 enqueueing)
  registered by the rolled-back services are discarded with them: nothing is announced that did
  not happen. After a commit they run as before, once the whole request has committed.
* The ``Idempotency-Key`` record (``governance.api.idempotency``) is claimed and committed
  before this transaction starts (that middleware comes first), and only a 2xx response is
  remembered, in the same transaction as the change.
* The session (and the messages stored in it) is saved by ``SessionMiddleware`` outside this
  transaction, so a message shown after a refused action survives.

Sign-in endpoints are left out (``EXEMPT_PATH_PREFIXES``): a refused login must leave its trace
(failed-attempt counters, lockouts and their audit events) even though it answers with an error.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Sign-in and single sign-on: failed attempts are recorded on purpose (throttling, audit).
# The token endpoint: a refused exchange is recorded (the runtime log) though it answers 400.
# The evidence pack: it only reads while it builds (minutes at scale: no write lock held that long)
# and its one write, the export's audit event, has a transaction of its own.
EXEMPT_PATH_PREFIXES = (
    "/accounts/login/",
    "/admin/login/",
    "/login/",
    "/complete/",
    "/oauth/",
    "/evidence/pack/",
    "/api/v1/evidence-pack/",
)


class AtomicWriteRequestMiddleware:
    """Wraps every unsafe request in ``transaction.atomic()`` and rolls it back when the response
    is an error (status >= 400). Placed after the idempotency middleware (see the module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS or request.path.startswith(EXEMPT_PATH_PREFIXES):
            return self.get_response(request)
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 400:
                # The view's exceptions were already turned into this response, so atomic()
                # would commit: mark the rollback ourselves.
                transaction.set_rollback(True)
        return response
