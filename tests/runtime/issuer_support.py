"""A real workload-token issuer for tests: its own keys, its discovery document and its JWKS served
over HTTP by a live local server (127.0.0.1, a free port, a thread), and a signer that writes any
header and claims — including the tokens a verifier must refuse (``alg: none``, HS256 signed with
the public key's PEM, EdDSA for SPIFFE, ``jku``/``x5u``/``jwk`` headers).

Paths served: ``/.well-known/openid-configuration`` (issuer = ``base_url``), ``/jwks`` (the keys
for OpenID Connect) and ``/bundle`` (the same keys as a SPIFFE JWT bundle, ``use: jwt-svid``).
``requests`` counts what was asked, per path. ``failing`` makes every answer that HTTP status;
``serve_document`` replaces the JWKS with any document (e.g. one holding private key material);
``serve_raw`` answers one path with any status, headers and bytes (a redirect, HTML, a huge body).

Fetches reach it only when ``OUTBOUND_ALLOWED_HOSTS`` names ``host`` (the ``test_issuer`` fixture
does that with pytest-django's ``settings``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.utils import timezone
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from inventory.models import TrustedIssuer

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

SPIFFE_TRUST_DOMAIN = "example.org"
# The members of each key type's RFC 7638 thumbprint, in the order the RFC sorts them.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members in lexical order, no whitespace."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest())


@dataclass(frozen=True)
class IssuerKey:
    """A generated signing key: ``algorithm`` is the JWS ``alg`` it signs with."""

    kid: str
    algorithm: str
    private_key: PrivateKey

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> IssuerKey:
        private: PrivateKey
        if algorithm in _CURVES:
            private = ec.generate_private_key(_CURVES[algorithm])
        elif algorithm.startswith(("RS", "PS")):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(f"no key type for {algorithm}")
        return cls(kid=thumbprint(_to_jwk(private.public_key())), algorithm=algorithm, private_key=private)

    def public_jwk(self, *, use: str = "sig") -> dict[str, Any]:
        return {**_to_jwk(self.private_key.public_key()), "kid": self.kid, "alg": self.algorithm, "use": use}

    def private_jwk(self) -> dict[str, Any]:
        """The key with its private part (``d`` ...): what a JWKS must never carry."""
        return {**_to_jwk(self.private_key), "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _to_jwk(key: Any) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(key, as_dict=True))
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(key, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(key, as_dict=True))


class TestIssuer:
    """A live issuer. ``issuer`` (= ``base_url``) is the ``iss`` of its tokens; ``spiffe_issuer``
    names its SPIFFE trust domain. Keys: ``keys`` (the last one signs by default), ``add_key``,
    ``rotate``. Stop it with ``stop``."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, algorithm: str = "ES256") -> None:
        self.keys: list[IssuerKey] = [IssuerKey.generate(algorithm)]
        self.requests: Counter[str] = Counter()
        self.failing: int | None = None
        self.document: dict[str, Any] | None = None
        self.raw: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # --- Addresses ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the entry ``OUTBOUND_ALLOWED_HOSTS`` needs."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base_url}/jwks"

    @property
    def bundle_url(self) -> str:
        return f"{self.base_url}/bundle"

    spiffe_issuer = f"spiffe://{SPIFFE_TRUST_DOMAIN}"

    def spiffe_id(self, path: str = "ns/ai/sa/agent") -> str:
        return f"{self.spiffe_issuer}/{path}"

    # --- Keys ---------------------------------------------------------------------------------

    @property
    def key(self) -> IssuerKey:
        """The key that signs by default: the newest."""
        return self.keys[-1]

    def add_key(self, algorithm: str | None = None) -> IssuerKey:
        """Publish one more key (the old ones stay); it becomes the default signer."""
        key = IssuerKey.generate(algorithm or self.key.algorithm)
        with self._lock:
            self.keys = [*self.keys, key]
        return key

    def rotate(self, algorithm: str | None = None) -> IssuerKey:
        """Replace every key by a new one: tokens signed before no longer find their key."""
        key = IssuerKey.generate(algorithm or self.key.algorithm)
        with self._lock:
            self.keys = [key]
        return key

    def jwks(self, *, use: str = "sig") -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk(use=use) for key in self.keys]}

    def serve_document(self, document: dict[str, Any] | None) -> None:
        """Answer ``/jwks`` and ``/bundle`` with ``document`` (None: the real keys again)."""
        with self._lock:
            self.document = document

    def serve_raw(self, path: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer ``path`` with exactly this status, these headers and these bytes."""
        with self._lock:
            self.raw[path] = (status, headers or {}, body)

    # --- Tokens -------------------------------------------------------------------------------

    def claims(self, subject: str = "system:serviceaccount:ai:agent", **extra: Any) -> dict[str, Any]:
        """Valid claims for now: this issuer, the portal's audience, five minutes to live."""
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": settings.RUNTIME_TOKEN_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            **extra,
        }

    def sign(
        self,
        claims: dict[str, Any],
        *,
        headers: dict[str, Any] | None = None,
        algorithm: str | None = None,
        key: IssuerKey | None = None,
    ) -> str:
        """A compact JWS of ``claims``. The header is ``alg``, ``typ: JWT`` and the key's ``kid``,
        updated by ``headers`` (a ``None`` value removes a member). ``algorithm="none"`` gives an
        unsigned token; an HMAC algorithm signs with the public key's PEM as the secret (the key
        confusion attack); any other algorithm signs with ``key`` (default: the newest)."""
        signer = key or self.key
        alg = algorithm or signer.algorithm
        header = {"alg": alg, "typ": "JWT", "kid": signer.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        signing_input = f"{_encode(header)}.{_encode(claims)}".encode()
        if alg == "none":
            signature = b""
        elif alg.startswith("HS"):
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
            signature = hmac.new(signer.public_pem(), signing_input, digest).digest()
        else:
            signature = jwt.get_algorithm_by_name(alg).sign(signing_input, signer.private_key)
        return f"{signing_input.decode()}.{b64url(signature)}"

    def token(self, subject: str = "system:serviceaccount:ai:agent", **extra: Any) -> str:
        """``sign(claims(subject, **extra))``."""
        return self.sign(self.claims(subject, **extra))

    # --- Server -------------------------------------------------------------------------------

    def answer(self, path: str) -> tuple[int, dict[str, Any] | None]:
        """What the server sends for ``path`` (status, JSON body); counts the request."""
        with self._lock:
            self.requests[path] += 1
            failing, document = self.failing, self.document
        if failing is not None:
            return failing, {"error": "failing on purpose"}
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.issuer, "jwks_uri": self.jwks_uri, "id_token_signing_alg_values_supported": []}
        if path in ("/jwks", "/bundle"):
            return 200, document or self.jwks(use="jwt-svid" if path == "/bundle" else "sig")
        return 404, None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- Rows for tests -----------------------------------------------------------------------

    def trusted_issuer(self, kind: str = "oidc", **fields: Any) -> TrustedIssuer:
        """A ``TrustedIssuer`` row for this issuer, written directly (for tests of what consumes
        issuers; tests of issuer management go through the services). ``kind``: ``oidc`` (keys
        through discovery), ``spiffe`` (its bundle URL) or ``static_jwks`` (its keys pasted)."""
        values: dict[str, Any] = {"name": f"Test issuer {self.port} {kind}", "kind": kind}
        if kind == "oidc":
            values.update(issuer=self.issuer, discovery_url=self.discovery_url)
        elif kind == "spiffe":
            values.update(issuer=self.spiffe_issuer, jwks_uri=self.bundle_url)
        else:
            values.update(issuer=self.issuer, jwks=self.jwks(), keys_fetched_at=timezone.now())
        if self.key.algorithm not in ("RS256", "ES256", "ES384", "PS256"):
            values["allowed_algorithms"] = ["RS256", "ES256", "ES384", "PS256", self.key.algorithm]
        values.update(fields)
        return TrustedIssuer.objects.create(**values)


def _encode(part: dict[str, Any]) -> str:
    return b64url(json.dumps(part, separators=(",", ":")).encode())


def _handler_for(test_issuer: TestIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            status, document = test_issuer.answer(path)
            body = json.dumps(document).encode() if document is not None else b""
            headers = {"Content-Type": "application/json"}
            with test_issuer._lock:
                if path in test_issuer.raw:
                    status, extra, body = test_issuer.raw[path]
                    headers.update(extra)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
            return

    return Handler
