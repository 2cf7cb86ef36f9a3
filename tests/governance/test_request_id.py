"""X-Request-ID: a client's id reaches the audit trail only if it is a UUID or a 128-bit token
(32 hex digits); anything else is replaced by an id of the portal's own, which is what the
trail records and the response returns."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import transaction

from governance import services
from governance.models import AuditEvent, EmailStatus, OutboundEmail, User

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")


def _retry_as_admin(client: Any, iam_admin: User, owner: User, **headers: str) -> tuple[Any, AuditEvent]:
    """An audited write over HTTP: an IAM admin retries a failed email."""
    with transaction.atomic():
        email = services.email_enqueue(
            key=f"k-{uuid.uuid4().hex}",
            recipient=owner,
            subject="s",
            template="governance_notice",
            context={"message": "m", "path": "/"},
        )
    assert email is not None
    OutboundEmail.objects.filter(pk=email.pk).update(status=EmailStatus.FAILED)
    client.force_login(iam_admin)
    response = client.post(f"/outbox/{email.pk}/retry/", **headers)
    assert response.status_code == 302
    return response, AuditEvent.objects.get(action="outbound_email.retried", target_id=str(email.pk))


@pytest.mark.parametrize(
    "incoming",
    [
        # Fixed values: pytest-xdist workers must collect the same test ids.
        "f36dbdc4-7feb-407a-b9d3-aca1e100bc38",
        "ACE9C376-CE66-400B-B010-44EA6CF99DAE",
        "a17159e9f4c5466cba6ca48ce48f7c02",
    ],
)
def test_a_uuid_or_128_bit_token_from_the_client_is_kept(
    client: Any, iam_admin: User, owner: User, incoming: str
) -> None:
    response, event = _retry_as_admin(client, iam_admin, owner, HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming
    assert event.request_id == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "req-123",
        "admin did not do this",
        "<script>alert(1)</script>",
        "0" * 31,
        "0" * 33,
        "g" * 32,
        "262e2aaf-793c-4478-b1e5-4d5014943f25\n",
        "f1e5d4ac-3118-485f-b15f-918b7fe1fae6x",
        "é" * 32,
        "",
    ],
)
def test_any_other_request_id_is_replaced_and_the_generated_one_recorded(
    client: Any, iam_admin: User, owner: User, incoming: str
) -> None:
    response, event = _retry_as_admin(client, iam_admin, owner, HTTP_X_REQUEST_ID=incoming)
    used = response["X-Request-ID"]
    assert used != incoming and GENERATED.fullmatch(used)
    assert event.request_id == used


def test_without_a_request_id_one_is_generated_and_returned(client: Any, iam_admin: User, owner: User) -> None:
    response, event = _retry_as_admin(client, iam_admin, owner)
    assert GENERATED.fullmatch(response["X-Request-ID"])
    assert event.request_id == response["X-Request-ID"]
