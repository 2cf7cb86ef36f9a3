"""The live portal as the verifiers see it: its address set as issuer, token endpoint and
audience, a real token exchange over HTTP, a key rotation, and tokens that a verifier must refuse
(each made by the test: signed with the portal's own key but with a wrong header or claim, or
signed with a key the portal does not publish)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from runtime import keys


def configure(settings_fixture: Any, url: str) -> str:
    """Name the live portal by its own address (issuer, site, token endpoint audience)."""
    settings_fixture.SITE_URL = url
    settings_fixture.RUNTIME_ISSUER = url
    settings_fixture.RUNTIME_TOKEN_AUDIENCE = f"{url}/oauth/token"
    return url


def post_form(url: str, form: dict[str, str], *, bearer: str = "") -> tuple[int, dict[str, Any]]:
    """POST a form; the status and the JSON answer (error answers too)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def exchange(portal: str, form: dict[str, str]) -> str:
    """A portal access token from ``/oauth/token`` (the exchange must succeed)."""
    status, answer = post_form(f"{portal}/oauth/token", form)
    assert status == 200, answer
    token: str = answer["access_token"]
    return token


def rotate_signing_keys() -> None:
    """``manage.py rotate_signing_keys`` once the next key has been published a full JWKS cache
    lifetime (the command refuses earlier): the published next key starts signing."""
    later = timezone.now() + timedelta(seconds=settings.RUNTIME_JWKS_CACHE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        call_command("rotate_signing_keys", "--algorithm", "ES256")
    keys.clear_caches()


def portal_claims(audience: str, **overrides: Any) -> dict[str, Any]:
    """Claims of a valid access token of this portal for ``audience``."""
    now = int(time.time())
    claims = {
        "iss": settings.RUNTIME_ISSUER,
        "aud": audience,
        "sub": "integration:1",
        "client_id": "integration:1",
        "scope": "crm:read",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return {**claims, **overrides}


def signed_by_portal(claims: dict[str, Any], **header: Any) -> str:
    """``claims`` signed with the portal's current ES256 key; ``header`` adds to or replaces the
    portal's own header (``kid``, ``typ: at+jwt``); a ``None`` value removes a member."""
    key = keys.signing_key("ES256")
    # PyJWT leaves out a header member whose value is None (a token without typ).
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers=headers)


def signed_by_stranger(claims: dict[str, Any], *, kid: str) -> str:
    """``claims`` signed with a fresh ES256 key the portal never published, named ``kid``."""
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (the examples are scripts, not a package)."""
    path = Path(settings.BASE_DIR) / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"interop_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
