"""Pulls from the providers' APIs: every page of a source's grants, fetched through the outbound
client into a spool file (one page per JSON line, in the order the source's format reads), then
imported as a complete listing.

A pull is all or nothing. Any request that finally fails — refused by the outbound policy, an
answer that is not JSON, a 4xx, a 5xx or a timeout still there after ``DISCOVERY_PULL_RETRIES``
retries, a next-page link to another site — or a pull that outruns
``DISCOVERY_PULL_BUDGET_SECONDS`` records a failed import and imports nothing: a partial listing
imported as complete would mark every app it missed as gone.

Each source's base URL, tenant and tokens come from ``settings.DISCOVERY_CONNECTORS``; the read
token is sent only to the base URL's own origin (scheme, host and port), never to where a page's
link points elsewhere.

The environment, per source (``DISCOVERY_<SOURCE>_BASE_URL``, ``_TENANT``, ``_TOKEN``,
``_WRITE_TOKEN``), and what each token must be allowed to do:

* Google: tenant = the customer id (``my_customer`` when empty); read = a Directory API token
  with ``admin.directory.user.readonly`` and ``admin.directory.user.security``; write =
  ``admin.directory.user.security`` (``tokens.delete``).
* Entra: tenant = the tenant id (a label here); read = a Graph token with
  ``DelegatedPermissionGrant.Read.All``, ``Application.Read.All`` and ``User.Read.All``; write =
  ``DelegatedPermissionGrant.ReadWrite.All``.
* Slack: tenant = the enterprise id (``E…``); read = an org token with ``admin.apps:read``;
  write = ``admin.apps:write``.
* GitHub: tenant = the organisation (required); read = a token that lists the organisation's
  app installations (organisation administration: read); no write (no API uninstalls an app).
* Okta: base URL = ``https://<org>.okta.com`` (required); read = an API token (sent as
  ``SSWS``) that reads users and their grants; write = one that manages users' grants.

Tokens are used as given: Google and Entra access tokens expire within about an hour, so those
two need something outside the portal that renews the token in the environment.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from governance import outbound, scheduling
from governance.actors import Actor
from governance.audit import accountable_human, audit_record
from governance.context import task_context
from governance.models import User
from governance.roles import is_iam_admin
from inventory.discovery import importer
from inventory.discovery.choices import ImportMethod, ImportStatus, Source
from inventory.discovery.models import DiscoveryImport

log = logging.getLogger(__name__)

GITHUB_API_VERSION = "2022-11-28"


# --- Connectors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connector:
    """One source's settings: where its API is, which tenant, and the tokens (read; write for
    revoking at the provider). Tokens never leave this object except in the ``Authorization``
    header of a request to ``base_url``'s origin."""

    source: str
    base_url: str
    tenant: str
    token: str
    write_token: str

    def headers(self, token: str) -> dict[str, str]:
        """The request headers that carry ``token`` the way the provider expects it."""
        scheme = "SSWS" if self.source == Source.OKTA else "Bearer"
        headers = {"Accept": "application/json", "Authorization": f"{scheme} {token}"}
        if self.source == Source.GITHUB:
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = GITHUB_API_VERSION
        return headers

    def same_origin(self, url: str) -> bool:
        """True when ``url`` is on the base URL's scheme, host and port."""
        return _origin(url) == _origin(self.base_url)


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", 0)
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    return (scheme, (parts.hostname or "").lower(), port if port is not None else default)


def connector(source: str) -> Connector:
    """The settings of ``source`` (empty strings where nothing is configured)."""
    if source not in Source.values:
        raise ValueError(f"Unknown discovery source {source!r}.")
    values: Mapping[str, str] = settings.DISCOVERY_CONNECTORS.get(source, {})
    return Connector(
        source=source,
        base_url=str(values.get("base_url", "")).rstrip("/"),
        tenant=str(values.get("tenant", "")),
        token=str(values.get("token", "")),
        write_token=str(values.get("write_token", "")),
    )


def configured_sources() -> list[str]:
    """The sources a scheduled pull fetches: those with a read token, in the sources' order."""
    return [source for source in Source.values if connector(source).token]


# --- Requests under a budget ------------------------------------------------------------------


class PullFailed(Exception):
    """A pull cannot finish; ``str(exc)`` is safe to store and show (no token, no address)."""


def retry_after_seconds(value: str, *, now: datetime | None = None) -> float | None:
    """How long a ``Retry-After`` header asks to wait: delay seconds (``120``) or an HTTP date
    (``Wed, 21 Oct 2026 07:28:00 GMT``, counted from ``now``). None when it is neither."""
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or timezone.now())).total_seconds(), 0.0)


_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL_NEXT = re.compile(r';\s*rel\s*=\s*"?([^";]*)"?', re.IGNORECASE)


def next_link(header: str) -> str:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header (GitHub, Okta), or ""."""
    for target, params in _LINK.findall(header or ""):
        for rel in _REL_NEXT.findall(params):
            if "next" in rel.lower().split():
                return target.strip()
    return ""


@dataclass(frozen=True)
class Page:
    """One answer of the provider: its JSON document and its headers (lower-case names)."""

    document: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class _Retry:
    """A try that may succeed if repeated: what went wrong, and the wait the server asked for."""

    error: str
    asked_wait: float | None


def _asked_wait(headers: Mapping[str, str]) -> float | None:
    """The wait a 429 or 5xx answer asks for: ``Retry-After``, else a rate-limit reset time
    (epoch seconds: GitHub's ``x-ratelimit-reset``, Okta's ``x-rate-limit-reset``)."""
    if "retry-after" in headers:
        return retry_after_seconds(headers["retry-after"])
    for name in ("x-ratelimit-reset", "x-rate-limit-reset"):
        reset = headers.get(name, "").strip()
        if reset.isdigit():
            return max(int(reset) - timezone.now().timestamp(), 0.0)
    return None


class Client:
    """The requests of one pull: the read token sent to the connector's origin only, retries with
    backoff, waits a 429 asks for, and one deadline for the whole pull."""

    def __init__(self, conn: Connector, *, deadline: float) -> None:
        self.conn = conn
        self.deadline = deadline
        self._headers = conn.headers(conn.token)

    def url(self, path: str, **query: str) -> str:
        """``path`` under the base URL, with ``query`` (empty values left out) encoded."""
        params = {name: value for name, value in query.items() if value}
        # "$" and "," stay as they are: Graph's "$select=id,mail" reads better in logs that way.
        return f"{self.conn.base_url}{path}" + (f"?{urlencode(params, safe='$,')}" if params else "")

    def follow(self, current: str, link: str, what: str) -> str:
        """The absolute URL of a next-page ``link`` found in the answer to ``current``; refused
        when it leaves the connector's origin (the read token would go with it)."""
        if not link:
            return ""
        target = urljoin(current, link)
        if not self.conn.same_origin(target):
            raise PullFailed(f"{what}: the next-page link points to another site; it was not followed")
        if target == current:
            raise PullFailed(f"{what}: the next-page link repeats the page just read")
        return target

    def get(self, url: str, what: str, *, missing_ok: bool = False) -> Page | None:
        """The JSON page at ``url`` (``what`` names it in errors). ``missing_ok``: a 404 answers
        None (an object deleted while the pull ran). Raises ``PullFailed``."""
        if not self.conn.same_origin(url):
            raise PullFailed(f"{what}: the URL is not on the connector's base URL; it was not requested")
        tries = 0
        while True:
            outcome = self._try(url, what)
            if not isinstance(outcome, _Retry):
                return self._accept(outcome, what, missing_ok=missing_ok)
            tries += 1
            if tries > settings.DISCOVERY_PULL_RETRIES:
                raise PullFailed(f"{what}: {outcome.error}, given up after {tries} tries")
            backoff = settings.DISCOVERY_PULL_BACKOFF_SECONDS * 2 ** (tries - 1)
            self._wait(backoff if outcome.asked_wait is None else outcome.asked_wait)

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise PullFailed(self.out_of_time())
        return remaining

    def out_of_time(self) -> str:
        return (
            f"the pull ran out of its time budget ({settings.DISCOVERY_PULL_BUDGET_SECONDS} s) "
            "before it had every page; nothing was imported"
        )

    def _try(self, url: str, what: str) -> outbound.Response | _Retry:
        timeout = min(float(settings.OUTBOUND_TIMEOUT_SECONDS), self._remaining())
        try:
            response = outbound.get(
                url,
                headers=self._headers,
                timeout=timeout,
                max_bytes=settings.DISCOVERY_DOCUMENT_MAX_BYTES,
                require_https=True,
            )
        except (outbound.TimedOut, outbound.Unreachable) as exc:
            self._remaining()  # a timeout cut short by the budget is the budget's failure
            return _Retry(str(exc), None)
        except outbound.OutboundError as exc:  # refused by policy, too large, not HTTP
            raise PullFailed(f"{what}: {exc}") from None
        limited = response.status == 429 or (
            # GitHub answers 403 to a client over its (secondary) rate limit.
            response.status == 403
            and ("retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0")
        )
        if limited:
            return _Retry(f"HTTP {response.status} (rate limited)", _asked_wait(response.headers))
        if response.status >= 500:
            return _Retry(f"HTTP {response.status}", _asked_wait(response.headers))
        return response

    def _wait(self, seconds: float) -> None:
        wait = min(max(seconds, 0.0), float(settings.DISCOVERY_PULL_MAX_WAIT_SECONDS))
        if time.monotonic() + wait >= self.deadline:
            raise PullFailed(self.out_of_time())
        time.sleep(wait)

    @staticmethod
    def _accept(response: outbound.Response, what: str, *, missing_ok: bool) -> Page | None:
        if response.status == 404 and missing_ok:
            return None
        if response.is_redirect:
            raise PullFailed(f"{what}: answered a redirect (HTTP {response.status}), which is not followed")
        if response.status in (401, 403):
            raise PullFailed(f"{what}: HTTP {response.status} (check the connector's read token and its scopes)")
        if not response.ok:
            raise PullFailed(f"{what}: HTTP {response.status}")
        try:
            document = response.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise PullFailed(f"{what}: the answer is not JSON") from None
        return Page(document=document, headers=response.headers)


def _shaped(page: Page | None, what: str, kind: type) -> Page | None:
    """``page`` when its document is a JSON object (``kind`` dict) or array (``kind`` list);
    None stays None (a 404 the caller allowed)."""
    if page is not None and not isinstance(page.document, kind):
        shape = "an object" if kind is dict else "an array"
        raise PullFailed(f"{what}: the answer is not {shape}")
    return page


def _fetch(client: Client, url: str, what: str, kind: type) -> Page:
    """The page at ``url``, which must be there and hold a ``kind`` document."""
    page = _shaped(client.get(url, what), what, kind)
    assert page is not None  # client.get answers a page unless a 404 was allowed
    return page


def _string_ids(items: Any, key: str) -> list[str]:
    """The non-empty string ``key`` of each object in ``items`` (others are the format's to
    refuse, with their record number)."""
    if not isinstance(items, list):
        return []
    return [item[key] for item in items if isinstance(item, dict) and isinstance(item.get(key), str) and item[key]]


# --- What each provider's pull fetches, in the order its format reads ---------------------------


def _google(client: Client) -> Iterator[Any]:
    """Directory users pages, each followed by the token lists of its users (the users map the
    tokens' ``userKey`` ids to emails). Users without tokens add nothing."""
    customer = client.conn.tenant or "my_customer"
    what = "the Google user list"
    page_token = ""
    while True:
        url = client.url("/admin/directory/v1/users", customer=customer, maxResults="500", pageToken=page_token)
        users = _fetch(client, url, what, dict).document
        yield users
        for user_id in _string_ids(users.get("users"), "id"):
            path = f"/admin/directory/v1/users/{quote(user_id, safe='')}/tokens"
            found = client.get(client.url(path), "a Google user's tokens", missing_ok=True)
            tokens = _shaped(found, "a Google user's tokens", dict)
            if tokens is not None and tokens.document.get("items"):
                yield tokens.document
        following = users.get("nextPageToken")
        if not isinstance(following, str) or not following:
            return
        if following == page_token:
            raise PullFailed(f"{what}: the next-page token repeats the page just read")
        page_token = following


def _entra(client: Client) -> Iterator[Any]:
    """The delegated permission grants (every ``@odata.nextLink`` page), then the service
    principal of each client and the user of each principal they name."""
    clients: dict[str, None] = {}
    principals: dict[str, None] = {}
    what = "the Entra permission grants"
    url = client.url("/v1.0/oauth2PermissionGrants")
    while url:
        grants = _fetch(client, url, what, dict).document
        yield grants
        clients.update(dict.fromkeys(_string_ids(grants.get("value"), "clientId")))
        principals.update(dict.fromkeys(_string_ids(grants.get("value"), "principalId")))
        link = grants.get("@odata.nextLink")
        url = client.follow(url, link if isinstance(link, str) else "", what)
    for client_id in clients:
        what = "an Entra service principal"
        path = f"/v1.0/servicePrincipals/{quote(client_id, safe='')}"
        found = _shaped(client.get(client.url(path), what, missing_ok=True), what, dict)
        if found is not None:
            yield found.document
    for principal_id in principals:
        what = "an Entra user"
        url = client.url(f"/v1.0/users/{quote(principal_id, safe='')}", **{"$select": "id,userPrincipalName,mail"})
        found = _shaped(client.get(url, what, missing_ok=True), what, dict)
        if found is not None:
            yield found.document


_SLACK_ERROR = re.compile(r"[^A-Za-z0-9_.-]")


def _slack(client: Client) -> Iterator[Any]:
    """``admin.apps.approved.list`` pages, following ``response_metadata.next_cursor``."""
    what = "the Slack approved apps"
    cursor = ""
    while True:
        url = client.url("/api/admin.apps.approved.list", limit="1000", enterprise_id=client.conn.tenant, cursor=cursor)
        page = _fetch(client, url, what, dict).document
        if page.get("ok") is not True:
            code = _SLACK_ERROR.sub("", str(page.get("error", "")))[:80] or "no error named"
            raise PullFailed(f"{what}: Slack answered an error ({code})")
        yield page
        metadata = page.get("response_metadata")
        following = metadata.get("next_cursor") if isinstance(metadata, dict) else ""
        if not isinstance(following, str) or not following:
            return
        if following == cursor:
            raise PullFailed(f"{what}: the next cursor repeats the page just read")
        cursor = following


def _github(client: Client) -> Iterator[Any]:
    """The organisation's app installations, following the ``Link`` header."""
    if not client.conn.tenant:
        raise PullFailed("DISCOVERY_GITHUB_TENANT (the organisation) is not set")
    what = "the GitHub app installations"
    url = client.url(f"/orgs/{quote(client.conn.tenant, safe='')}/installations", per_page="100")
    while url:
        page = _fetch(client, url, what, dict)
        yield page.document
        url = client.follow(url, next_link(page.headers.get("link", "")), what)


def _okta(client: Client) -> Iterator[Any]:
    """Each user with grants as a user object followed by its grant pages (grants that do not
    name their user belong to the user object before them)."""
    what = "the Okta user list"
    url = client.url("/api/v1/users", limit="200")
    while url:
        page = _fetch(client, url, what, list)
        following = client.follow(url, next_link(page.headers.get("link", "")), what)
        for user in page.document:
            if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"]:
                yield from _okta_user(client, user)
        url = following


def _okta_user(client: Client, user: dict[str, Any]) -> Iterator[Any]:
    what = "an Okta user's grants"
    url = client.url(f"/api/v1/users/{quote(user['id'], safe='')}/grants", expand="scope", limit="200")
    announced = False
    while url:
        page = _shaped(client.get(url, what, missing_ok=True), what, list)
        if page is None:
            return
        if page.document:
            if not announced:
                yield user
                announced = True
            yield page.document
        url = client.follow(url, next_link(page.headers.get("link", "")), what)


WALKERS: dict[str, Callable[[Client], Iterator[Any]]] = {
    Source.GOOGLE: _google,
    Source.ENTRA: _entra,
    Source.SLACK: _slack,
    Source.GITHUB: _github,
    Source.OKTA: _okta,
}


def download(conn: Connector, path: Path) -> int:
    """Fetch every page of ``conn``'s source into ``path``, one JSON document per line, within
    the pull's time budget; returns how many documents were written. Raises ``PullFailed``."""
    if not conn.base_url:
        raise PullFailed(f"DISCOVERY_{conn.source.upper()}_BASE_URL is not set")
    if not conn.token:
        raise PullFailed(f"DISCOVERY_{conn.source.upper()}_TOKEN is not set")
    client = Client(conn, deadline=time.monotonic() + settings.DISCOVERY_PULL_BUDGET_SECONDS)
    written = size = 0
    with path.open("wb") as out:
        for document in WALKERS[conn.source](client):
            line = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            size += len(line)
            if size > settings.DISCOVERY_UPLOAD_MAX_BYTES:
                raise PullFailed("the provider's data is larger than DISCOVERY_UPLOAD_MAX_BYTES; nothing was imported")
            out.write(line)
            written += 1
    return written


# --- Pulls ------------------------------------------------------------------------------------


def pull_source(source: str, *, actor: Actor | User) -> DiscoveryImport:
    """Pull ``source`` and import it as a complete listing (``method`` pull). The accountable
    person (the actor, or whom the system acts for) must be an IAM admin. A pull that cannot
    fetch every page records a failed import (audited ``discovery.import_failed``) and imports
    nothing; an import that refuses the data is failed by the importer."""
    owner = accountable_human(actor)
    if owner is None or not is_iam_admin(owner):
        raise PermissionDenied("Only IAM admins pull from the providers.")
    conn = connector(source)
    started_at = timezone.now()
    spool = Path(settings.DISCOVERY_SPOOL_DIR)
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"pull-{source}-{uuid.uuid4().hex}.jsonl"
    try:
        download(conn, path)
    except PullFailed as exc:
        path.unlink(missing_ok=True)
        return _pull_failed(conn, actor=actor, error=str(exc), started_at=started_at)
    except Exception:
        path.unlink(missing_ok=True)
        log.exception("Pull of %s failed unexpectedly", source)
        return _pull_failed(conn, actor=actor, error="the pull failed unexpectedly", started_at=started_at)
    name = f"{source}-pull-{started_at:%Y%m%dT%H%M%SZ}.jsonl"
    try:
        return importer.import_path(
            actor=actor,
            source=source,
            tenant=conn.tenant,
            path=path,
            method=ImportMethod.PULL,
            complete=True,
            file_name=name,
        )
    finally:
        path.unlink(missing_ok=True)


@transaction.atomic
def _pull_failed(conn: Connector, *, actor: Actor | User, error: str, started_at: datetime) -> DiscoveryImport:
    """Record a pull that fetched nothing usable: a failed import naming why, audited like an
    import that failed (``discovery.import_failed``, method pull)."""
    imp = DiscoveryImport.objects.create(
        source=conn.source,
        tenant=conn.tenant,
        method=ImportMethod.PULL,
        complete=True,
        status=ImportStatus.FAILED,
        started_by=accountable_human(actor),
        created_at=started_at,
        started_at=started_at,
        finished_at=timezone.now(),
        error=error[:2000],
    )
    audit_record(
        actor=actor,
        action="discovery.import_failed",
        target=imp,
        after={
            "source": imp.source,
            "tenant": imp.tenant,
            "method": imp.method,
            "complete": imp.complete,
            "status": imp.status,
            "error": imp.error,
        },
    )
    log.warning("Pull of %s failed: %s", conn.source, error)
    return imp


def pull_all() -> dict[str, str]:
    """Pull every configured source, one after the other; one that fails (or raises) does not
    stop the others. The system acts for the pull owner (``importer.pull_owner``); with nobody
    to answer for it nothing is pulled. Returns each source's import status."""
    sources = configured_sources()
    if not sources:
        return {}
    owner = importer.pull_owner()
    if owner is None:
        log.error("Discovery pulls skipped: no active IAM admin to answer for them (DISCOVERY_PULL_OWNER)")
        return {}
    actor = Actor.system(on_behalf_of=owner)
    results: dict[str, str] = {}
    with task_context(user=actor.user):
        for source in sources:
            try:
                results[source] = pull_source(source, actor=actor).status
            except Exception:
                log.exception("Pull of %s failed", source)
                results[source] = ImportStatus.FAILED
    return results


def register() -> None:
    scheduling.register("discovery-pull", "inventory.discovery.tasks.pull_all", settings.DISCOVERY_PULL_CRON)
