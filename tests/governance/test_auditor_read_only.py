"""An auditor reads every page and endpoint and changes nothing.

The URLs are enumerated from the resolver, so every page and endpoint other apps add later is
covered automatically: patterns with an id parameter are filled with a real object of the view's
model from the demo data (``seed_demo``); patterns whose parameters cannot be built are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from governance.api.problems import PROBLEM_CONTENT_TYPE
from governance.models import AuditEvent, User
from governance.roles import Role

pytestmark = pytest.mark.django_db

# Signing in and out, and the SSO round trip, change nothing governed.
# /metrics is the scraper's (a token or a network, never a session): to a session it is not there.
NOT_GOVERNED = (
    "/accounts/login/",
    "/accounts/logout/",
    "/admin/logout/",
    "/login/",
    "/complete/",
    "/disconnect/",
    "/metrics",
)
# Downloading the evidence pack changes nothing either: the audit trail records the export, which
# is what an auditor asking for evidence should leave behind (tests/controls/test_pack.py).
EXPORTS = ("/evidence/pack/", "/api/v1/evidence-pack/")
UNSAFE = ("post", "put", "patch", "delete")
_ROUTE_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_REGEX_PARAM = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
_REGEX_META = re.compile(r"[\\()\[\]*+?|{}^$]")
_ID_NAMES = {"pk", "id", "object_id"}


@dataclass(frozen=True)
class Endpoint:
    path: str
    name: str

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/admin/")


def _model_of(callback: Any) -> type[models.Model] | None:
    model_admin = getattr(callback, "model_admin", None)
    if model_admin is not None:
        return model_admin.model
    view_cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_cls is None:
        return None
    queryset = getattr(view_cls, "queryset", None)
    if queryset is not None:
        return queryset.model
    model = getattr(view_cls, "model", None)
    if model is not None:
        return model
    serializer = getattr(view_cls, "serializer_class", None)
    meta = getattr(serializer, "Meta", None)
    return getattr(meta, "model", None)


def _fill(piece: str, pattern: Any, value: str | None) -> str | None:
    """The concrete text of one pattern piece, or None when it cannot be built."""
    if isinstance(pattern, RoutePattern):
        names = [m.group("name") for m in _ROUTE_PARAM.finditer(piece)]
        if not names:
            return piece
        if value is None or any(n not in _ID_NAMES for n in names) or len(names) != 1:
            return None
        return _ROUTE_PARAM.sub(value, piece)
    if isinstance(pattern, RegexPattern):
        text = piece.removeprefix("^").removesuffix("$").removesuffix("\\Z")
        names = [m.group("name") for m in _REGEX_PARAM.finditer(text)]
        if names:
            if value is None or len(names) != 1 or names[0] not in _ID_NAMES:
                return None
            text = _REGEX_PARAM.sub(value, text)
        return None if _REGEX_META.search(text) else text
    return None


def _walk(patterns: list[Any], prefix: str = "", prefix_pieces: tuple[tuple[str, Any], ...] = ()) -> Iterator[Endpoint]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(
                entry.url_patterns,
                prefix,
                (
                    *prefix_pieces,
                    (
                        str(entry.pattern.regex.pattern)
                        if isinstance(entry.pattern, RegexPattern)
                        else str(entry.pattern),
                        entry.pattern,
                    ),
                ),
            )
            continue
        assert isinstance(entry, URLPattern)
        model = _model_of(entry.callback)
        obj = model._default_manager.order_by("pk").first() if model is not None else None
        value = str(obj.pk) if obj is not None else None
        parts = []
        for piece, pattern in (
            *prefix_pieces,
            (
                str(entry.pattern.regex.pattern) if isinstance(entry.pattern, RegexPattern) else str(entry.pattern),
                entry.pattern,
            ),
        ):
            filled = _fill(piece, pattern, value)
            if filled is None:
                break
            parts.append(filled)
        else:
            path = "/" + "".join(parts)
            yield Endpoint(path=path, name=entry.name or str(getattr(entry.callback, "__name__", "")))


def endpoints() -> list[Endpoint]:
    seen: dict[str, Endpoint] = {}
    for endpoint in _walk(get_resolver().url_patterns):
        seen.setdefault(endpoint.path, endpoint)
    return sorted(seen.values(), key=lambda e: e.path)


def _audrey() -> User:
    user = User.objects.get(username="audrey")
    assert set(user.groups.values_list("name", flat=True)) == {Role.AUDITOR}
    return user


@pytest.fixture
def audrey(people: None) -> User:
    return _audrey()


@pytest.fixture
def audrey_in_demo_org(demo_org: None) -> User:
    """With every app's demo data, so pages and endpoints that take an id can be built."""
    return _audrey()


def test_the_walk_finds_the_kernels_pages_and_endpoints(audrey: User) -> None:
    paths = {e.path for e in endpoints()}
    assert {"/", "/audit/", "/admin/", "/api/v1/audit-events/", "/api/v1/schema/"} <= paths
    assert "/admin/governance/auditevent/" in paths
    assert any(re.fullmatch(r"/api/v1/audit-events/\d+/", p) for p in paths)
    assert any(re.fullmatch(r"/admin/governance/user/\d+/change/", p) for p in paths)


def test_auditor_reads_every_page_and_endpoint_and_changes_nothing(client: Any, audrey_in_demo_org: User) -> None:
    client.force_login(audrey_in_demo_org)
    _assert_changes_nothing(client)  # the stronger guarantee first
    _assert_reads_everything(client)


def _assert_reads_everything(client: Any) -> None:
    failures = []
    for endpoint in endpoints():
        if endpoint.path.startswith(NOT_GOVERNED):
            continue
        response = client.get(endpoint.path)
        # 405: an action endpoint that only accepts POST. 403: a form whose only use is a change
        # (register, edit, add): the auditor sees that it exists but may not act. Never 404
        # (hidden from the auditor) and never an error.
        allowed = {200, 405} if endpoint.is_api else {200, 403, 405}
        if endpoint.is_admin:
            allowed |= {302}
        if response.status_code not in allowed:
            failures.append(f"GET {endpoint.path} -> {response.status_code}")
    assert not failures, (
        "An auditor must be able to read every page and endpoint; let the view's "
        "permission admit auditors for GET (governance.roles.is_auditor / sees_everything):\n" + "\n".join(failures)
    )


def test_auditor_reads_the_admin_but_it_offers_no_change(client: Any, audrey: User) -> None:
    client.force_login(audrey)
    index = client.get("/admin/")
    assert index.status_code == 200
    html = index.content.decode()
    assert "Audit events" in html and "Users" in html
    changelist = client.get("/admin/governance/user/")
    assert changelist.status_code == 200
    page = client.get(f"/admin/governance/user/{audrey.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body and "Close" in body
    assert client.get("/admin/governance/user/add/").status_code == 403


def _assert_refused_page(response: Any, what: str) -> None:
    assert response.status_code == 403, f"{what} -> {response.status_code}"
    assert "read-only access" in response.content.decode(), what


def _assert_refused_problem(response: Any, what: str, *, allowed: tuple[int, ...] = (403,)) -> None:
    assert response.status_code in allowed, f"{what} -> {response.status_code}"
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE), what


def _assert_changes_nothing(client: Any) -> None:
    """Web pages answer the 403 page, the API (session) a 403 problem; nothing changes."""
    groups_before = Group.objects.count()
    events_before = AuditEvent.objects.count()
    for endpoint in endpoints():
        if endpoint.path.startswith(NOT_GOVERNED + EXPORTS):
            continue
        for method in UNSAFE:
            response = getattr(client, method)(endpoint.path, data={}, content_type="application/json")
            what = f"{method.upper()} {endpoint.path}"
            if endpoint.is_api:
                _assert_refused_problem(response, what)
                assert "read-only" in response.json()["detail"], what
            else:
                _assert_refused_page(response, what)
    # An admin form post (as a browser would send it) is refused as well.
    response = client.post("/admin/auth/group/add/", {"name": "sneaky"})
    _assert_refused_page(response, "admin add group")
    assert Group.objects.count() == groups_before
    assert AuditEvent.objects.count() == events_before


def test_every_api_change_is_refused_for_an_auditors_token(audrey_in_demo_org: User) -> None:
    out = StringIO()
    call_command("issue_api_token", "audrey", stdout=out, stderr=StringIO())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    checked = 0
    for endpoint in endpoints():
        if not endpoint.is_api or endpoint.path.startswith(EXPORTS):
            continue
        assert client.get(endpoint.path).status_code in (200, 405), endpoint.path
        for method in UNSAFE:
            response = getattr(client, method)(endpoint.path, {}, format="json")
            # 405 only where the view takes no such method at all (the schema and docs pages).
            _assert_refused_problem(response, f"{method.upper()} {endpoint.path}", allowed=(403, 405))
            if response.status_code == 403:
                assert "read-only" in response.json()["detail"]
                checked += 1
    assert checked >= 4  # at least the audit-events list and detail refuse every method
