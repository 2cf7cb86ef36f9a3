"""An independent OpenID provider for the interoperability tests: panva's ``oidc-provider`` (Node.js,
OpenID Certified) run from ``provider.mjs`` as a real process on a free port of 127.0.0.1.

``make test`` installs it with ``npm ci`` from the lock file beside this module. Where ``node`` or
``npm`` is missing, or the modules are not installed, the tests that ask for the provider are
skipped with a message saying so; nothing is downloaded from here.

``idp_factory(...)`` starts a provider and returns an ``IdentityProvider``; every provider a test
started is stopped when the test ends. ``web_client`` and ``service_client`` build the client
registrations it takes.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mail_support import free_port

INTEROP_DIR = Path(__file__).resolve().parent
PROVIDER_SCRIPT = INTEROP_DIR / "provider.mjs"
NODE_MODULES = INTEROP_DIR / "node_modules"
START_TIMEOUT_SECONDS = 30.0


def node_missing_reason() -> str | None:
    """Why the Node.js side cannot run here, or None when it can."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: the interoperability tests need Node.js and npm"
    if not (NODE_MODULES / "oidc-provider").is_dir():
        return f"{NODE_MODULES} is missing: run `make test` (or `npm ci` in tests/interop) to install it"
    return None


def web_client(client_id: str, client_secret: str, redirect_uri: str, **metadata: Any) -> dict[str, Any]:
    """A confidential web client (authorization code; the provider requires PKCE by default)."""
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        **metadata,
    }


def service_client(client_id: str, client_secret: str, **metadata: Any) -> dict[str, Any]:
    """A confidential client for ``client_credentials`` only (a workload)."""
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "response_types": [],
        "token_endpoint_auth_method": "client_secret_basic",
        **metadata,
    }


def account(username: str, password: str, groups: list[str] | None = None, **claims: Any) -> dict[str, Any]:
    """One entry of the provider's accounts: its password and the claims it releases."""
    released: dict[str, Any] = {
        "preferred_username": username,
        "email": f"{username}@idp.example",
        "email_verified": True,
        "given_name": username.title(),
        "family_name": "Interop",
        "name": f"{username.title()} Interop",
        **claims,
    }
    if groups is not None:
        released["groups"] = groups
    return {"password": password, "claims": released}


class IdentityProvider:
    """One running oidc-provider process and what a test needs to drive it."""

    def __init__(self, workdir: Path, config: dict[str, Any], accounts: dict[str, Any]) -> None:
        self.workdir = workdir
        self.port = int(config["port"])
        self.issuer = str(config["issuer"])
        self.config = config
        self.accounts_file = Path(config["accounts_file"])
        self.keys_file = Path(config["keys_file"])
        self.log_file = workdir / "provider.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.discovery: dict[str, Any] = {}
        self.set_accounts(accounts)

    # --- accounts -------------------------------------------------------------------------
    def set_accounts(self, accounts: dict[str, Any]) -> None:
        """Replace every account; the provider reads the file at each lookup (no restart)."""
        self.accounts_file.write_text(json.dumps(accounts))

    def accounts(self) -> dict[str, Any]:
        return dict(json.loads(self.accounts_file.read_text()))

    def set_groups(self, account_id: str, groups: list[str]) -> None:
        accounts = self.accounts()
        accounts[account_id]["claims"]["groups"] = list(groups)
        self.set_accounts(accounts)

    # --- process --------------------------------------------------------------------------
    def start(self, *, fresh_keys: bool) -> None:
        config_file = self.workdir / "provider.json"
        config_file.write_text(json.dumps({**self.config, "fresh_keys": fresh_keys}))
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                ["node", str(PROVIDER_SCRIPT), str(config_file)],
                cwd=INTEROP_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited ({self.process.returncode}):\n{self.log()}")
            try:
                self.discovery = self.get_json(url)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc-provider did not serve {url} within {START_TIMEOUT_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, rotate_keys: bool = False, **changes: Any) -> None:
        """Stop and start again on the same port and issuer. ``rotate_keys=True``: new signing keys
        (new ``kid``s), the old ones gone from the JWKS. ``changes`` replace config entries
        (``clients``, ``resource_servers``, ``pkce_required``, ``id_token_claims``). The provider
        keeps its state in memory, so sessions, codes and grants end with the restart."""
        self.stop()
        self.config.update(changes)
        self.start(fresh_keys=rotate_keys)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # --- what the provider publishes ------------------------------------------------------
    @property
    def jwks_uri(self) -> str:
        return str(self.discovery["jwks_uri"])

    @property
    def token_endpoint(self) -> str:
        return str(self.discovery["token_endpoint"])

    def jwks(self) -> dict[str, Any]:
        """The public JWK set as the provider serves it now."""
        return self.get_json(self.jwks_uri)

    def signing_kids(self) -> list[str]:
        """The ``kid``s of the provider's current signing keys (from its private key file)."""
        return [str(key["kid"]) for key in json.loads(self.keys_file.read_text())["keys"]]

    def client_credentials_token(
        self, client_id: str, client_secret: str, resource: str, scope: str | None = None
    ) -> dict[str, Any]:
        """The token response of a ``client_credentials`` grant for ``resource`` (a resource
        indicator from ``resource_servers``): ``access_token`` is a JWT whose ``aud`` is it."""
        form = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            form["scope"] = scope
        basic = base64.b64encode(f"{_form_quote(client_id)}:{_form_quote(client_secret)}".encode()).decode()
        request = urllib.request.Request(
            self.token_endpoint,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))

    @staticmethod
    def get_json(url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))


def _form_quote(value: str) -> str:
    # Client credentials in HTTP Basic are form-encoded first (RFC 6749, section 2.3.1).
    return urllib.parse.quote_plus(value)


IdpFactory = Callable[..., IdentityProvider]


@pytest.fixture
def idp_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpFactory]:
    """``idp_factory(clients=[...], accounts={...}, resource_servers={...}, key_algs=["RS256"],
    pkce_required=True, id_token_claims=False)`` starts an oidc-provider and returns it; all are
    stopped after the test. Skips the test where Node.js or the installed modules are missing."""
    reason = node_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    started: list[IdentityProvider] = []

    def start(
        *,
        clients: list[dict[str, Any]] | None = None,
        accounts: dict[str, Any] | None = None,
        resource_servers: dict[str, dict[str, Any]] | None = None,
        key_algs: list[str] | None = None,
        pkce_required: bool = True,
        id_token_claims: bool = False,
    ) -> IdentityProvider:
        workdir = tmp_path_factory.mktemp("oidc-provider")
        port = free_port()
        config = {
            "port": port,
            "issuer": f"http://127.0.0.1:{port}",
            "keys_file": str(workdir / "jwks.json"),
            "key_algs": key_algs or ["RS256"],
            "accounts_file": str(workdir / "accounts.json"),
            "clients": clients or [],
            "resource_servers": resource_servers or {},
            "pkce_required": pkce_required,
            "id_token_claims": id_token_claims,
        }
        provider = IdentityProvider(workdir, config, accounts or {})
        started.append(provider)
        provider.start(fresh_keys=True)
        return provider

    try:
        yield start
    finally:
        # Each provider's folder (config, keys, accounts, provider.log) stays in pytest's
        # temporary directory for a look after a failure.
        for provider in started:
            provider.stop()
