"""Shared fixtures: the cast (owner, reviewer, admin, auditor, outsider) and API clients.

Data is built through services where a service exists, so tests hold the same rows the portal
would write (audited, with their history).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from governance.models import User
from governance.roles import Pool, Role, roles_sync
from governance.services import api_token_issue
from tests.mail_support import Mailbox, free_port


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's, plus: on PostgreSQL, end the sessions that server threads (live servers,
    worker threads) left open on the test database, so that it can be dropped at the end."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    from runtime import hotcache, keys
    from runtime.policy import log as decision_log
    from runtime.policy import pdp

    # The portal's signing keys, the token endpoint's copies of configuration and the policy
    # decision point's parsed versions and stored snapshots are kept per process; each test's
    # rows vanish with it.
    def clear() -> None:
        cache.clear()
        keys.clear_caches()
        hotcache.clear_all()
        pdp.clear_caches()
        decision_log.forget_snapshots()

    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _default_policy_after_flush(request: pytest.FixtureRequest) -> None:
    """Tests on a flushed database (live servers, browsers) lose the policy version the
    migrations seed; without it every runtime decision is a deny. Seed it again for them."""
    if "transactional_db" not in request.fixturenames and "live_server" not in request.fixturenames:
        return
    request.getfixturevalue("transactional_db")
    from runtime.policy.defaults import seed_default_version

    seed_default_version()


@pytest.fixture(autouse=True, scope="session")
def _audit_dev_key_outside_the_project(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A scheduler pass in a test may sign an audit checkpoint, and the demo data makes its
    workload issuer's key: both keys go to a temporary folder, never into the project's var/."""
    from django.conf import settings

    settings.AUDIT_DEV_SIGNING_KEY_FILE = tmp_path_factory.mktemp("audit-key") / "audit-signing-key.pem"
    settings.RUNTIME_DEMO_KEY_FILE = tmp_path_factory.mktemp("demo-key") / "demo-workload-issuer.pem"
    # Discovery uploads (the API fuzzing run sends some) wait in a temporary folder too.
    settings.DISCOVERY_SPOOL_DIR = tmp_path_factory.mktemp("discovery-spool")


@pytest.fixture
def roles(db: Any) -> None:
    roles_sync()


@pytest.fixture
def make_user(roles: None) -> Callable[..., User]:
    counter = {"n": 0}

    def make(username: str | None = None, *role_names: str, manager: User | None = None, **extra: Any) -> User:
        counter["n"] += 1
        name = username or f"user{counter['n']}"
        user = User.objects.create_user(
            username=name, email=f"{name}@example.com", password="pw", manager=manager, **extra
        )
        if role_names:
            user.groups.set(Group.objects.filter(name__in=role_names))
        return user

    return make


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("owner", Role.BUSINESS_USER)


@pytest.fixture
def outsider(make_user: Callable[..., User]) -> User:
    return make_user("outsider", Role.BUSINESS_USER)


@pytest.fixture
def reviewer(make_user: Callable[..., User]) -> User:
    return make_user("reviewer", Role.REVIEWER, Pool.IAM_REVIEWERS)


@pytest.fixture
def second_reviewer(make_user: Callable[..., User]) -> User:
    return make_user("reviewer2", Role.REVIEWER, Pool.IAM_REVIEWERS)


@pytest.fixture
def security_reviewer(make_user: Callable[..., User]) -> User:
    return make_user("security", Role.REVIEWER, Pool.SECURITY_REVIEWERS)


@pytest.fixture
def iam_admin(make_user: Callable[..., User]) -> User:
    return make_user("admin", Role.IAM_ADMIN, is_staff=True)


@pytest.fixture
def auditor(make_user: Callable[..., User]) -> User:
    return make_user("auditor", Role.AUDITOR)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as() -> Callable[[User], APIClient]:
    """An API client authenticated as ``user`` (force_authenticate: no token round trip)."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def web_as(client: Any) -> Callable[[User], Any]:
    """The Django test client, logged in as ``user`` through the session."""

    def make(user: User) -> Any:
        client.force_login(user)
        return client

    return make


@pytest.fixture
def token_client(db: Any) -> Callable[[User], APIClient]:
    """An API client with a real ``Authorization: Token`` header (what the idempotency,
    throttling and audit middleware see; ``force_authenticate`` would hide the caller)."""

    def make(user: User) -> APIClient:
        _token, key = api_token_issue(actor=user, user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server the email backend sends to: ``(mailbox, port)``."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            OUTBOX_RETRY_BASE_SECONDS=60,
        ):
            yield mailbox, port
    finally:
        controller.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures a test records with ``record_property("schemathesis", ...)`` (the API fuzzing run's
    number of requests), shown after the run also under pytest-xdist, where prints are swallowed."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "schemathesis" and report.when == "call":
                terminalreporter.write_line(str(value))
