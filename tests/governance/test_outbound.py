"""The one outbound HTTP client (governance.outbound, the only way out of the portal): after DNS and at
send time it refuses every internal address (loopback, private, link-local and the metadata
address, CGNAT, multicast, unspecified, reserved, and IPv6 forms carrying such an IPv4 address)
and ports other than 80/443; connects to the very address it checked, naming the host in Host,
SNI and the certificate check; follows no redirect; caps size and total time; an operator's
allow-list reaches a local server; errors read the same whatever the internal detail.

DNS is a stub (``outbound.resolve`` is meant to be swapped); servers are real sockets on
127.0.0.1, reached through the allow-list or by a stubbed name."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme

from governance import outbound
from tests.outbound_support import FakeDNS, Reply, closed_port, http_stub, listener

PUBLIC = "93.184.215.14"


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    stub = FakeDNS()
    monkeypatch.setattr(outbound, "resolve", stub)
    return stub


def allow(settings, *entries: str) -> None:  # noqa: ANN001
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, *entries]


FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.5",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.10",
    "198.18.0.1",
    "::1",
    "::",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fe80::1%eth0",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.5",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001::1",  # Teredo
    "2001:db8::1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_a_name_resolving_to_an_internal_address_is_refused(dns: FakeDNS, address: str) -> None:
    assert outbound.address_problem(address) is not None
    dns.set("hooks.example.com", address)
    with pytest.raises(outbound.Refused) as refused:
        outbound.get("https://hooks.example.com/x")
    assert str(refused.value) == "refused by outbound policy" and refused.value.rule == "address"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
    ],
)
def test_internal_ip_literals_in_any_spelling_are_refused(url: str) -> None:
    with pytest.raises(outbound.Refused) as refused:
        outbound.get(url)
    assert refused.value.rule == "address"


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass_the_address_rule(address: str) -> None:
    assert outbound.address_problem(address) is None


def test_one_internal_address_among_public_ones_refuses_the_name(dns: FakeDNS) -> None:
    dns.set("hooks.example.com", PUBLIC, "10.0.0.5")
    with pytest.raises(outbound.Refused):
        outbound.post("https://hooks.example.com/x", json={})


@pytest.mark.parametrize("port", [22, 25, 6379, 8080, 8443, 9200])
def test_ports_other_than_80_and_443_are_refused(dns: FakeDNS, port: int) -> None:
    dns.set("hooks.example.com", PUBLIC)
    with pytest.raises(outbound.Refused) as refused:
        outbound.get(f"https://hooks.example.com:{port}/x")
    assert refused.value.rule == "port" and dns.lookups == []  # refused before any DNS


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
        "https:///x",
        "https://hooks.example.com/a b",
    ],
)
def test_other_schemes_credentials_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(outbound.Refused):
        outbound.get(url)


def test_require_https_refuses_plain_http_except_to_an_allow_listed_host(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    dns.set("hooks.example.com", PUBLIC)
    with pytest.raises(outbound.Refused) as refused:
        outbound.parse("http://hooks.example.com/", require_https=True)
    assert refused.value.rule == "scheme"
    allow(settings, "hooks.example.com")
    assert outbound.parse("http://hooks.example.com/", require_https=True).allow_listed


def test_dns_rebinding_to_loopback_is_refused_at_send_time_without_connecting(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    with listener() as lst:
        settings.OUTBOUND_ALLOWED_PORTS = [80, 443, lst.port]  # only the port rule is eased, not the address rule
        url = f"http://hooks.example.com:{lst.port}/x"
        dns.set("hooks.example.com", PUBLIC)
        assert outbound.vet(url).addresses == (PUBLIC,)  # what a check at subscription time saw
        dns.set("hooks.example.com", "127.0.0.1")  # the attacker's DNS answers differently now
        with pytest.raises(outbound.Refused):
            outbound.post(url, json={"event": 1})
        assert lst.accepted == 0
        # The control: with the name allow-listed, the same request does reach the listener.
        allow(settings, f"hooks.example.com:{lst.port}")
        with pytest.raises(outbound.OutboundError):
            outbound.post(url, json={"event": 1})  # the listener hangs up without answering
        assert lst.accepted == 1


def test_the_address_checked_is_the_address_connected_one_resolution_only(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    with http_stub() as server:
        allow(settings, f"hooks.example.com:{server.port}")
        answers = iter([["127.0.0.1"], ["10.255.255.1"]])  # a second lookup would get another address
        resolved: list[str] = []

        def rebinding(host: str, port: int) -> list[str]:
            resolved.append(host)
            return next(answers)

        outbound.resolve = rebinding  # restored by the dns fixture's monkeypatch
        response = outbound.get(f"http://hooks.example.com:{server.port}/p?q=1", headers={"X-Test": "yes"})
    assert response.status == 200 and resolved == ["hooks.example.com"]
    seen = server.seen[0]
    assert seen.path == "/p?q=1" and seen.headers["Host"] == f"hooks.example.com:{server.port}"
    assert seen.headers["X-Test"] == "yes" and seen.headers["User-Agent"] == outbound.USER_AGENT


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[object]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("hooks.example.com").configure_cert(context)
    with http_stub(tls=context) as server:
        yield server


def test_https_goes_to_the_pinned_address_with_sni_and_certificate_of_the_host_name(
    settings,  # noqa: ANN001
    dns: FakeDNS,
    ca: trustme.CA,
    tls_server,  # noqa: ANN001
) -> None:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    dns.set("hooks.example.com", "127.0.0.1")
    dns.set("other.example.com", "127.0.0.1")
    allow(settings, f"hooks.example.com:{tls_server.port}", f"other.example.com:{tls_server.port}")
    response = outbound.post(f"https://hooks.example.com:{tls_server.port}/h", json={"a": 1}, tls_context=client)
    assert response.ok and tls_server.seen[0].headers["Host"] == f"hooks.example.com:{tls_server.port}"
    assert tls_server.seen[0].body == b'{"a":1}' and tls_server.seen[0].headers["Content-Type"] == "application/json"
    # Same address, another name: the certificate is checked against the name in the URL.
    with pytest.raises(outbound.Unreachable) as bad_name:
        outbound.get(f"https://other.example.com:{tls_server.port}/h", tls_context=client)
    assert str(bad_name.value) == "TLS certificate not valid for the host"
    # A context that does not verify is not accepted; the default one does not trust the test CA.
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError):
        outbound.get(f"https://other.example.com:{tls_server.port}/h", tls_context=lax)
    with pytest.raises(outbound.Unreachable):
        outbound.get(f"https://hooks.example.com:{tls_server.port}/h")
    assert len(tls_server.seen) == 1


def test_a_redirect_is_returned_not_followed(settings) -> None:  # noqa: ANN001
    with http_stub() as first, http_stub() as second:
        allow(settings, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}")
        first.reply = Reply(status=302, headers={"Location": f"http://127.0.0.1:{second.port}/next"})
        response = outbound.post(f"http://127.0.0.1:{first.port}/start", json={})
    assert response.status == 302 and response.is_redirect and not response.ok
    assert response.headers["location"].endswith("/next") and second.seen == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_response_larger_than_the_cap_is_refused(settings, chunked: bool) -> None:  # noqa: ANN001
    with http_stub() as server:
        allow(settings, f"127.0.0.1:{server.port}")
        url = f"http://127.0.0.1:{server.port}/"
        server.reply = Reply(body=b"x" * 5000, chunked=chunked)
        assert outbound.get(url, max_bytes=5000).body == b"x" * 5000
        server.reply = Reply(body=b"x" * 5001, chunked=chunked)
        with pytest.raises(outbound.ResponseTooLarge) as too_large:
            outbound.get(url, max_bytes=5000)
        settings.OUTBOUND_MAX_RESPONSE_BYTES = 1000  # the default cap comes from settings
        with pytest.raises(outbound.ResponseTooLarge):
            outbound.get(url)
    assert str(too_large.value) == "response too large"


class _Dripper:
    """A server that accepts, then sends a status line one byte at a time, never finishing:
    every single read is quick, the whole response never comes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65536)
                while not self.stop.is_set():
                    conn.sendall(b"H")
                    self.stop.wait(0.05)
            except OSError:
                return


def test_total_time_is_capped_even_when_the_server_drips_bytes(settings) -> None:  # noqa: ANN001
    dripper = _Dripper()
    allow(settings, f"127.0.0.1:{dripper.port}")
    try:
        with pytest.raises(outbound.TimedOut) as timed_out:
            outbound.get(f"http://127.0.0.1:{dripper.port}/", timeout=0.5)
    finally:
        dripper.stop.set()
        dripper.sock.close()
    assert str(timed_out.value) == "timed out"


def test_a_server_that_never_answers_times_out(settings) -> None:  # noqa: ANN001
    silent = socket.socket()  # listens (the kernel completes the handshake) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    allow(settings, f"127.0.0.1:{port}")
    settings.OUTBOUND_TIMEOUT_SECONDS = 0.3  # the default total time comes from settings
    try:
        with pytest.raises(outbound.TimedOut):
            outbound.get(f"http://127.0.0.1:{port}/")
    finally:
        silent.close()


def test_failures_read_the_same_whatever_happened_underneath(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    port = closed_port()
    allow(settings, f"127.0.0.1:{port}")
    with pytest.raises(outbound.Unreachable) as closed:
        outbound.get(f"http://127.0.0.1:{port}/")
    with pytest.raises(outbound.Unreachable) as no_name:
        outbound.get("https://nowhere.example.com/")
    with pytest.raises(outbound.Refused) as internal:
        outbound.get("http://10.0.0.5/")
    assert str(closed.value) == str(no_name.value) == "unreachable"
    assert str(internal.value) == "refused by outbound policy"
    for error in (closed.value, no_name.value, internal.value):
        text = str(error)
        assert "127.0.0.1" not in text and "10.0.0.5" not in text and str(port) not in text and "Errno" not in text
    assert "Connection refused" in closed.value.reason or "ConnectionRefused" in closed.value.reason  # server log only


def test_allow_list_entries_name_a_host_or_a_host_and_port(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:8765", "Localhost", "[::1]:9000", "intranet.example.com"]
    dns.set("localhost", "127.0.0.1")
    dns.set("intranet.example.com", "10.1.2.3")
    assert outbound.vet("http://127.0.0.1:8765/").target.allow_listed
    assert outbound.vet("http://localhost/").addresses == ("127.0.0.1",)
    assert outbound.vet("http://[::1]:9000/").target.allow_listed
    assert outbound.vet("https://intranet.example.com/").addresses == ("10.1.2.3",)
    with pytest.raises(outbound.Refused):
        outbound.vet("http://127.0.0.1:8766/")  # another port of an allowed host:port
    with pytest.raises(outbound.Refused):
        outbound.vet("http://localhost:8765/")  # a host entry keeps the port rule
    with pytest.raises(outbound.Refused):
        outbound.vet("http://127.0.0.1/")  # the allow-list matches the URL's host as written


def test_get_and_post_carry_headers_and_json_and_return_status_headers_body(settings) -> None:  # noqa: ANN001
    with http_stub() as server:
        allow(settings, f"127.0.0.1:{server.port}")
        server.reply = Reply(
            status=201, headers={"Content-Type": "application/json", "X-Two": "a"}, body=b'{"ok": true}'
        )
        created = outbound.post(f"http://127.0.0.1:{server.port}/items", json={"name": "x"}, headers={"X-Key": "k"})
        server.reply = Reply(status=404, body=b"nope")
        missing = outbound.get(f"http://127.0.0.1:{server.port}/items/9")
        outbound.get(f"http://127.0.0.1:{server.port}/na%C3%AFve/caf\u00e9")  # an IRI path is sent encoded
    assert created.status == 201 and created.json() == {"ok": True} and created.headers["x-two"] == "a"
    assert (
        server.seen[0].method == "POST"
        and server.seen[0].body == b'{"name":"x"}'
        and server.seen[0].headers["X-Key"] == "k"
    )
    assert missing.status == 404 and missing.body == b"nope" and server.seen[1].method == "GET"
    assert server.seen[2].path == "/na%C3%AFve/caf%C3%A9"


def test_a_name_with_several_addresses_falls_back_to_the_next_vetted_one(settings, dns: FakeDNS) -> None:  # noqa: ANN001
    with http_stub() as server:
        dns.set("multi.example.com", "127.0.0.2", "127.0.0.1")  # nothing listens on 127.0.0.2 at that port
        allow(settings, f"multi.example.com:{server.port}")
        response = outbound.get(f"http://multi.example.com:{server.port}/")
    assert response.ok and len(server.seen) == 1
