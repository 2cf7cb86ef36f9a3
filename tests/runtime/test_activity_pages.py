"""The runtime activity page, its CSV export, the home panel and the integration's Runtime
section: who sees which token events, the filters, and a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import User
from inventory import extensions
from inventory.models import Integration, TrustedIssuer, WorkloadBinding
from runtime.models import TokenRevocation
from tests.runtime.activity_support import make_integration, token_event

__all__ = ["make_integration"]  # the fixture, for pytest

pytestmark = pytest.mark.django_db

ACTIVITY = "/runtime/activity/"


def _page(client: Any, **params: Any) -> str:
    response = client.get(ACTIVITY, params)
    assert response.status_code == 200
    return str(response.content.decode())


def _queries(client: Any, path: str, **params: Any) -> int:
    client.get(path, params)  # once-per-process caches warm
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path, params).status_code == 200
    return len(ctx.captured_queries)


# --- Who sees what ------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client: Any) -> None:
    response = client.get(ACTIVITY)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_reviewer_sees_every_event_including_refusals_without_an_integration(
    web_as: Callable[[User], Any], reviewer: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner, name="Deal desk bot")
    token_event(bot, jti="jti-mine")
    token_event(None, outcome="refused", error="invalid_grant", reason="Unknown issuer https://evil.example.")
    html = _page(web_as(reviewer))
    assert "jti-mine" in html and "Deal desk bot" in html
    assert "Unknown issuer https://evil.example." in html


def test_business_user_sees_only_the_events_of_integrations_they_own(
    web_as: Callable[[User], Any], owner: User, outsider: User, make_integration: Callable[..., Integration]
) -> None:
    mine = make_integration(owner, name="Mine")
    theirs = make_integration(outsider, name="Theirs")
    token_event(mine, jti="jti-mine")
    token_event(theirs, jti="jti-theirs")
    token_event(None, outcome="refused", error="invalid_grant", reason="Unknown issuer.")
    html = _page(web_as(owner))
    assert "jti-mine" in html
    assert "jti-theirs" not in html and "Unknown issuer." not in html
    # Asking for another's integration by id shows nothing of it.
    assert "jti-theirs" not in _page(web_as(owner), integration=theirs.pk)


def test_nav_entry_is_for_reviewers_admins_and_auditors(
    web_as: Callable[[User], Any], reviewer: User, iam_admin: User, auditor: User, owner: User
) -> None:
    for user in (reviewer, iam_admin, auditor):
        assert f'href="{ACTIVITY}"' in web_as(user).get("/").content.decode()
    assert f'href="{ACTIVITY}"' not in web_as(owner).get("/").content.decode()


# --- Rows, filters, export ----------------------------------------------------------------------


def test_a_row_shows_who_asked_for_whom_what_and_what_it_got(
    web_as: Callable[[User], Any],
    auditor: User,
    owner: User,
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
) -> None:
    bot = make_integration(owner, name="Mail triage")
    carol = make_user("carol")
    token_event(
        bot,
        acting_for=carol,
        workload_subject="repo:acme/triage:environment:prod",
        scopes_requested=["msgraph:Mail.Read", "msgraph:Mail.Send"],
        scopes_granted=["msgraph:Mail.Read"],
        task="Sort the support inbox",
        jti="jti-row",
    )
    html = _page(web_as(auditor))
    for expected in (
        f'href="/inventory/{bot.pk}/"',
        "Mail triage",
        "owner",
        "carol",
        "repo:acme/triage:environment:prod",
        "https://issuer.example.com",
        "https://crm.example.com",
        "<code>msgraph:Mail.Send</code>",
        "Sort the support inbox",
        "jti-row",
    ):
        assert expected in html, expected


def test_filters_by_integration_owner_outcome_error_and_time(
    web_as: Callable[[User], Any],
    reviewer: User,
    owner: User,
    outsider: User,
    make_integration: Callable[..., Integration],
) -> None:
    now = timezone.now()
    first = make_integration(owner, name="First")
    second = make_integration(outsider, name="Second")
    token_event(first, jti="jti-first", at=now - timedelta(hours=3))
    token_event(second, jti="jti-second", at=now - timedelta(hours=1))
    token_event(first, outcome="refused", error="access_denied", reason="Recertification overdue.", at=now)
    client = web_as(reviewer)
    by_integration = _page(client, integration=first.pk)
    assert "jti-first" in by_integration and "jti-second" not in by_integration
    by_owner = _page(client, owner="outsider")
    assert "jti-second" in by_owner and "jti-first" not in by_owner
    refused = _page(client, outcome="refused")
    assert "Recertification overdue." in refused and "jti-first" not in refused
    by_error = _page(client, error="invalid_scope")
    assert "Recertification overdue." not in by_error
    window = _page(
        client, since=(now - timedelta(hours=2)).isoformat(), until=(now - timedelta(minutes=30)).isoformat()
    )
    assert "jti-second" in window and "jti-first" not in window and "Recertification overdue." not in window


def test_a_malformed_filter_is_shown_next_to_its_field(web_as: Callable[[User], Any], reviewer: User) -> None:
    html = _page(web_as(reviewer), since="yesterday-ish")
    assert 'id="id_since-error"' in html


def test_csv_export_has_the_filtered_rows_and_neutralises_formulas(
    web_as: Callable[[User], Any], reviewer: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner, name="Exporter")
    token_event(bot, jti="jti-export", task='=HYPERLINK("https://evil.example")')
    token_event(bot, outcome="refused")
    response = web_as(reviewer).get(ACTIVITY, {"outcome": "issued", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("id,at,outcome,error,reason,integration_id,integration,owner,acting_for")
    assert len(lines) == 2
    assert "jti-export" in lines[1] and ",Exporter,owner," in lines[1]
    assert "'=HYPERLINK" in lines[1]


def test_csv_export_holds_only_what_the_user_may_see(
    web_as: Callable[[User], Any], owner: User, outsider: User, make_integration: Callable[..., Integration]
) -> None:
    token_event(make_integration(owner, name="Mine"), jti="jti-mine")
    token_event(make_integration(outsider, name="Theirs"), jti="jti-theirs")
    response = web_as(owner).get(ACTIVITY, {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert "jti-mine" in body and "jti-theirs" not in body


def test_activity_page_runs_a_fixed_number_of_queries_however_many_rows_it_shows(
    web_as: Callable[[User], Any],
    reviewer: User,
    owner: User,
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
) -> None:
    bot = make_integration(owner)
    token_event(bot, acting_for=make_user())
    token_event(bot, outcome="refused")
    small = {user.username: _queries(web_as(user), ACTIVITY) for user in (reviewer, owner)}
    for n in range(30):
        other = make_integration(make_user(f"owner{n}"), name=f"Bot {n}")
        token_event(other, acting_for=make_user())
        token_event(bot, acting_for=make_user())
        token_event(None, outcome="refused")
    for user in (reviewer, owner):
        assert _queries(web_as(user), ACTIVITY) == small[user.username], user.username
    assert _queries(web_as(reviewer), ACTIVITY, page=2) == small["reviewer"]


# --- Home panel ---------------------------------------------------------------------------------


def test_home_panel_counts_the_last_24_hours_for_reviewers(
    web_as: Callable[[User], Any], reviewer: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    now = timezone.now()
    token_event(bot, at=now - timedelta(hours=30))  # too old to count
    token_event(bot, at=now - timedelta(hours=2))
    token_event(bot)
    token_event(bot, outcome="refused")
    html = web_as(reviewer).get("/").content.decode()
    assert "Runtime, last 24 hours" in html
    assert "<strong>2</strong> tokens issued, <strong>1</strong> still live" in html
    assert "request refused" in html and "outcome=refused" in html


def test_home_panel_is_not_shown_to_business_users(web_as: Callable[[User], Any], owner: User) -> None:
    assert "Runtime, last 24 hours" not in web_as(owner).get("/").content.decode()


def test_home_page_queries_do_not_grow_with_token_events(
    web_as: Callable[[User], Any], iam_admin: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    token_event(bot)
    client = web_as(iam_admin)
    small = _queries(client, "/")
    for _ in range(20):
        token_event(bot)
        token_event(bot, outcome="refused")
    assert _queries(client, "/") == small


# --- The integration's Runtime section ----------------------------------------------------------


def _detail(client: Any, integration: Integration) -> str:
    response = client.get(f"/inventory/{integration.pk}/")
    assert response.status_code == 200
    return str(response.content.decode())


def test_runtime_section_counts_live_tokens_and_lists_recent_refusals(
    web_as: Callable[[User], Any], owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner, workload_identity="spiffe://example.org/ai/bot")
    other = make_integration(owner, name="Other bot")
    now = timezone.now()
    token_event(bot)  # live
    token_event(bot, jti="jti-revoked")  # issued, revoked: not live
    TokenRevocation.objects.create(jti="jti-revoked", expires_at=now + timedelta(minutes=10))
    token_event(bot, at=now - timedelta(minutes=20), expires_in=timedelta(minutes=5))  # expired
    token_event(bot, at=now - timedelta(hours=25))  # outside the last 24 hours
    token_event(other)  # another integration's
    for n in range(12):
        token_event(bot, outcome="refused", reason=f"Refusal number {n}.", at=now - timedelta(minutes=n))
    html = _detail(web_as(owner), bot)
    assert 'id="h-runtime"' in html
    assert "<strong>3</strong> tokens issued, <strong>1</strong> live now" in html
    assert "<strong>12</strong> requests refused" in html
    assert "Refusal number 0." in html and "Refusal number 9." in html
    assert "Refusal number 10." not in html  # the latest ten only
    assert f'href="/runtime/activity/?integration={bot.pk}"' in html
    assert "Identity: declared only" in html


def test_runtime_section_summarises_a_bound_and_a_proven_identity(
    web_as: Callable[[User], Any], owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    issuer = TrustedIssuer.objects.create(name="Cluster A", kind="oidc", issuer="https://k8s.example.com")
    binding = WorkloadBinding.objects.create(
        integration=bot, issuer=issuer, subject="system:serviceaccount:ai:bot", claims_key="0" * 64
    )
    client = web_as(owner)
    html = _detail(client, bot)
    assert "Identity: bound, not yet proven" in html and "no token has proven it yet" in html
    with time_machine.travel(timezone.now(), tick=False):
        binding.first_verified_at = binding.last_verified_at = timezone.now()
        binding.save()
        html = _detail(client, bot)
    assert "Identity: proven" in html and "system:serviceaccount:ai:bot" in html and "Cluster A" in html


def test_runtime_section_shows_nothing_to_an_outsider(
    web_as: Callable[[User], Any], owner: User, outsider: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    token_event(bot, outcome="refused", reason="Secret reason.")
    assert web_as(outsider).get(f"/inventory/{bot.pk}/").status_code == 404


def test_integration_page_queries_do_not_grow_with_its_token_events(
    web_as: Callable[[User], Any], reviewer: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    token_event(bot)
    token_event(bot, outcome="refused")
    client = web_as(reviewer)
    small = _queries(client, f"/inventory/{bot.pk}/")
    for _ in range(20):
        token_event(bot)
        token_event(bot, outcome="refused")
    assert _queries(client, f"/inventory/{bot.pk}/") == small


# --- The section registry -----------------------------------------------------------------------


def test_sections_render_in_order_and_a_section_with_nothing_to_show_is_left_out(
    rf: Any, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    saved = dict(extensions._SECTIONS)
    try:
        extensions.register_integration_section("zz-late", template="late.html", build=lambda r, i: {}, order=1)
        extensions.register_integration_section("early", template="early.html", build=lambda r, i: {"n": 1}, order=0)
        extensions.register_integration_section("hidden", template="hidden.html", build=lambda r, i: None, order=0)
        request = rf.get("/")
        request.user = owner
        names = [section["name"] for section in extensions.integration_sections(request, bot)]
        assert names[:2] == ["early", "zz-late"] and "hidden" not in names and "runtime" in names
    finally:
        extensions._SECTIONS.clear()
        extensions._SECTIONS.update(saved)
