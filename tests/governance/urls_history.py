"""A test-only root URLconf: the portal's URLs plus a page and an API view that deactivate a user
through the service, to prove who django-simple-history records for each entry point."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from governance.models import User
from governance.services import user_deactivate
from governance.urls import handler400, handler403, handler404, handler500  # noqa: F401
from governance.urls import urlpatterns as portal_urlpatterns
from governance.web import signed_in


def page_deactivate(request: HttpRequest, username: str) -> HttpResponse:
    user_deactivate(actor=signed_in(request), user=get_object_or_404(User, username=username), reason="web")
    return HttpResponse("done")


@api_view(["POST"])
def api_deactivate(request: Request, username: str) -> Response:
    user_deactivate(actor=signed_in(request), user=get_object_or_404(User, username=username), reason="api")
    return Response({"done": True})


urlpatterns = [
    path("test-deactivate/<str:username>/", page_deactivate),
    path("api/v1/test-deactivate/<str:username>/", api_deactivate),
    *portal_urlpatterns,
]
