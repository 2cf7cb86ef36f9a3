"""The observability settings: production stays clean under ``check --deploy`` with them set, and a
malformed value is a system check error naming the setting, not a surprise at the first scrape or
stream."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from governance.observability import checks, config

ROOT = Path(settings.BASE_DIR)


def ids(**overrides: object) -> list[str]:
    defaults: dict[str, object] = {
        "METRICS_TOKEN": "",
        "METRICS_ALLOWED_NETWORKS": [],
        "AUDIT_STREAM_FILE": "",
        "AUDIT_STREAM_FILE_MAX_BYTES": 1000,
        "AUDIT_STREAM_FILE_BACKUPS": 1,
        "AUDIT_STREAM_SYSLOG": "",
        "PROMETHEUS_MULTIPROC_DIR": "",
    }
    with override_settings(**(defaults | overrides)):
        return [message.id or "" for message in checks.observability_settings()]


@pytest.mark.db_agnostic
def test_production_with_observability_set_passes_check_deploy(tmp_path: Path) -> None:
    keep = {
        key: value
        for key, value in os.environ.items()
        if key not in ("GOVERNANCE_TESTING", "DATABASE_URL", "REDIS_URL")
    }
    env = keep | {
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "portal.example.com",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,fd00::/8",
        "METRICS_PLAIN_HTTP": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "AUDIT_STREAM_FILE": str(tmp_path / "audit.jsonl"),
        "AUDIT_STREAM_SYSLOG": "tcp://siem.example.com:601",
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING'); "
        "print(json.dumps([settings.SECURE_SSL_REDIRECT, settings.SECURE_REDIRECT_EXEMPT, settings.MIDDLEWARE[0]]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        True,
        ["^metrics$"],
        "governance.observability.middleware.RequestMetricsMiddleware",
    ]


def test_nothing_set_is_clean() -> None:
    assert ids() == []


def test_a_network_that_is_not_one_is_an_error() -> None:
    assert ids(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8", "ten.0.0.0/8"]) == ["governance.E101"]


def test_a_short_token_is_a_warning() -> None:
    assert ids(METRICS_TOKEN="short") == ["governance.W101"]
    assert ids(METRICS_TOKEN="t" * 32) == []


@pytest.mark.parametrize(
    ("max_bytes", "backups", "expected"),
    [(1000, 0, ["governance.E102"]), (-1, 1, ["governance.E102"]), (0, 0, []), (1000, 1, [])],
    ids=["rotating-without-backup", "negative-size", "never-rotating", "rotating"],
)
def test_a_file_sink_that_would_lose_lines_is_an_error(max_bytes: int, backups: int, expected: list[str]) -> None:
    assert (
        ids(
            AUDIT_STREAM_FILE="var/audit.jsonl",
            AUDIT_STREAM_FILE_MAX_BYTES=max_bytes,
            AUDIT_STREAM_FILE_BACKUPS=backups,
        )
        == expected
    )


@pytest.mark.parametrize(
    "address",
    [
        "siem.example.com:514",
        "http://siem.example.com",
        "udp://",
        "tcp://siem:port",
        "udp://siem/path",
        "udp://user@siem",
    ],
)
def test_a_syslog_address_that_is_not_one_is_an_error(address: str) -> None:
    assert ids(AUDIT_STREAM_SYSLOG=address) == ["governance.E103"]
    with (
        override_settings(AUDIT_STREAM_SYSLOG=address),
        pytest.raises(ImproperlyConfigured, match="AUDIT_STREAM_SYSLOG"),
    ):
        config.syslog_address()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("udp://siem.example.com", "udp://siem.example.com:514"),
        ("tcp://siem.example.com", "tcp://siem.example.com:601"),
        ("tcp://10.0.0.9:6514", "tcp://10.0.0.9:6514"),
        ("udp://[2001:db8::9]:1514", "udp://[2001:db8::9]:1514"),
    ],
)
def test_syslog_addresses_and_their_default_ports(address: str, expected: str) -> None:
    with override_settings(AUDIT_STREAM_SYSLOG=address):
        assert str(config.syslog_address()) == expected


def test_a_relative_stream_file_is_under_the_project_folder() -> None:
    with override_settings(AUDIT_STREAM_FILE="var/audit.jsonl"):
        file_config = config.file_sink_config()
    assert file_config is not None and file_config.path == ROOT / "var" / "audit.jsonl"


def test_a_missing_multiprocess_directory_is_an_error(tmp_path: Path) -> None:
    assert ids(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing")) == ["governance.E104"]
    assert ids(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)) == []
