from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import viewsets

from governance.api.problems import problem_response
from governance.api.serializers import AuditEventSerializer
from governance.filters import AuditEventFilter
from governance.models import AuditEvent
from governance.selectors import audit_events_for


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """The audit trail, read-only. Auditors, IAM admins and reviewers read all of it; others the
    events they performed or are accountable for."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return audit_events_for(self.request.user)


# Exempt from CSRF: a POST to an unknown API path must get the problem-details 404, not
# Django's HTML CSRF page (found by schemathesis).
@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    return problem_response(status=404, detail=f"No API endpoint at {request.path}.")
