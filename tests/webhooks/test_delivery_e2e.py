"""Webhooks end to end: a real HTTP receiver on 127.0.0.1, subscribed through the API;
an integration registered from a ticket through the API, its access request decided step by
step through the API until approved and granted. Every event arrives once, in order per
object, with a valid signature and the ticket reference; with the receiver down (connections
refused) for a while, everything still arrives once, in order, after it comes back. Time is
moved with time_machine; the delivery task and the sweep are called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals import selectors
from approvals.models import AccessRequest, RequestStatus, StepStatus
from approvals.services import default_workflows_ensure
from examples.ticketing_client import verify_signature
from governance.webhooks import tasks
from governance.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from inventory.models import GrantStatus, Integration, IntegrationStatus, ResourceSystem, Scope

pytestmark = pytest.mark.django_db

TICKET = "CHG0012345"


@pytest.fixture
def scopes(db, roles):  # noqa: ANN001, ANN201
    default_workflows_ensure()
    graph = ResourceSystem.objects.create(code="msgraph", name="Microsoft Graph")
    return [Scope.objects.create(system=graph, name="Files.Read", code="msgraph:Files.Read", sensitivity="medium")]


@pytest.fixture
def cast(owner, reviewer, second_reviewer, security_reviewer, iam_admin):  # noqa: ANN001, ANN201
    return [reviewer, second_reviewer, security_reviewer, iam_admin]


def subscribe(token_client, iam_admin, receiver) -> str:  # noqa: ANN001
    response = token_client(iam_admin).post(
        "/api/v1/webhooks/",
        {
            "name": "ServiceNow",
            "target_url": receiver.url,
            "event_types": ["integration.*", "access_request.*", "grant.*"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["secret"]


def drive_flow(token_client, owner, cast) -> Integration:  # noqa: ANN001
    """Register from a ticket and decide every step through the API, as the people assigned."""
    created = token_client(owner).post(
        "/api/v1/integrations/",
        {
            "name": "Ticket bot",
            "kind": "agent",
            "purpose": "Answers tickets",
            "requested_scopes": ["msgraph:Files.Read"],
            "ticket_ref": TICKET,
            "submit": True,
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"register-{TICKET}",
    )
    assert created.status_code == 201, created.content
    integration = Integration.objects.get(pk=created.json()["id"])
    req = AccessRequest.objects.get(integration=integration)
    clients = {p.pk: token_client(p) for p in cast}
    for _ in range(10):
        req.refresh_from_db()
        if req.status != RequestStatus.IN_REVIEW:
            break
        step = req.steps.get(round=req.round, status=StepStatus.ACTIVE)
        who = next(
            p
            for p in cast
            if step.assignments.filter(user=p, is_open=True).exists()
            and selectors.step_may_decide(p, req, step) is None
        )
        decided = clients[who.pk].post(
            f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve", "comment": "ok"}, format="json"
        )
        assert decided.status_code == 201, decided.content
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    assert integration.grants.filter(status=GrantStatus.ACTIVE).exists()
    return integration


def assert_received_once_in_order(receiver, secret: str) -> None:  # noqa: ANN001
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert deliveries and all(d.status == DeliveryStatus.DELIVERED for d in deliveries)
    events = [r.event for r in receiver.received]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    assert set(ids) == {str(d.event_id) for d in deliveries}
    for r in receiver.received:
        assert verify_signature(secret, r.headers["X-Signature"], r.body, now=r.at)
        assert r.headers["X-Event-Id"] == r.event["id"] and r.headers["X-Event-Type"] == r.event["type"]
    # Per object, the receiver saw the events in the order they happened.
    position = {e["id"]: i for i, e in enumerate(events)}
    by_target: dict[tuple[str, str], list[int]] = {}
    for d in deliveries:
        by_target.setdefault((d.target_type, d.target_id), []).append(position[str(d.event_id)])
    for target, seen_at in by_target.items():
        assert seen_at == sorted(seen_at), f"events about {target} arrived out of order"
    # Every event carries the ticket reference.
    assert {e["ticket_ref"] for e in events} == {TICKET}
    types = {e["type"] for e in events}
    assert {"integration.registered", "access_request.created", "access_request.approved", "grant.created"} <= types


def test_receiver_gets_every_event_once_in_order_with_valid_signatures(
    token_client, owner, cast, iam_admin, scopes, receiver
):
    secret = subscribe(token_client, iam_admin, receiver)
    drive_flow(token_client, owner, cast)
    for d in WebhookDelivery.objects.order_by("id"):
        tasks.delivery_send(d.pk)  # what the on-commit task does for each new delivery
    tasks.deliveries_sweep()
    assert_received_once_in_order(receiver, secret)
    integration_events = [r.event for r in receiver.received if r.event["target"]["type"] == "inventory.integration"]
    assert integration_events[-1]["data"]["ticket_ref"] == TICKET


def test_receiver_down_for_a_while_still_gets_everything_once_in_order(
    token_client, owner, cast, iam_admin, scopes, receiver
):
    secret = subscribe(token_client, iam_admin, receiver)
    receiver.stop()
    drive_flow(token_client, owner, cast)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        tasks.deliveries_sweep()
        refused = WebhookAttempt.objects.filter(status_code__isnull=True)
        assert refused.exists() and not receiver.received
        first_refused = refused.first()
        assert first_refused is not None and first_refused.error == "unreachable"  # no socket error, no address
        # Later events about the same object wait behind the first one (order is kept).
        assert WebhookDelivery.objects.filter(attempts=0, status=DeliveryStatus.PENDING).exists()
        for minutes in (1, 3, 7):  # still down: each retry waits longer
            clock.move_to(start + timedelta(minutes=minutes))
            tasks.deliveries_sweep()
        assert not receiver.received
        first = WebhookDelivery.objects.order_by("id").first()
        assert first is not None and first.attempts >= 3 and first.next_attempt_at - start > timedelta(minutes=7)
        receiver.start()  # back, on the same port
        clock.move_to(start + timedelta(hours=2))
        tasks.deliveries_sweep()
        tasks.deliveries_sweep()  # a second sweep sends nothing twice
    assert_received_once_in_order(receiver, secret)


def test_delivery_is_given_up_after_a_day_and_an_admin_can_redeliver_it(token_client, iam_admin, receiver):
    from governance.webhooks.events import emit

    secret = subscribe(token_client, iam_admin, receiver)
    receiver.status = 500
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        emit(event_type="grant.expiring", target_type="inventory.grant", target_id="42", data={"ticket_ref": "INC1"})
        delivery = WebhookDelivery.objects.get()
        for hours in range(0, 27):
            clock.move_to(start + timedelta(hours=hours))
            tasks.deliveries_sweep()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 500
        assert delivery.attempt_log.count() == delivery.attempts and delivery.attempts > 5
        receiver.status = 204
        client = token_client(iam_admin)
        response = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/")
        assert response.status_code == 202 and response.json()["status"] == "pending"
        tasks.deliveries_sweep()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    last = receiver.received[-1]
    assert last.event["id"] == str(delivery.event_id) and last.event["ticket_ref"] == "INC1"
    assert verify_signature(secret, last.headers["X-Signature"], last.body, now=last.at)


def test_a_delivery_given_up_while_in_flight_is_not_brought_back_by_its_answer(
    token_client, iam_admin, receiver, monkeypatch
):
    from governance.webhooks import services
    from governance.webhooks.events import emit
    from governance.webhooks.models import WebhookSubscription

    subscribe(token_client, iam_admin, receiver)
    receiver.status = 500
    emit(event_type="grant.expiring", target_type="inventory.grant", target_id="42", data={})
    delivery = WebhookDelivery.objects.get()
    real_post = services._post

    def deleted_during_the_send(url, body, headers):  # noqa: ANN001, ANN202
        answer = real_post(url, body, headers)
        services.subscription_delete(actor=iam_admin, subscription=WebhookSubscription.objects.get())
        return answer

    monkeypatch.setattr(services, "_post", deleted_during_the_send)
    assert services.delivery_send(delivery_id=delivery.pk) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    # The deletion gave it up; the failed answer that came back afterwards does not requeue it.
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "Subscription deleted."
    assert delivery.attempts == 1 and delivery.attempt_log.count() == 1
    assert services.due_delivery_ids() == []
