#!/usr/bin/env python3
"""A resource server that accepts the portal's access tokens — what an API in front of a data
system does before it answers an AI integration.

For every request it checks the bearer token locally (the portal's published keys, fetched once
and cached, refetched on an unknown ``kid``): the JOSE header's ``typ`` is ``at+jwt``, the
algorithm is one the portal signs with (never the token's own choice of anything else), the
signature, ``iss`` (the portal), ``aud`` (this server), ``exp``/``nbf``, and the scope the route
needs. A high-risk route (here every write) also asks the portal's introspection endpoint, which
answers ``active: false`` at once for a suspended integration, a revoked grant or token, or a
deactivated owner — the local check alone would trust the token until it expires (≤ 15 minutes).

Routes: ``GET /records`` needs the read scope; ``POST /records`` needs the write scope and is
introspected. Each answer names the integration, the user it
acts for and the accountable owner, as a resource server's own log would.

Run against ``make run`` (the introspection token belongs to an account with the
``resource_server`` role: ``manage.py issue_api_token USERNAME``)::

    python examples/resource_server.py --portal http://127.0.0.1:8000 \\
        --audience urn:ai-governance:system:salesforce --read-scope salesforce:api \\
        --write-scope salesforce:full --introspection-token $RS_TOKEN --port 8790
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

ALGORITHMS = ["ES256", "RS256"]
DEFAULT_CACHE_SECONDS = 300
REFETCH_COOLDOWN_SECONDS = 30


class Rejected(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def http_json(url: str, *, data: dict[str, str] | None = None, token: str = "", timeout: float = 5.0) -> Any:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class PortalKeys:
    """The portal's public keys by ``kid``: fetched from the ``jwks_uri`` its metadata names,
    kept ``cache_seconds``, refetched once on an unknown ``kid`` (at most every 30 seconds)."""

    def __init__(self, portal: str, cache_seconds: int = DEFAULT_CACHE_SECONDS) -> None:
        metadata = http_json(f"{portal.rstrip('/')}/.well-known/oauth-authorization-server")
        self.issuer: str = metadata["issuer"]
        self.jwks_uri: str = metadata["jwks_uri"]
        self.introspection_endpoint: str = metadata["introspection_endpoint"]
        self.cache_seconds = cache_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        try:
            jwks = http_json(self.jwks_uri)
            self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys if key.key_id}
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            # No key set, no verification: refuse rather than trust an unchecked token.
            raise Rejected(503, "temporarily_unavailable", f"The portal's keys cannot be fetched: {exc}") from None
        self._fetched_at = time.monotonic()

    def get(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if not self._keys or age > self.cache_seconds:
                self._fetch()
            elif kid not in self._keys and age > REFETCH_COOLDOWN_SECONDS:
                self._fetch()
            key = self._keys.get(kid)
        if key is None:
            raise Rejected(401, "invalid_token", "The token is signed with a key the portal does not publish.")
        return key


class ResourceServer:
    def __init__(
        self, *, portal: str, audience: str, introspection_token: str, read_scope: str, write_scope: str
    ) -> None:
        self.keys = PortalKeys(portal)
        self.audience = audience
        self.introspection_token = introspection_token
        self.read_scope, self.write_scope = read_scope, write_scope

    def check(self, authorization: str, *, needs_scope: str, high_risk: bool) -> dict[str, Any]:
        """The token's claims if it may do this; raises ``Rejected`` otherwise."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Rejected(401, "invalid_request", "A bearer token is required.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Rejected(401, "invalid_token", f"Malformed token: {exc}") from None
        if header.get("typ") not in ("at+jwt", "application/at+jwt"):
            raise Rejected(401, "invalid_token", "Not an access token (typ must be at+jwt).")
        key = self.keys.get(str(header.get("kid", "")))
        # The algorithm is the published key's, never the token's word for it.
        if key.algorithm_name not in ALGORITHMS or header.get("alg") != key.algorithm_name:
            raise Rejected(401, "invalid_token", "Unexpected signature algorithm for this key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.keys.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "client_id"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Rejected(401, "invalid_token", f"Token refused: {exc}") from None
        if needs_scope not in str(claims.get("scope", "")).split():
            raise Rejected(403, "insufficient_scope", f"This call needs the scope {needs_scope}.")
        if high_risk:
            self.introspect(token)
        return claims

    def introspect(self, token: str) -> None:
        """Fail closed: only an answer of exactly ``active: true`` lets the call through; a portal
        that cannot be reached or refuses the question is a 503, never a pass."""
        try:
            answer = http_json(self.keys.introspection_endpoint, data={"token": token}, token=self.introspection_token)
        except (OSError, ValueError) as exc:
            raise Rejected(503, "temporarily_unavailable", f"The portal could not confirm the token: {exc}") from None
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise Rejected(401, "invalid_token", "The portal says this token is no longer active.")

    def handle(self, method: str, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if path != "/records" or method not in ("GET", "POST"):
            return 404, {"error": "not_found"}
        write = method == "POST"
        scope = self.write_scope if write else self.read_scope
        try:
            claims = self.check(authorization, needs_scope=scope, high_risk=write)
        except Rejected as exc:
            return exc.status, {"error": exc.error, "error_description": exc.description}
        return 200, {
            "ok": True,
            "action": "wrote a record" if write else "read records",
            "integration": claims["client_id"],
            "subject": claims["sub"],
            "actor": claims.get("act"),
            "owner": claims.get("owner"),
            "introspected": write,
        }


def make_handler(server: ResourceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = server.handle(self.command, self.path, self.headers.get("Authorization", ""))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status == 401:
                self.send_header("WWW-Authenticate", f'Bearer error="{body.get("error", "invalid_token")}"')
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def serve(server: ResourceServer, port: int) -> ThreadingHTTPServer:
    """Start serving on 127.0.0.1:``port`` (0: any free port) in a thread; returns the server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(server))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    parser.add_argument("--audience", required=True, help="This server's aud (the resource system's audience).")
    parser.add_argument("--read-scope", required=True, help="Scope code GET /records needs.")
    parser.add_argument("--write-scope", required=True, help="Scope code POST /records needs.")
    parser.add_argument("--introspection-token", required=True, help="API token of a resource-server account.")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    resource = ResourceServer(
        portal=args.portal,
        audience=args.audience,
        introspection_token=args.introspection_token,
        read_scope=args.read_scope,
        write_scope=args.write_scope,
    )
    httpd = serve(resource, args.port)
    print(f"Resource server for {args.audience} on http://127.0.0.1:{httpd.server_port}/records")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        httpd.shutdown()


if __name__ == "__main__":
    main()
