#!/usr/bin/env python3
"""A ticketing system's side of the portal, with the standard library only.

What ServiceNow or Jira does, in a few calls:

1. ``register`` — a ticket asks for a new AI integration: POST /api/v1/integrations/ with the
   ticket's number in ``ticket_ref`` and an ``Idempotency-Key`` derived from the ticket, so a
   retried call (timeout, crash) never registers it twice.
2. ``follow`` — find the access request the portal opened for it: GET /api/v1/access-requests/
   ?ticket_ref=<ticket>.
3. ``receive`` — a tiny HTTP receiver for the portal's webhooks: checks ``X-Signature``
   (``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the subscription's secret),
   refuses stale or tampered deliveries, ignores duplicates by event id, and stops when the
   ticket's request is decided.
4. ``subscribe`` — (an IAM admin's token) subscribe a receiver URL to events; prints the secret once.

Examples (against ``make run``; tokens from ``manage.py issue_api_token USERNAME``)::

    python examples/ticketing_client.py subscribe --token $ADMIN --url http://127.0.0.1:8765/
    python examples/ticketing_client.py register  --token $ALICE --ticket CHG0012345
    python examples/ticketing_client.py follow    --token $ALICE --ticket CHG0012345
    python examples/ticketing_client.py receive   --port 8765 --secret whsec_... --ticket CHG0012345
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TOLERANCE_SECONDS = 300
DECIDED = {
    "access_request.approved",
    "access_request.rejected",
    "access_request.changes_requested",
    "access_request.withdrawn",
}


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True when ``header`` (the ``X-Signature`` value) signs ``body`` with ``secret`` and its
    timestamp is within ``tolerance`` seconds of ``now`` (replay protection)."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


def call(method: str, url: str, token: str, data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def register(base_url: str, token: str, ticket: str, name: str, scopes: list[str]) -> tuple[int, Any]:
    """Register (and submit) an integration for ``ticket``; safe to call again for the same ticket."""
    data = {
        "name": name,
        "kind": "agent",
        "purpose": f"Requested in {ticket}",
        "environment": "production",
        "data_classifications": ["internal"],
        "autonomy": "human_in_loop",
        "requested_scopes": scopes,
        "ticket_ref": ticket,
        "submit": True,
    }
    return call("POST", f"{base_url}/api/v1/integrations/", token, data, {"Idempotency-Key": f"register-{ticket}"})


def follow(base_url: str, token: str, ticket: str) -> list[dict[str, Any]]:
    """The access requests opened for ``ticket`` (newest first)."""
    status, page = call("GET", f"{base_url}/api/v1/access-requests/?ticket_ref={ticket}", token)
    if status != 200:
        raise SystemExit(f"follow failed: {status} {page}")
    return list(page["results"])


def make_receiver(
    secret: str, on_event: Any, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> type[BaseHTTPRequestHandler]:
    """A request handler class that verifies, deduplicates and hands each event to ``on_event``."""
    seen: set[str] = set()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not verify_signature(secret, self.headers.get("X-Signature", ""), body, tolerance):
                self.send_response(401)
                self.end_headers()
                return
            event = json.loads(body)
            # Answer 2xx for a duplicate too: the portal must stop retrying it.
            if event["id"] not in seen:
                seen.add(event["id"])
                on_event(event)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return Receiver


def receive(port: int, secret: str, ticket: str) -> None:
    done = {"flag": False}

    def on_event(event: dict[str, Any]) -> None:
        print(f"{event['occurred_at']} {event['type']} ticket={event['ticket_ref'] or '-'} id={event['id']}")
        if event["ticket_ref"] == ticket and event["type"] in DECIDED:
            print(f"Ticket {ticket}: the portal decided ({event['type']}); update the ticket and close it.")
            done["flag"] = True

    server = HTTPServer(("127.0.0.1", port), make_receiver(secret, on_event))
    print(f"Listening on http://127.0.0.1:{server.server_address[1]}/ for events about {ticket}")
    while not done["flag"]:
        server.handle_request()
    server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("subscribe")
    p.add_argument("--token", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--events", default="integration.*,access_request.*,grant.*")
    p = sub.add_parser("register")
    p.add_argument("--token", required=True)
    p.add_argument("--ticket", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--scopes", default="msgraph:Files.Read")
    p = sub.add_parser("follow")
    p.add_argument("--token", required=True)
    p.add_argument("--ticket", required=True)
    p = sub.add_parser("receive")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--secret", required=True)
    p.add_argument("--ticket", required=True)
    args = parser.parse_args(argv)
    base = args.base_url.rstrip("/")
    if args.command == "subscribe":
        data = {"name": "Ticketing example", "target_url": args.url, "event_types": args.events.split(",")}
        status, body = call("POST", f"{base}/api/v1/webhooks/", args.token, data)
        print(json.dumps(body, indent=2))
        return 0 if status == 201 else 1
    if args.command == "register":
        status, body = register(
            base, args.token, args.ticket, args.name or f"Integration for {args.ticket}", args.scopes.split(",")
        )
        print(status, json.dumps(body, indent=2))
        return 0 if status in (200, 201) else 1
    if args.command == "follow":
        for req in follow(base, args.token, args.ticket):
            print(f"request #{req['id']} {req.get('status')} for integration {req.get('integration')}")
        return 0
    receive(args.port, args.secret, args.ticket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
