"""A single-line field holds no control character (governance.validators): a name with a line
break was accepted, and every email about it then failed (Django refuses a header with one), so
reviewers were never told. Refused on every path that writes such a field; and the outbox makes
any subject safe, so one bad value already stored can never block notifications (delivered here
through a real SMTP server)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from approvals import services as approvals
from approvals.campaigns import services as campaigns
from approvals.campaigns.models import CampaignDefinition
from approvals.models import Workflow
from governance import services as kernel
from governance import tasks
from governance.exceptions import ValidationFailed
from governance.models import EmailStatus, OutboundEmail, User
from governance.validators import SINGLE_LINE_MESSAGE, header_safe
from governance.webhooks import services as webhooks
from inventory import services
from inventory.models import Integration
from tests.inventory.conftest import form_data
from tests.mail_support import Mailbox

pytestmark = pytest.mark.django_db

BODY = {"name": "Deal desk copilot", "kind": "agent", "purpose": "Prepares deal summaries."}
BROKEN = ["Deal desk\nBcc: everyone@example.com", "Deal\rdesk", "Deal\tdesk", "Deal\x85desk", "Deal\u2028desk"]


@pytest.mark.parametrize("name", BROKEN)
def test_a_name_with_a_control_character_is_refused_by_the_api(name: str, owner: User, api_as: Any) -> None:
    response = api_as(owner).post("/api/v1/integrations/", {**BODY, "name": name}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["name"] == [SINGLE_LINE_MESSAGE]
    assert not Integration.objects.exists()


def test_every_single_line_field_of_an_integration_is_checked(owner: User, api_as: Any) -> None:
    body = {
        **BODY,
        "vendor": "Acme\nAI",
        "ticket_ref": "CHG\r\n1",
        "workload_identity": "spiffe://example.org/a\nb",
        "tags": ["sales", "pi\nlot"],
        # A trailing line break is trimmed by the serializer; one inside the value is refused.
        "credentials": [{"type": "api_key", "identifier": "key-1\n"}, {"type": "api_key", "identifier": "key\n2"}],
    }
    response = api_as(owner).post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    # Named by the field (a list's item by its index: "tags.1"), by the serializer or the service.
    assert {key.split(".")[0] for key in errors} == {"vendor", "ticket_ref", "workload_identity", "tags", "credentials"}
    assert "credentials.1.identifier" in errors and "credentials.0.identifier" not in errors
    assert not Integration.objects.exists()


def test_the_registration_form_shows_the_error_next_to_the_name(owner: User, web_as: Any) -> None:
    data = form_data(owner.username, name="Deal desk\nBcc: x@example.com")
    response = web_as(owner).post(reverse("inventory:create"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name-error"' in html and "single line" in html
    assert not Integration.objects.exists()


def test_the_other_apps_refuse_control_characters_in_their_names(iam_admin: User, owner: User, catalog: Any) -> None:
    refusals = {
        "scope name": lambda: services.scope_save(
            actor=iam_admin, system=catalog["msgraph:User.Read"].system, values={"name": "Mail\n.Send"}
        ),
        "resource system name": lambda: services.resource_system_save(
            actor=iam_admin, values={"code": "crm", "name": "CRM\r\n"}
        ),
        "workflow step name": lambda: approvals.workflow_step_save(
            actor=iam_admin,
            workflow=Workflow(name="w"),
            step=None,
            values={"name": "IAM\nreview", "pool_kind": "group", "rule": "any", "sla_hours": 24},
        ),
        "request ticket": lambda: approvals.request_open(
            actor=owner, integration=Integration(), type="registration", scopes=[], ticket_ref="CHG\n1"
        ),
        "campaign definition name": lambda: campaigns.definition_save(
            actor=iam_admin, values={"name": "Quarterly\nreview", "owner": iam_admin}
        ),
        "campaign name": lambda: campaigns.campaign_create(
            actor=iam_admin, definition=CampaignDefinition(name="d", owner=iam_admin), name="Q1\nrun"
        ),
        "webhook name": lambda: webhooks.subscription_create(
            actor=iam_admin, name="Jira\nhook", target_url="https://jira.example.com/hook", event_types=["*"]
        ),
        "API token name": lambda: kernel.api_token_issue(actor=iam_admin, user=iam_admin, name="ci\nbot"),
    }
    for what, attempt in refusals.items():
        with pytest.raises(ValidationFailed) as refused:
            attempt()
        assert SINGLE_LINE_MESSAGE in [m for msgs in refused.value.errors.values() for m in msgs], what


def test_an_integration_whose_name_holds_a_line_break_still_gets_its_email(
    smtp: tuple[Mailbox, int], owner: User, iam_admin: User, make_integration: Any
) -> None:
    mailbox, _port = smtp
    integ = make_integration(owner, submit=True)
    # Stored before the rule existed (or written around it): the notification must still go.
    Integration.objects.filter(pk=integ.pk).update(name="Notes bot\r\nBcc: everyone@example.com")
    integ.refresh_from_db()
    services.integration_suspend(actor=iam_admin, integration=integ, reason="Leaked key")
    email = OutboundEmail.objects.get(key__startswith="integration-suspended:")
    assert "\n" not in email.subject and "\r" not in email.subject
    assert tasks.outbox_flush() == 1
    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.SENT
    (received,) = mailbox.received
    assert received["Subject"] == "Notes bot Bcc: everyone@example.com was suspended"
    assert received["Bcc"] is None and received["To"] == "owner@example.com"


def test_a_stored_subject_with_a_line_break_is_delivered_made_safe(smtp: tuple[Mailbox, int], owner: User) -> None:
    mailbox, _port = smtp
    with transaction.atomic():
        queued = kernel.email_enqueue(
            key="legacy-1",
            recipient=owner,
            subject="ok",
            template="governance_notice",
            context={"message": "A review waits for you.", "path": "/"},
        )
    assert queued is not None
    OutboundEmail.objects.filter(pk=queued.pk).update(subject="Review of\nBot waiting")  # an old row
    assert kernel.email_deliver(email_id=queued.pk) == EmailStatus.SENT
    assert mailbox.received[0]["Subject"] == "Review of Bot waiting"


def test_header_safe_makes_one_bounded_line() -> None:
    assert header_safe("a\r\n\tb  \x00 c") == "a b c"
    long = header_safe("x" * 500, max_length=200)
    assert len(long) == 200 and long.endswith("…")
