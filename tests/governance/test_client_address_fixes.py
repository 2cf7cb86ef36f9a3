"""The client's address is normalised before the audit trail hashes it: the text hashed is the
text PostgreSQL's ``inet`` column stores and returns, so an event written from an IPv6 client
verifies on PostgreSQL as it does on SQLite; text that is no address is no address (None)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from governance.audit import EventSpec, audit_record, audit_record_many, verify_chain
from governance.context import client_ip, current, normalised_address
from governance.middleware import RequestContextMiddleware
from governance.models import AuditEvent, User

# (as a client or proxy may write it, normalised)
FORMS = [
    ("192.0.2.1", "192.0.2.1"),
    (" 10.0.0.7 ", "10.0.0.7"),
    ("2001:DB8::0:1", "2001:db8::1"),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
    ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
    ("FE80::1", "fe80::1"),
    ("::1", "::1"),
    ("::", "::"),
    ("::ffff", "::ffff"),
    ("64:ff9b::192.0.2.1", "64:ff9b::c000:201"),
    # IPv4-mapped (a dual-stack socket's IPv4 client): the IPv4 address.
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("::FFFF:c000:0201", "192.0.2.1"),
    ("::ffff:0:0", "0.0.0.0"),
    # IPv4-compatible: PostgreSQL keeps the dotted tail.
    ("::192.0.2.1", "::192.0.2.1"),
    ("::0.1.0.0", "::0.1.0.0"),
    ("0:0:0:0:0:0:1.2.3.4", "::1.2.3.4"),
    ("::1:ffff:1.2.3.4", "::1:ffff:102:304"),
    # A zone, which ``inet`` refuses, and a port a proxy appended: dropped.
    ("fe80::1%eth0", "fe80::1"),
    ("[2001:DB8::1]:8443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("203.0.113.7:51234", "203.0.113.7"),
]
NOT_ADDRESSES = ["", "unknown", "_hidden", "example.com", "192.0.2.256", "010.0.0.1", "1.2.3", "2001:db8::1::2", "[::1"]


@pytest.mark.parametrize(("given", "normalised"), FORMS)
def test_an_address_is_normalised(given: str, normalised: str) -> None:
    assert normalised_address(given) == normalised
    assert ipaddress.ip_address(normalised)  # still an address any parser reads


@pytest.mark.parametrize("given", NOT_ADDRESSES)
def test_text_that_is_no_address_is_none(given: str) -> None:
    assert normalised_address(given) is None


def _inet(text: str) -> str:
    """What PostgreSQL's ``inet`` makes of ``text``, as read back through Django's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::inet", [text])
        (value,) = cursor.fetchone()
    return str(value)


# Forms PostgreSQL does not read as given (a space, a zone, a port) or reads as another
# spelling of the address (IPv4-mapped: it writes ``::ffff:192.0.2.1``, Python ``::ffff:c000:201``).
NOT_READ_AS_GIVEN = {" 10.0.0.7 ", "fe80::1%eth0", "[2001:DB8::1]:8443", "[2001:db8::1]", "203.0.113.7:51234"}
MAPPED = {"::ffff:192.0.2.1", "::FFFF:c000:0201", "::ffff:0:0"}


@pytest.mark.django_db
def test_postgresql_stores_the_normalised_text_unchanged() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's inet column")
    for given, normalised in FORMS:
        assert _inet(normalised) == normalised, given
        if given not in NOT_READ_AS_GIVEN | MAPPED:
            assert _inet(given) == normalised, given  # the same spelling as PostgreSQL's
    assert _inet("::ffff:192.0.2.1") == "::ffff:192.0.2.1" != ipaddress.ip_address("::ffff:192.0.2.1").compressed


def _request(factory: RequestFactory, **meta: str) -> HttpRequest:
    request = factory.get("/")
    request.META.update(meta)
    return request


def test_the_request_address_is_normalised(settings: Any, rf: RequestFactory) -> None:
    assert client_ip(_request(rf, REMOTE_ADDR="2001:DB8::0:1")) == "2001:db8::1"
    assert client_ip(_request(rf, REMOTE_ADDR="::ffff:192.0.2.1")) == "192.0.2.1"
    assert client_ip(_request(rf, REMOTE_ADDR="")) is None
    # An X-Forwarded-For a client sends is not believed unless a proxy is trusted to set it.
    assert client_ip(_request(rf, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9")) == "10.0.0.1"
    settings.TRUST_X_FORWARDED_FOR = True
    spoofed_then_proxy = "203.0.113.1, 2001:DB8:0::7"
    assert client_ip(_request(rf, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=spoofed_then_proxy)) == "2001:db8::7"
    assert client_ip(_request(rf, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, unknown")) is None


ADDRESSES_OF_EVENTS = ["2001:DB8::0:1", "::ffff:192.0.2.1", "::192.0.2.1", "FE80::1%eth0", "192.0.2.44"]


@pytest.mark.django_db
def test_events_from_such_addresses_verify(make_user: Callable[..., User], rf: RequestFactory, settings: Any) -> None:
    """Events written through the request middleware from each address, one at a time and in
    bulk, and then from a trusted proxy's X-Forwarded-For: the chain verifies."""
    user = make_user("addressed")

    def audited(request: HttpRequest) -> HttpResponse:
        with transaction.atomic():
            audit_record(actor=user, action="test.addressed", target=user, after={"ip": current().client_ip})
            audit_record_many(actor=user, events=[EventSpec(action="test.addressed_many", target=user)] * 3)
        return HttpResponse()

    middleware = RequestContextMiddleware(audited)
    for address in ADDRESSES_OF_EVENTS:
        middleware(_request(rf, REMOTE_ADDR=address))
    settings.TRUST_X_FORWARDED_FOR = True
    middleware(_request(rf, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="2001:DB8::0:2"))
    middleware(_request(rf, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not an address"))

    stored = list(AuditEvent.objects.filter(action="test.addressed").order_by("id").values_list("client_ip", flat=True))
    assert stored == ["2001:db8::1", "192.0.2.1", "::192.0.2.1", "fe80::1", "192.0.2.44", "2001:db8::2", None]
    assert AuditEvent.objects.filter(action="test.addressed_many").count() == 3 * len(stored)
    checked, broken = verify_chain()
    assert broken is None and checked == AuditEvent.objects.count()
