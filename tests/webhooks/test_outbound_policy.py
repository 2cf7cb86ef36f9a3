"""Webhooks under the outbound policy: subscribing an internal, non-https or odd-port
target answers 400 naming ``target_url`` (API) or shows on the field (page); a receiver the
operator allow-listed is reached; a name that resolves to an internal address at send time is
refused with no connection made; the delivery log says what happened in plain words and nothing
about internal hosts; a redirect is not followed; a caller's secret is never shown, even in part.

DNS is the ``dns`` stub of this folder's conftest; receivers are real sockets on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket

import pytest
import time_machine

from governance import outbound
from governance.models import User
from governance.webhooks import services, tasks
from governance.webhooks.events import emit
from governance.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from tests.outbound_support import FakeDNS, Reply, closed_port, http_stub, listener

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"


def _body(url: str) -> dict[str, object]:
    return {"name": "Jira", "target_url": url, "event_types": ["grant.*"]}


@pytest.mark.parametrize(
    ("url", "resolves_to"),
    [
        ("https://127.0.0.1/hook", None),
        ("https://[::1]/hook", None),
        ("https://[::ffff:127.0.0.1]/hook", None),
        ("https://169.254.169.254/latest/meta-data/", None),
        ("https://10.0.0.5/hook", None),
        ("https://[fd00::5]/hook", None),
        ("https://jira.internal.example.com/hook", "10.0.0.5"),
        ("https://jira.internal.example.com/hook", "fe80::1"),
        ("https://jira.internal.example.com/hook", "::ffff:192.168.0.10"),
        ("https://jira.example.com:8443/hook", PUBLIC),  # port
        ("https://jira.example.com:22/hook", PUBLIC),
        ("http://jira.example.com/hook", PUBLIC),  # plain http to a host nobody allow-listed
    ],
)
def test_subscribing_a_forbidden_target_answers_400_naming_target_url(
    api_as, iam_admin: User, dns: FakeDNS, url: str, resolves_to: str | None
) -> None:  # noqa: ANN001
    if resolves_to:
        dns.set("jira.internal.example.com", resolves_to)
    dns.set("jira.example.com", PUBLIC)
    response = api_as(iam_admin).post("/api/v1/webhooks/", _body(url), format="json")
    assert response.status_code == 400, response.content
    problem = response.json()
    assert list(problem["errors"]) == ["target_url"]
    assert "refused by outbound policy" in problem["errors"]["target_url"][0].lower()
    assert resolves_to is None or resolves_to not in response.content.decode()  # the address is not told
    assert not WebhookSubscription.objects.exists()
    # The policy is no wall: a public https host on the default port is accepted.
    fixed = api_as(iam_admin).post("/api/v1/webhooks/", _body("https://jira.example.com/hook"), format="json")
    assert fixed.status_code == 201, fixed.content


def test_the_page_shows_the_refusal_on_the_target_url_field(web_as, iam_admin: User) -> None:  # noqa: ANN001
    page = web_as(iam_admin).post(
        "/webhooks/", {"name": "Meta", "target_url": "https://169.254.169.254/latest/", "event_types": "grant.*"}
    )
    assert page.status_code == 200 and not WebhookSubscription.objects.exists()
    html = page.content.decode()
    error = html.split('id="id_target_url-error"', 1)[1].split("</p>", 1)[0]
    assert "refused by outbound policy" in error.lower()
    assert 'aria-invalid="true"' in html.split('name="target_url"', 1)[1].split(">", 1)[0]


def test_the_allow_list_lets_a_local_receiver_through_and_only_it(api_as, iam_admin: User, receiver, settings) -> None:  # noqa: ANN001
    client = api_as(iam_admin)
    created = client.post("/api/v1/webhooks/", _body(receiver.url), format="json")
    assert created.status_code == 201, created.content
    emit(event_type="grant.expiring", target_type="inventory.grant", target_id="7", data={"ticket_ref": "INC7"})
    delivery = WebhookDelivery.objects.get()
    assert tasks.delivery_send(delivery.pk) == DeliveryStatus.DELIVERED and len(receiver.received) == 1
    # Another port of the same host is not in the allow-list.
    other = client.post("/api/v1/webhooks/", _body(f"http://127.0.0.1:{receiver.port + 1}/hook"), format="json")
    assert other.status_code == 400 and "target_url" in other.json()["errors"]
    # Without the operator's entry, the receiver itself is refused, also at send time.
    settings.OUTBOUND_ALLOWED_HOSTS = []
    assert client.post("/api/v1/webhooks/", _body(receiver.url), format="json").status_code == 400
    services.delivery_redeliver(actor=iam_admin, delivery=delivery)
    assert tasks.delivery_send(delivery.pk) == DeliveryStatus.PENDING and len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.last_error == "refused by outbound policy"


@pytest.mark.parametrize("internal", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_a_host_that_later_resolves_to_an_internal_address_gets_no_connection(
    iam_admin: User, dns: FakeDNS, settings, internal: str
) -> None:  # noqa: ANN001
    with listener() as lst:
        # Only the port rule is eased (the listener is not on 443); the address rule is intact.
        settings.OUTBOUND_ALLOWED_PORTS = [80, 443, lst.port]
        dns.set("hooks.example.com", PUBLIC)
        services.subscription_create(
            actor=iam_admin, name="Rebinder", target_url=f"https://hooks.example.com:{lst.port}/h", event_types=["*"]
        )
        dns.set("hooks.example.com", internal)  # DNS rebinding: now it points inside
        emit(event_type="grant.expiring", target_type="inventory.grant", target_id="1", data={})
        delivery = WebhookDelivery.objects.get()
        assert tasks.delivery_send(delivery.pk) == DeliveryStatus.PENDING
        assert lst.accepted == 0
    delivery.refresh_from_db()
    assert delivery.last_error == "refused by outbound policy" and delivery.last_status_code is None
    assert delivery.attempt_log.get().error == "refused by outbound policy"


def _send_one(iam_admin: User, url: str) -> WebhookDelivery:
    services.subscription_create(actor=iam_admin, name="Target", target_url=url, event_types=["*"])
    emit(event_type="grant.expiring", target_type="inventory.grant", target_id="1", data={})
    delivery = WebhookDelivery.objects.get()
    tasks.delivery_send(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _assert_no_internal_detail(text: str, port: int) -> None:
    for leak in ("127.0.0.1", str(port), "Errno", "errno", "Connection", "URLError", "socket", "Error"):
        assert leak not in text, f"{leak!r} in delivery log {text!r}"


def test_the_delivery_log_says_unreachable_for_a_closed_port_without_detail(api_as, iam_admin: User, settings) -> None:  # noqa: ANN001
    port = closed_port()
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    delivery = _send_one(iam_admin, f"http://127.0.0.1:{port}/hook")
    assert delivery.last_error == "unreachable" and delivery.status == DeliveryStatus.PENDING
    shown = api_as(iam_admin).get(f"/api/v1/webhook-deliveries/{delivery.pk}/").json()
    assert shown["last_error"] == "unreachable" and shown["attempt_log"][0]["error"] == "unreachable"
    _assert_no_internal_detail(shown["last_error"] + shown["attempt_log"][0]["error"], port)


def test_an_unexpected_failure_under_the_client_reaches_the_server_log_not_the_delivery_log(
    iam_admin: User, dns: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns.set("hooks.example.com", PUBLIC)

    def broken(url: str, **kwargs: object) -> None:
        raise RuntimeError("connect to 10.0.0.5:6379 failed")  # a bug's text naming an internal host

    monkeypatch.setattr(outbound, "post", broken)
    delivery = _send_one(iam_admin, "https://hooks.example.com/hook")
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    assert delivery.last_error == "outbound request failed"
    assert delivery.attempt_log.get().error == "outbound request failed"


def test_the_delivery_log_says_timed_out_when_the_receiver_never_answers(iam_admin: User, settings) -> None:  # noqa: ANN001
    silent = socket.socket()  # accepts at the kernel level, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    try:
        delivery = _send_one(iam_admin, f"http://127.0.0.1:{port}/hook")
    finally:
        silent.close()
    assert delivery.last_error == "timed out"
    _assert_no_internal_detail(delivery.last_error, port)


def test_a_redirect_is_not_followed_and_the_log_gives_the_status(iam_admin: User, settings) -> None:  # noqa: ANN001
    with http_stub() as first, http_stub() as second:
        settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
        first.reply = Reply(status=500)
        delivery = _send_one(iam_admin, f"http://127.0.0.1:{first.port}/hook")
        assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
        first.reply = Reply(status=307, headers={"Location": f"http://127.0.0.1:{second.port}/stolen"})
        with time_machine.travel(delivery.next_attempt_at, tick=False):  # the retry is due
            tasks.delivery_send(delivery.pk)
        delivery.refresh_from_db()
    assert len(first.seen) == 2 and second.seen == []
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 307
    assert delivery.last_error == "HTTP 307 (redirects are not followed)"


def test_a_callers_secret_is_never_shown_even_in_part(api_as, web_as, iam_admin: User, auditor: User, dns) -> None:  # noqa: ANN001
    dns.set("jira.example.com", PUBLIC)
    secret = "Qz8Kv3Lp9Wx2Rt6Yn4Hb7Jm5Fd1Sg0"
    created = api_as(iam_admin).post(
        "/api/v1/webhooks/", {**_body("https://jira.example.com/hook"), "secret": secret}, format="json"
    )
    assert created.status_code == 201 and created.json()["secret"] == secret  # the one time it is shown
    sub = WebhookSubscription.objects.get()
    fingerprint = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]
    assert sub.secret_fingerprint == fingerprint
    shown = [
        api_as(iam_admin).get("/api/v1/webhooks/").content.decode(),
        api_as(auditor).get(f"/api/v1/webhooks/{sub.pk}/").content.decode(),
        web_as(iam_admin).get("/webhooks/").content.decode(),
        web_as(auditor).get(f"/webhooks/{sub.pk}/").content.decode(),
    ]
    pieces = {secret[i : i + 5] for i in range(len(secret) - 4)}  # every 5 characters in a row
    for text in shown:
        assert fingerprint in text
        assert not [p for p in pieces if p in text], "part of the secret is shown"
    assert api_as(iam_admin).get(f"/api/v1/webhooks/{sub.pk}/").json()["secret_fingerprint"] == fingerprint
