"""Webhook subscriptions through the API and the pages: only IAM admins manage them, auditors
read, everyone else sees nothing (403 on lists, 404 on one); the secret is shown once and never
stored in clear; lists run a fixed number of queries; audit events become outbox rows in the
same transaction and only for matching, active subscriptions; a tampered signature is refused
by the example's verification code."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from examples.ticketing_client import verify_signature
from governance.audit import audit_record
from governance.exceptions import ValidationFailed
from governance.models import AuditEvent
from governance.webhooks import events, services
from governance.webhooks import secrets as webhook_secrets
from governance.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

BODY = {"name": "Jira", "target_url": "https://jira.example.com/hook", "event_types": ["integration.*"]}


def make_sub(admin, patterns=("integration.*",)) -> WebhookSubscription:  # noqa: ANN001
    sub, _secret = services.subscription_create(
        actor=admin, name="Jira", target_url="https://jira.example.com/h", event_types=patterns
    )
    return sub


def test_admin_creates_subscription_and_sees_the_secret_only_once(api_as, iam_admin):
    client = api_as(iam_admin)
    created = client.post("/api/v1/webhooks/", BODY, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    sub = WebhookSubscription.objects.get()
    assert secret not in sub.secret_encrypted and webhook_secrets.decrypt(sub.secret_encrypted) == secret
    listed = client.get("/api/v1/webhooks/").json()["results"][0]
    one = client.get(f"/api/v1/webhooks/{sub.pk}/").json()
    assert "secret" not in listed and "secret" not in one and secret not in str(listed) + str(one)
    assert AuditEvent.objects.filter(action="webhook_subscription.created", target_id=str(sub.pk)).exists()


def test_unknown_event_type_pattern_is_refused_next_to_the_field(api_as, iam_admin):
    response = api_as(iam_admin).post("/api/v1/webhooks/", {**BODY, "event_types": ["integraton.*"]}, format="json")
    assert response.status_code == 400 and "event_types" in response.json()["errors"]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("who", ["outsider", "reviewer", "owner"])
def test_non_admins_cannot_list_read_create_or_delete_subscriptions(request, api_as, iam_admin, who):
    sub = make_sub(iam_admin)
    client = api_as(request.getfixturevalue(who))
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert client.get(f"/api/v1/webhooks/{sub.pk}/").status_code == 404
    assert client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/").status_code == 404
    assert client.post("/api/v1/webhooks/", BODY, format="json").status_code == 403
    assert client.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 404
    assert WebhookSubscription.objects.get().status == "active"


def test_auditor_reads_webhooks_but_cannot_change_them(api_as, web_as, iam_admin, auditor):
    sub = make_sub(iam_admin)
    with transaction.atomic():
        audit_record(actor=iam_admin, action="integration.changed", target=iam_admin)
    delivery = WebhookDelivery.objects.get()
    client = api_as(auditor)
    assert client.get("/api/v1/webhooks/").status_code == 200
    assert client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/").json()["count"] == 1
    assert client.post("/api/v1/webhooks/", BODY, format="json").status_code == 403
    assert client.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 403
    assert client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/").status_code == 403
    page = web_as(auditor).get(f"/webhooks/{sub.pk}/")
    assert page.status_code == 200 and b"Delete this subscription" not in page.content
    assert (
        web_as(auditor)
        .post("/webhooks/", {"name": "x", "target_url": "https://x.example", "event_types": "*"})
        .status_code
        == 403
    )
    assert WebhookSubscription.objects.count() == 1


def test_outsider_gets_404_on_webhook_pages(web_as, iam_admin, outsider):
    sub = make_sub(iam_admin)
    client = web_as(outsider)
    assert client.get("/webhooks/").status_code == 404
    assert client.get(f"/webhooks/{sub.pk}/").status_code == 404
    assert client.post(f"/webhooks/{sub.pk}/delete/").status_code == 404


def test_admin_page_creates_shows_secret_once_and_keeps_input_on_error(web_as, iam_admin):
    client = web_as(iam_admin)
    bad = client.post("/webhooks/", {"name": "SN", "target_url": "https://sn.example.com/h", "event_types": "nope.*"})
    assert bad.status_code == 200 and b'aria-invalid="true"' in bad.content and b"sn.example.com" in bad.content
    ok = client.post(
        "/webhooks/",
        {"name": "SN", "target_url": "https://sn.example.com/h", "event_types": "integration.*, grant.revoked"},
    )
    sub = WebhookSubscription.objects.get()
    secret = webhook_secrets.decrypt(sub.secret_encrypted)
    assert secret.encode() in ok.content and sub.event_types == ["grant.revoked", "integration.*"]
    again = client.get("/webhooks/")
    assert secret.encode() not in again.content and sub.secret_fingerprint.encode() in again.content


def test_delete_stops_the_subscription_and_gives_up_what_is_queued(api_as, iam_admin):
    sub = make_sub(iam_admin)
    with transaction.atomic():
        audit_record(actor=iam_admin, action="integration.registered", target=iam_admin)
    assert api_as(iam_admin).delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 204
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    with transaction.atomic():
        audit_record(actor=iam_admin, action="integration.changed", target=iam_admin)
    assert WebhookDelivery.objects.count() == 1
    assert api_as(iam_admin).get(f"/api/v1/webhooks/{sub.pk}/").status_code == 404


def test_audit_events_become_deliveries_only_for_matching_patterns(iam_admin):
    a = make_sub(iam_admin, ["integration.*"])
    b = make_sub(iam_admin, ["access_request.decided"])
    with transaction.atomic():
        audit_record(actor=iam_admin, action="integration.suspended", target=iam_admin)
        audit_record(actor=iam_admin, action="access_request.approved", target=iam_admin)
        audit_record(actor=iam_admin, action="access_request.created", target=iam_admin)
        audit_record(actor=iam_admin, action="api_token.issued", target=iam_admin)
    assert list(a.deliveries.values_list("event_type", flat=True)) == ["integration.suspended"]
    assert list(b.deliveries.values_list("event_type", flat=True)) == ["access_request.approved"]


def test_outbox_row_rolls_back_with_the_change(iam_admin):
    make_sub(iam_admin, ["*"])
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=iam_admin, action="integration.retired", target=iam_admin)
        raise RuntimeError("the change failed")
    assert not WebhookDelivery.objects.exists()


def test_with_no_subscription_a_bulk_audit_costs_one_extra_query(iam_admin):
    from governance.audit import EventSpec, audit_record_many

    specs = [EventSpec(action="grant.expired", target_type="inventory.grant", target_id=str(i)) for i in range(300)]
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        audit_record_many(actor=iam_admin, events=specs)
    assert sum("webhooks_webhooksubscription" in q["sql"] for q in ctx.captured_queries) == 1
    assert not any("webhooks_webhookdelivery" in q["sql"] for q in ctx.captured_queries)


def test_unknown_patterns_are_refused_and_known_ones_accepted(iam_admin):
    assert events.pattern_problem("integration.*") is None
    assert events.pattern_problem("access_request.decided") is None
    assert events.pattern_problem("*") is None
    assert events.pattern_problem("grant.revokd")
    assert events.pattern_problem("DROP TABLE")
    with pytest.raises(ValidationFailed):
        services.subscription_create(actor=iam_admin, name="x", target_url="https://x.example", event_types=["x.*"])


def test_deliveries_list_runs_a_fixed_number_of_queries(api_as, iam_admin, django_assert_num_queries):
    sub = make_sub(iam_admin)
    client = api_as(iam_admin)

    def add(n: int) -> None:
        with transaction.atomic():
            for _ in range(n):
                audit_record(actor=iam_admin, action="integration.changed", target=iam_admin)
        for d in WebhookDelivery.objects.filter(attempts=0):
            d.attempt_log.create(status_code=500, error="HTTP 500")

    add(2)
    with CaptureQueriesContext(connection) as small:
        assert client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/").status_code == 200
    add(20)
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get(f"/api/v1/webhooks/{sub.pk}/deliveries/").json()["count"] == 22


def test_tampered_body_or_signature_or_stale_timestamp_is_refused():
    secret = webhook_secrets.generate()
    body = b'{"id":"e1","type":"grant.revoked","ticket_ref":"CHG1"}'
    now = int(time.time())
    header = webhook_secrets.sign(secret, now, body)
    assert verify_signature(secret, header, body)
    assert not verify_signature(secret, header, body.replace(b"CHG1", b"CHG2"))
    assert not verify_signature(secret, header[:-1] + ("0" if header[-1] != "0" else "1"), body)
    assert not verify_signature("whsec_other", header, body)
    assert not verify_signature(secret, webhook_secrets.sign(secret, now - 3600, body), body)
    assert not verify_signature(secret, "garbage", body)
