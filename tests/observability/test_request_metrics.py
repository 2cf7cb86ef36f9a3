"""Request latencies: every request is timed by method, URL pattern name and status class (never
the raw path); the scrape itself is not; several web processes are read together in
prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from governance.models import User
from tests.observability.conftest import Samples, parse

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
COUNT = "governance_http_request_duration_seconds_count"


def requests_counted(samples: Samples, **labels: str) -> float:
    """How many requests the histogram counted with these labels (0 before the first)."""
    return samples.get((COUNT, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_name_method_and_status_class(
    scrape: Any, client: Any, web_as: Any, outsider: User
) -> None:
    _families, before = scrape()
    client.get("/accounts/login/")
    client.get("/accounts/login/")
    client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    client.get("/inventory/999999/")
    client.get("/no/such/page/")
    client.get("/static/governance/nav.js")  # served by WhiteNoise when collected (404 here: not collected)
    _families, after = scrape()

    def added(**labels: str) -> float:
        return requests_counted(after, **labels) - requests_counted(before, **labels)

    assert added(method="GET", route="login", status="2xx") == 2
    assert added(method="POST", route="login", status="2xx") == 1
    # The route is the pattern's name, whatever the id in the path: one series for every object.
    assert added(method="GET", route="inventory:detail", status="3xx") == 1
    assert added(method="GET", route="unmatched", status="4xx") == 1
    assert sum(added(method="GET", route="static", status=status) for status in ("2xx", "4xx")) == 1
    routes = {dict(labels)["route"] for name, labels in after if name == COUNT}
    assert not [route for route in routes if "/" in route or "999999" in route]


LOGIN_PAGE = {"method": "GET", "route": "login", "status": "2xx"}


def test_the_scrape_does_not_count_itself(scrape: Any, client: Any) -> None:
    _families, before = scrape()
    assert client.get("/accounts/login/").status_code == 200
    scrape()
    _families, samples = scrape()
    # The middleware counts: the page asked for between the scrapes is there...
    assert requests_counted(samples, **LOGIN_PAGE) - requests_counted(before, **LOGIN_PAGE) == 1
    # ...and the scrapes are not.
    assert not [labels for name, labels in samples if name == COUNT and ("route", "metrics") in labels]


def test_a_refused_scrape_is_not_counted_either(scrape: Any, client: Any) -> None:
    _families, before = scrape()
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404  # refused: hidden
    _families, samples = scrape()
    assert requests_counted(samples, **LOGIN_PAGE) - requests_counted(before, **LOGIN_PAGE) == 1
    assert not [labels for name, labels in samples if name == COUNT and ("route", "metrics") in labels]


def test_an_unknown_method_is_counted_as_other(scrape: Any, client: Any) -> None:
    _families, before = scrape()
    client.generic("BREW", "/accounts/login/")
    _families, after = scrape()
    labels = {"method": "other", "route": "login", "status": "4xx"}
    assert requests_counted(after, **labels) - requests_counted(before, **labels) == 1


_OBSERVE = (
    "from governance.observability.http import observe; "
    "observe(method='GET', route='home', status=200, seconds=0.2); "
    "observe(method='GET', route='home', status=302, seconds=0.02)"
)


def test_several_web_processes_are_read_together(client: Any, metrics_token: str, tmp_path: Path) -> None:
    """Two processes (as two gunicorn workers would) write their observations to the
    multiprocess directory; a scrape served by a third reads both."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    workers = [
        subprocess.Popen([sys.executable, "-c", _OBSERVE], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        _out, errors = worker.communicate(timeout=60)
        assert worker.returncode == 0, errors
    assert len(list(directory.glob("histogram_*.db"))) == 2
    with override_settings(PROMETHEUS_MULTIPROC_DIR=str(directory)):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    families, samples = parse(response.content.decode())
    assert requests_counted(samples, method="GET", route="home", status="2xx") == 2
    assert requests_counted(samples, method="GET", route="home", status="3xx") == 2
    bucket = (
        "governance_http_request_duration_seconds_bucket",
        (("le", "0.25"), ("method", "GET"), ("route", "home"), ("status", "2xx")),
    )
    assert samples[bucket] == 2
    # Per-process figures would describe whichever worker answered: not served in this mode.
    assert "process_cpu_seconds" not in families
    # The database's figures are served as always.
    assert "governance_outbox_emails" in families
