"""Settings from the environment: the production shape, Redis, and the development mail sink.

Settings are read once at import, so every variant runs in a fresh Python process with its own
environment (the parent's GOVERNANCE_TESTING and DATABASE_URL are dropped so each child sees only
what the test gives it).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.mail import get_connection, send_mail

ROOT = Path(settings.BASE_DIR)
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "portal.example.com",
}
_DROP = (
    "GOVERNANCE_TESTING",
    "DJANGO_ENV",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "REDIS_URL",
    "EMAIL_URL",
    "DEBUG",
    "DEMO_MODE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    env.update(extra)
    return env


def _run(args: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=_env(extra), capture_output=True, text=True, timeout=120)


def _settings_in(extra: dict[str, str], *names: str) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    proc = _run([sys.executable, "-c", code], extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_production_passes_check_deploy_with_no_warning() -> None:
    proc = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout


def test_production_turns_on_the_security_settings() -> None:
    values = _settings_in(
        PRODUCTION_ENV,
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "DEMO_MODE",
    )
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "DEMO_MODE": False,
    }


@pytest.mark.parametrize(
    "secret",
    [None, "", "short", "django-insecure-development-only-key-never-use-in-production", "a" * 60],
    ids=["missing", "empty", "short", "development-key", "one-character"],
)
def test_production_refuses_to_start_without_a_real_secret_key(secret: str | None) -> None:
    extra = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    if secret is not None:
        extra["SECRET_KEY"] = secret
    proc = _run([sys.executable, "manage.py", "check"], extra)
    assert proc.returncode != 0
    assert "DJANGO_ENV=production needs a real SECRET_KEY" in proc.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    extra = {k: v for k, v in PRODUCTION_ENV.items() if k != "ALLOWED_HOSTS"}
    proc = _run([sys.executable, "manage.py", "check"], extra)
    assert proc.returncode != 0
    assert "needs ALLOWED_HOSTS" in proc.stderr


def test_without_redis_url_the_orm_broker_and_local_cache_are_used() -> None:
    values = _settings_in({}, "Q_CLUSTER", "CACHES")
    assert values["Q_CLUSTER"]["orm"] == "default" and "redis" not in values["Q_CLUSTER"]
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


def test_redis_url_makes_redis_the_broker_and_the_cache() -> None:
    url = "redis://127.0.0.1:6379/1"
    values = _settings_in({"REDIS_URL": url}, "Q_CLUSTER", "CACHES")
    assert values["Q_CLUSTER"]["redis"] == url and "orm" not in values["Q_CLUSTER"]
    assert values["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "",
    }
    # retry must exceed timeout or a slow task is handed out twice
    assert values["Q_CLUSTER"]["retry"] > values["Q_CLUSTER"]["timeout"]


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


_REDIS_ROUND_TRIP = """
import uuid, django
django.setup()
from multiprocessing import Queue, Value
from django.core.cache import cache
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from django_q.worker import worker

broker = get_broker(list_key=f"test-h1-{uuid.uuid4().hex}")
assert type(broker).__name__ == "Redis", type(broker)
try:
    # A project task: the worker refuses functions outside settings.Q_TASK_MODULES.
    task_id = async_task("governance.tasks.ping", "pong", broker=broker)
    assert broker.queue_size() == 1
    (_ack, payload), = broker.dequeue()
    task = SignedPackage.loads(payload)
    assert task["id"] == task_id, task
    tasks, results = Queue(), Queue()
    tasks.put(task)
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    done = results.get(timeout=10)
    cache.set("h1-settings-test", "through redis", 10)
    print(done["success"], done["result"], cache.get("h1-settings-test"), broker.queue_size())
finally:
    broker.delete_queue()
"""


@pytest.mark.skipif(not _redis_reachable(), reason="Redis is not reachable on 127.0.0.1:6379")
def test_a_task_goes_through_the_redis_broker_and_runs() -> None:
    proc = _run([sys.executable, "-c", _REDIS_ROUND_TRIP], {"REDIS_URL": "redis://127.0.0.1:6379/1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True pong through redis 0"


def test_default_email_is_files_in_var_mail() -> None:
    values = _settings_in({}, "EMAIL_BACKEND", "EMAIL_FILE_PATH")
    assert values["EMAIL_BACKEND"] == "governance.mail.EmailBackend"  # one .eml file per email
    assert Path(values["EMAIL_FILE_PATH"]) == ROOT / "var" / "mail"


def test_email_url_selects_smtp() -> None:
    values = _settings_in(
        {"EMAIL_URL": "smtp+tls://user:pw@smtp.example.com:587"},
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
    )
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
    }


def test_file_mail_sink_writes_a_readable_message(tmp_path: Path) -> None:
    connection = get_connection("governance.mail.EmailBackend", file_path=str(tmp_path))
    send_mail(
        "Your review is due",
        "Open http://127.0.0.1:8000/ to decide.",
        None,
        ["rita@example.com"],
        connection=connection,
    )
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    text = files[0].read_text()
    assert "Subject: Your review is due" in text and "To: rita@example.com" in text
    assert "Open http://127.0.0.1:8000/ to decide." in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [("filemail://var/mail", ROOT / "var" / "mail"), ("filemail:///srv/portal-mail", Path("/srv/portal-mail"))],
)
def test_filemail_url_paths_are_relative_to_the_project_or_absolute(url: str, expected: Path) -> None:
    values = _settings_in({"EMAIL_URL": url}, "EMAIL_FILE_PATH")
    assert Path(values["EMAIL_FILE_PATH"]) == expected


def test_a_metrics_token_read_from_a_secret_file_loses_its_trailing_newline() -> None:
    token = "m" * 40
    assert _settings_in({"METRICS_TOKEN": f"{token}\n"}, "METRICS_TOKEN") == {"METRICS_TOKEN": token}
