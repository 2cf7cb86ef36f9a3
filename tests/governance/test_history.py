"""django-simple-history records who made a change, whatever the entry point: a web page, an API
call with a token, a background task or command (through ``task_context``)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from governance.actors import Actor
from governance.context import task_context
from governance.models import ApiToken, User
from governance.services import api_token_issue, api_token_revoke, user_deactivate

pytestmark = pytest.mark.django_db


def _last_history_user(user: User) -> str | None:
    row = User.history.filter(id=user.pk).order_by("-history_id").first()
    assert row is not None
    return row.history_user.username if row.history_user else None


@override_settings(ROOT_URLCONF="tests.governance.urls_history")
def test_web_request_records_the_signed_in_user(client: Any, iam_admin: User, owner: User) -> None:
    client.force_login(iam_admin)
    assert client.post("/test-deactivate/owner/").status_code == 200
    assert _last_history_user(owner) == "admin"


@override_settings(ROOT_URLCONF="tests.governance.urls_history")
def test_token_api_call_records_the_tokens_user(iam_admin: User, owner: User) -> None:
    out = StringIO()
    call_command("issue_api_token", "admin", stdout=out, stderr=StringIO())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    assert client.post("/api/v1/test-deactivate/owner/").status_code == 200
    assert _last_history_user(owner) == "admin"


def test_background_work_records_the_user_of_its_task_context(iam_admin: User, owner: User) -> None:
    with task_context(user=iam_admin):
        user_deactivate(actor=Actor.system(on_behalf_of=iam_admin), user=owner, reason="leaver sweep")
    assert _last_history_user(owner) == "admin"


def test_token_revocation_is_in_the_tokens_history(iam_admin: User, owner: User) -> None:
    token, _key = api_token_issue(actor=iam_admin, user=owner)
    api_token_revoke(actor=iam_admin, token=token, reason="leaked")
    rows = list(ApiToken.history.filter(id=token.pk).order_by("history_id"))
    assert [r.history_type for r in rows] == ["+", "~"]
    assert rows[-1].revoked_at is not None and rows[-1].history_user == iam_admin
    assert rows[-1].history_change_reason == "leaked"


def test_deactivation_revokes_tokens_with_history(iam_admin: User, owner: User) -> None:
    token, _key = api_token_issue(actor=iam_admin, user=owner)
    user_deactivate(actor=iam_admin, user=owner, reason="left")
    token.refresh_from_db()
    assert token.revoked_at is not None
    last = ApiToken.history.filter(id=token.pk).order_by("-history_id").first()
    assert last is not None and last.revoked_at is not None and last.history_user == iam_admin
