"""A test-only root URLconf: the portal's URLs plus views that fail, to prove the 500 paths."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from governance.urls import handler400, handler403, handler404, handler500  # noqa: F401
from governance.urls import urlpatterns as portal_urlpatterns


class Boom(Exception):
    pass


@api_view(["GET"])
def api_boom(request: Request) -> Response:
    raise Boom("a bug in an API view")


def page_boom(request: HttpRequest) -> HttpResponse:
    raise Boom("a bug in a page")


urlpatterns = [
    path("api/v1/test-boom/", api_boom),
    path("test-boom/", page_boom),
    *portal_urlpatterns,
]
