"""A test-only root URLconf: the portal's URLs plus views that write through a service and then
fail (a bug, a refusal) or succeed, to prove that an error response leaves nothing behind
(governance.transactions.AtomicWriteRequestMiddleware) whatever view answers it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from governance.services import api_token_issue
from governance.urls import handler400, handler403, handler404, handler500  # noqa: F401
from governance.urls import urlpatterns as portal_urlpatterns
from governance.web import signed_in


class Boom(Exception):
    pass


def _issue(request: HttpRequest | Request) -> None:
    user = signed_in(request)
    api_token_issue(actor=user, user=user, name="written before the failure")


@api_view(["POST"])
def api_write_then_bug(request: Request) -> Response:
    _issue(request)
    raise Boom("a bug after a service committed its own transaction")


@api_view(["POST"])
def api_write_then_refuse(request: Request) -> Response:
    _issue(request)
    return Response({"detail": "refused after writing"}, status=403)


@csrf_exempt
def page_write_then_refuse(request: HttpRequest) -> HttpResponse:
    _issue(request)
    return HttpResponse("form errors", status=400)


@csrf_exempt
def page_write_then_redirect(request: HttpRequest) -> HttpResponse:
    _issue(request)
    return redirect("/")


@csrf_exempt
def sign_in_refusal(request: HttpRequest) -> HttpResponse:
    """Stands for a refused sign-in that must keep its trace (throttling counters, audit)."""
    _issue(request)
    return HttpResponse("locked out", status=429)


urlpatterns = [
    path("api/v1/test-write-bug/", api_write_then_bug),
    path("api/v1/test-write-refuse/", api_write_then_refuse),
    path("test-write-refuse/", page_write_then_refuse),
    path("test-write-redirect/", page_write_then_redirect),
    path("accounts/login/test-refusal/", sign_in_refusal),
    *portal_urlpatterns,
]
