"""The demo organisation and the home page each role sees; the outbox page for IAM admins."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from governance import services
from governance.audit import verify_chain
from governance.models import AuditChainCheck, AuditEvent, EmailStatus, OutboundEmail, User
from governance.roles import Role, role_names

pytestmark = pytest.mark.django_db

# username -> (role heading on the home page, a kernel panel heading that role must see)
DEMO_HOMES = {
    "alice": ("Your AI integrations", "Your API tokens"),
    "bob": ("Your AI integrations", "Your API tokens"),
    "mark": ("Your AI integrations", "Your API tokens"),
    "rita": ("Your reviews", "Your API tokens"),
    "raj": ("Your reviews", "Your API tokens"),
    "sofia": ("Your reviews", "Your API tokens"),
    "omar": ("Your reviews", "Your API tokens"),
    "ivan": ("Portal administration", "Email outbox"),
    "audrey": ("Audit overview", "Audit trail"),
}


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_seed_demo_is_idempotent_for_every_model_of_every_app(roles: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    before = _row_counts()
    call_command("seed_demo", stdout=StringIO())
    after = _row_counts()
    changed = {label: (before[label], after[label]) for label in before if before[label] != after[label]}
    assert not changed, f"a second seed_demo changed these row counts (before, after): {changed}"
    assert before["governance.User"] >= 9


def test_demo_audit_trail_verifies(demo_org: None) -> None:
    checked, broken = verify_chain()
    assert broken is None and checked >= 9  # at least one roles event per demo person
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit trail intact" in out.getvalue()
    assert AuditChainCheck.objects.get().intact


def test_demo_people_have_their_roles_and_managers(people: None) -> None:
    by_name = {u.username: u for u in User.objects.filter(username__in=DEMO_HOMES)}
    assert len(by_name) == 9
    assert role_names(by_name["ivan"]) == {Role.IAM_ADMIN} and by_name["ivan"].is_staff
    assert role_names(by_name["audrey"]) == {Role.AUDITOR}
    assert role_names(by_name["sofia"]) == {Role.REVIEWER, "security_reviewers"}
    assert by_name["alice"].manager == by_name["mark"] and by_name["bob"].manager == by_name["mark"]
    assert all(u.check_password("demo") for u in by_name.values())


def test_login_page_in_demo_mode_lists_the_demo_accounts(client: Any, settings: Any) -> None:
    settings.DEMO_MODE = True
    html = client.get("/accounts/login/").content.decode()
    for username in DEMO_HOMES:
        assert f"<code>{username}</code>" in html
    assert "password is <code>demo</code>" in html
    settings.DEMO_MODE = False
    assert "Demo accounts" not in client.get("/accounts/login/").content.decode()


def test_each_demo_user_signs_in_and_sees_the_home_page_for_their_role(client: Any, demo_org: None) -> None:
    """With the whole demo organisation, so every app's panels render with real data."""
    for username, (heading, panel) in DEMO_HOMES.items():
        response = client.post("/accounts/login/", {"username": username, "password": "demo"}, follow=True)
        assert response.redirect_chain[-1][0] == "/", username
        html = response.content.decode()
        assert f"<h1>{heading}</h1>" in html, username
        assert panel in html, username
        if username != "ivan":
            assert "People without a role" not in html, username
        if username != "audrey":
            assert "Chain intact" not in html and "has not been verified yet" not in html, username
        client.post("/accounts/logout/")


def test_wrong_password_is_refused_with_a_message(client: Any, people: None) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_auditor_panel_shows_the_last_chain_check(client: Any, people: None) -> None:
    call_command("verify_audit", stdout=StringIO())
    client.force_login(User.objects.get(username="audrey"))
    html = client.get("/").content.decode()
    assert "Chain intact" in html
    with connection.cursor() as cur:
        first = AuditEvent.objects.order_by("id").first()
        assert first is not None
        cur.execute(f"UPDATE {AuditEvent._meta.db_table} SET reason = 'x' WHERE id = %s", [first.pk])
    from governance.tasks import audit_verify

    assert audit_verify() is False
    html = client.get("/").content.decode()
    assert f"Chain broken at event #{first.pk}" in html


def test_iam_admin_panels_show_users_without_roles_and_deactivations(
    client: Any, people: None, make_user: Callable[..., User]
) -> None:
    ivan = User.objects.get(username="ivan")
    make_user("newjoiner", first_name="New", last_name="Joiner")
    services.user_deactivate(actor=ivan, user=User.objects.get(username="bob"), reason="Left the company")
    client.force_login(ivan)
    html = client.get("/").content.decode()
    assert "New Joiner" in html
    # The person is named and linked (the admin page of the account), with the reason.
    assert re.search(r"<li><span class=\"target\">.*Bob Baker.*</span> <span class=\"muted\">by ivan", html), html
    assert "Left the company" in html


def _queue_failed_email(user: User, key: str) -> OutboundEmail:
    with transaction.atomic():
        email = services.email_enqueue(
            key=key,
            recipient=user,
            subject="Decision needed",
            template="governance_notice",
            context={"message": "m", "path": "/"},
        )
    assert email is not None
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=EmailStatus.FAILED, attempts=8, last_error="SMTPDataError: 451"
    )
    return email


def _home_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_home_page_runs_a_fixed_number_of_queries_for_every_role(
    client: Any, demo_org: None, make_user: Callable[..., User]
) -> None:
    for username in ("alice", "rita", "ivan", "audrey"):
        user = User.objects.get(username=username)
        client.force_login(user)

        def grow(n: int, tag: str, user: User = user) -> None:
            for i in range(n):
                services.api_token_issue(actor=user, user=user, name=f"{tag}{i}")
                _queue_failed_email(user, f"{user.username}-{tag}-{i}")
                make_user(f"{user.username}{tag}norole{i}")

        grow(2, "a")
        small = _home_queries(client)
        grow(20, "b")
        large = _home_queries(client)
        assert small == large, (username, small, large)


def test_outbox_page_lists_failed_emails_and_iam_admin_retries_one(client: Any, people: None) -> None:
    ivan = User.objects.get(username="ivan")
    email = _queue_failed_email(User.objects.get(username="alice"), "k1")
    client.force_login(ivan)
    page = client.get("/outbox/")
    html = page.content.decode()
    assert page.status_code == 200 and "alice@example.com" in html and "Retry now" in html
    response = client.post(f"/outbox/{email.pk}/retry/", follow=True)
    assert "will be sent again now" in response.content.decode()
    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.PENDING
    assert AuditEvent.objects.filter(action="outbound_email.retried", actor=ivan).exists()


def test_auditor_reads_the_outbox_without_a_retry_button(client: Any, people: None) -> None:
    email = _queue_failed_email(User.objects.get(username="alice"), "k2")
    client.force_login(User.objects.get(username="audrey"))
    html = client.get("/outbox/").content.decode()
    assert "alice@example.com" in html and "Retry now" not in html
    assert client.post(f"/outbox/{email.pk}/retry/").status_code == 403
    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.FAILED


def test_outbox_is_not_found_for_business_users_and_reviewers(client: Any, people: None) -> None:
    email = _queue_failed_email(User.objects.get(username="alice"), "k3")
    for username in ("alice", "rita"):
        client.force_login(User.objects.get(username=username))
        assert client.get("/outbox/").status_code == 404
        assert client.post(f"/outbox/{email.pk}/retry/").status_code == 404
    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.FAILED


def test_outbox_page_runs_a_fixed_number_of_queries(client: Any, people: None) -> None:
    alice = User.objects.get(username="alice")
    client.force_login(User.objects.get(username="ivan"))

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/outbox/").status_code == 200
        return len(ctx.captured_queries)

    for i in range(3):
        _queue_failed_email(alice, f"s{i}")
    small = count()
    for i in range(30):
        _queue_failed_email(alice, f"l{i}")
    assert count() == small
