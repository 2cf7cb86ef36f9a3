"""Revocation at the provider: the calls that take an app's grants away, and making them.

``revoke_calls`` describes each provider's revoke call(s) for a finding — what a revocation
request carries to the ticketing system (the ``discovery.revoke_requested`` webhook) and what the
portal sends itself when the source's connector has a write token (``revoke_at_provider``).

Each call is ``{"method", "url", "description", "ids"}``: the HTTP method (``"MANUAL"`` where the
provider has no API for it: GitHub cannot uninstall an app from an organisation by API), the full
URL on the connector's base URL (the path alone when no base URL is configured), what it does in
words, and the provider's ids it names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from governance import outbound
from inventory.discovery.choices import Source
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding, Remediation
from inventory.discovery.pull import Connector, connector

log = logging.getLogger(__name__)

ProviderCall = dict[str, Any]

# The result text lists at most this many calls one by one (failures first); a revocation of an
# app thousands of people consented to sums up the rest.
RESULT_LINES = 50


def _q(value: str) -> str:
    """``value`` as one path segment."""
    return quote(value, safe="@")


def _people(consents: Iterable[DiscoveredConsent]) -> list[DiscoveredConsent]:
    """The consents of individual people (an admin consent for everyone names nobody)."""
    return [consent for consent in consents if consent.person_key != "*"]


def _who(consent: DiscoveredConsent) -> str:
    """The person as a reader knows them: their email where the provider gave it, else the
    provider's id (which is what the calls name: Google, Entra and Okta user ids)."""
    if consent.person_key == "*":
        return "everyone (admin consent)"
    return consent.person_email or consent.person_key


def _google(base: str, app: DiscoveredApp, tenant: str, consents: Sequence[DiscoveredConsent]) -> list[ProviderCall]:
    """``tokens.delete``: every token one user issued to the app, one call per person."""
    return [
        {
            "method": "DELETE",
            "url": f"{base}/admin/directory/v1/users/{_q(consent.person_key)}/tokens/{_q(app.app_key)}",
            "description": f"Delete the tokens {_who(consent)} granted to {app.name}",
            "ids": {"userKey": consent.person_key, "clientId": app.app_key},
        }
        for consent in _people(consents)
    ]


def _entra(base: str, app: DiscoveredApp, tenant: str, consents: Sequence[DiscoveredConsent]) -> list[ProviderCall]:
    """Delete each delegated permission grant (a person's, or the admin consent for all)."""
    calls: dict[str, ProviderCall] = {}
    for consent in consents:
        who = _who(consent)
        for grant_id in consent.grant_ids or []:
            calls.setdefault(
                str(grant_id),
                {
                    "method": "DELETE",
                    "url": f"{base}/v1.0/oauth2PermissionGrants/{_q(str(grant_id))}",
                    "description": f"Delete the permission grant of {who} to {app.name}",
                    "ids": {"grant_id": str(grant_id), "client_id": app.alt_key, "app_id": app.app_key},
                },
            )
    return list(calls.values())


def _slack(base: str, app: DiscoveredApp, tenant: str, consents: Sequence[DiscoveredConsent]) -> list[ProviderCall]:
    """``admin.apps.uninstall`` for the whole enterprise: Slack approves apps for everyone, so
    there is no one person's grant to take back."""
    ids = {"app_id": app.app_key, "enterprise_id": tenant}
    query = urlencode({name: value for name, value in ids.items() if value})
    return [
        {
            "method": "POST",
            "url": f"{base}/api/admin.apps.uninstall?{query}",
            "description": f"Uninstall {app.name} from the Slack enterprise {tenant or '(not set)'} (irreversible)",
            "ids": ids,
        }
    ]


def _github(base: str, app: DiscoveredApp, tenant: str, consents: Sequence[DiscoveredConsent]) -> list[ProviderCall]:
    """No API uninstalls an app from an organisation: an organisation owner does it on GitHub."""
    details = app.details if isinstance(app.details, dict) else {}
    page = str(details.get("html_url") or "")
    if not page and tenant:
        page = f"https://github.com/organizations/{_q(tenant)}/settings/installations"
    installations = sorted({str(grant_id) for consent in consents for grant_id in consent.grant_ids or []})
    return [
        {
            "method": "MANUAL",
            "url": page,
            "description": (
                f"GitHub has no API to uninstall an app from an organisation: an owner of {tenant or 'the organisation'} "
                f"opens {page or 'the organisation settings, GitHub Apps'}, chooses {app.name}, then Uninstall"
            ),
            "ids": {"app_id": app.app_key, "installation_ids": installations, "org": tenant},
        }
    ]


def _okta(base: str, app: DiscoveredApp, tenant: str, consents: Sequence[DiscoveredConsent]) -> list[ProviderCall]:
    """Revoke every grant one user gave the app's client, one call per person."""
    return [
        {
            "method": "DELETE",
            "url": f"{base}/api/v1/users/{_q(consent.person_key)}/clients/{_q(app.app_key)}/grants",
            "description": f"Revoke the grants {_who(consent)} gave {app.name}",
            "ids": {"userId": consent.person_key, "clientId": app.app_key, "grant_ids": list(consent.grant_ids or [])},
        }
        for consent in _people(consents)
    ]


_BUILDERS: dict[str, Callable[[str, DiscoveredApp, str, Sequence[DiscoveredConsent]], list[ProviderCall]]] = {
    Source.GOOGLE: _google,
    Source.ENTRA: _entra,
    Source.SLACK: _slack,
    Source.GITHUB: _github,
    Source.OKTA: _okta,
}


def revoke_calls(finding: Finding, consent: DiscoveredConsent | None = None) -> list[ProviderCall]:
    """The provider calls that revoke ``consent``, or without it every present consent of the
    finding's app. A finding without an app (stale) has nothing to revoke: []."""
    app = finding.app
    if app is None:
        return []
    if consent is not None:
        consents: list[DiscoveredConsent] = [consent]
    else:
        consents = list(app.consents.filter(present=True).order_by("person_key", "id"))
    base = connector(finding.source).base_url
    return _BUILDERS[finding.source](base, app, finding.tenant, consents)


# --- Calling the provider ---------------------------------------------------------------------


def _slack_refused(response: outbound.Response) -> str:
    """Slack answers errors with HTTP 200 and ``ok: false``: the error code, or ""."""
    try:
        body = json.loads(response.body)
    except ValueError:
        return "the answer is not JSON"
    if isinstance(body, dict) and body.get("ok") is True:
        return ""
    code = str(body.get("error", "")) if isinstance(body, dict) else ""
    return f"Slack answered an error ({''.join(c for c in code if c.isalnum() or c in '_.-')[:80] or 'none named'})"


def _send(conn: Connector, call: ProviderCall) -> tuple[bool, str]:
    """Make one call with the write token: (done, what happened). 2xx is done, and so is 404 (the
    grant is already gone). The token goes only to the connector's own origin."""
    method = str(call.get("method", "")).upper()
    url = str(call.get("url", ""))
    if method not in ("DELETE", "POST"):
        return False, f"not sent: {method or 'no'} method"
    if not conn.same_origin(url):
        return False, "not sent: the URL is not on the connector's base URL"
    try:
        response = outbound.request(method, url, headers=conn.headers(conn.write_token), require_https=True)
    except outbound.OutboundError as exc:
        return False, str(exc)
    if response.status == 404:
        return True, "already gone (HTTP 404)"
    if response.is_redirect:
        return False, f"HTTP {response.status} (redirects are not followed)"
    if not response.ok:
        return False, f"HTTP {response.status}"
    if conn.source == Source.SLACK:
        refused = _slack_refused(response)
        if refused:
            return False, refused
    return True, f"revoked (HTTP {response.status})"


def _summary(outcomes: list[tuple[bool, str, str]]) -> str:
    done = sum(1 for ok, _, _ in outcomes if ok)
    lines = [f"{done} of {len(outcomes)} provider calls succeeded."]
    ordered = sorted(outcomes, key=lambda outcome: outcome[0])  # failures first
    lines += [f"{description}: {text}" for _, description, text in ordered[:RESULT_LINES]]
    if len(ordered) > RESULT_LINES:
        lines.append(f"... and {len(ordered) - RESULT_LINES} more.")
    return "\n".join(lines)


def revoke_at_provider(remediation: Remediation) -> tuple[bool, str]:
    """Make the remediation's provider calls with the source's write token: (all done, result
    text for the record). Without a write token, or for a call only a person can make (GitHub),
    nothing is sent. Safe to repeat: a grant revoked before answers 404, which counts as done."""
    conn = connector(remediation.finding.source)
    calls: list[ProviderCall] = [call for call in remediation.provider_calls or [] if isinstance(call, dict)]
    if not conn.write_token:
        return False, (
            f"No write token for {Source(conn.source).label} (DISCOVERY_{conn.source.upper()}_WRITE_TOKEN): "
            "nothing was sent; the revocation is left to the ticketing system."
        )
    if any(str(call.get("method", "")).upper() == "MANUAL" for call in calls):
        return False, "Nothing was sent: this revocation is done by hand. " + " ".join(
            str(call.get("description", "")) for call in calls
        )
    if not calls:
        return True, "Nothing left to revoke at the provider."
    outcomes: list[tuple[bool, str, str]] = []
    for call in calls:
        ok, text = _send(conn, call)
        outcomes.append((ok, str(call.get("description", "")), text))
        if not ok:
            log.warning("Revocation %s: %s failed: %s", remediation.pk, call.get("description"), text)
    return all(ok for ok, _, _ in outcomes), _summary(outcomes)
