"""Property-based test of the whole API against its own schema (issues 6 and 9).

schemathesis' CLI runs against a real server (pytest-django's live server, in a thread of this
process, on a free port of 127.0.0.1) over the demo organisation, authenticated with an IAM
admin's API token (ivan, who may call every endpoint), in all four phases: the schema's examples,
coverage (boundary values of every parameter and field, positive and negative), fuzzing, and
stateful (call sequences along the schema's OpenAPI links: register -> read -> submit -> its
access request -> decide, define -> start -> launch -> review items -> decide, subscribe ->
deliveries -> delete). Every response is held to seven checks:

* ``not_a_server_error``: no 5xx;
* ``status_code_conformance``, ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``: the response is one the schema documents (problem details as
  ``application/problem+json``, ``Retry-After``...);
* ``negative_data_rejection``: input the schema forbids is refused (4xx);
* ``positive_data_acceptance``: input the schema allows is not refused as invalid — 422 is
  allowed (tests/api_contract/schemathesis.toml): input that matches the schema but names
  something that does not exist or breaks a rule no schema can state; a 400 is always a failure.

The run's test data: usernames, scope codes, resource system codes and ids from the demo data,
offered to the generator for the body fields that name them (a dictionary per kind, drawn 80% of
the time), so that registrations, transfers and campaign definitions get past "no such user".
Rate limits are off for the run (API_RATE_LIMITS), and host names resolve to one public address
(a resolver stub, so webhook subscriptions do not depend on this machine's DNS).

Size and time: at least ``MIN_CASES`` generated requests (the figure, per phase, is printed and
shown in the terminal summary): with 25 fuzzing examples per operation, about 7,500 requests over
71 operations in 4 to 5 minutes on a 2-core machine also running the rest of the suite. ``SCHEMATHESIS_MAX_EXAMPLES`` (fuzzing examples per operation) and
``SCHEMATHESIS_SEED`` tune the run; the stateful phase's size is in schemathesis.toml.

Why the CLI: ``from_fixture`` breaks with this pytest and the in-process WSGI client closes the
test's connection on PostgreSQL, hence the CLI against a live server. One schemathesis worker: on
SQLite the live server shares one in-memory connection between threads. The server socket sets
TCP_NODELAY: Django's test server writes headers and body in two sends, and on a kept-alive
connection Nagle's algorithm then waits for the client's delayed ACK, ~40 ms a request (5x the
whole run).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer
from pytest_django.live_server_helper import LiveServer

from approvals.campaigns.models import CampaignDefinition
from governance import outbound
from governance.models import User
from governance.services import api_token_issue
from inventory.models import Integration, ResourceSystem, Scope

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
]
MIN_CASES = 5000
CONFIG = Path(__file__).with_name("schemathesis.toml")
# A public address for every host name a webhook subscription names (no DNS in tests).
PUBLIC_ADDRESS = "93.184.215.14"


class _NoDelayServer(ThreadedWSGIServer):
    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


@pytest.fixture
def api_server(transactional_db: None) -> Iterator[str]:
    """A live server of its own (pytest-django's helper shares the in-memory SQLite connection)."""
    server = LiveServer("127.0.0.1:0", start=False)
    server.thread.server_class = _NoDelayServer
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _resolve_publicly(host: str, port: int) -> list[str]:
    """IP literals as they are (an internal one is refused), localhost as loopback, any other
    name as one public address."""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return ["127.0.0.1"]
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return [PUBLIC_ADDRESS]
    return [host]


def cases_by_phase(events: Path) -> dict[str, int]:
    """Requests per phase, from the NDJSON event stream (one event per finished scenario)."""
    counts: Counter[str] = Counter()
    if events.exists():
        with events.open() as stream:
            for line in stream:
                if line.startswith('{"ScenarioFinished"'):
                    finished = json.loads(line)["ScenarioFinished"]
                    recorder = finished.get("recorder") or {}
                    counts[finished["phase"]] += len(recorder.get("cases") or {})
    return dict(counts)


def _toml_list(values: Sequence[str | int]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def run_config(tmp_path: Path) -> Path:
    """schemathesis.toml plus dictionaries of what exists in the demo data, bound to the body
    fields that name it."""
    dictionaries: dict[str, Sequence[str | int]] = {
        "usernames": sorted(
            User.objects.filter(is_active=True, is_service_account=False).values_list("username", flat=True)
        ),
        "scope_codes": sorted(Scope.objects.filter(is_active=True).values_list("code", flat=True)),
        "system_codes": sorted(ResourceSystem.objects.values_list("code", flat=True)),
        "integration_ids": sorted(Integration.objects.values_list("pk", flat=True)),
        "definition_ids": sorted(CampaignDefinition.objects.values_list("pk", flat=True)),
    }
    bindings = {
        "body.business_owner": "usernames",
        "body.technical_owner": "usernames",
        "body.backup_owner": "usernames",
        "body.to_user": "usernames",
        "body.owner": "usernames",
        "body.fallback_user": "usernames",
        "body.business_owners[*]": "usernames",
        "body.requested_scopes[*]": "scope_codes",
        "body.approved_scopes[*]": "scope_codes",
        "body.resource_systems[*]": "system_codes",
        "body.invokes[*]": "integration_ids",
        "body.definition": "definition_ids",
        "body.principal.integration": "integration_ids",
        "body.resource.scope": "scope_codes",
        "body.context.delegated_user": "usernames",
    }
    lines = [CONFIG.read_text(), ""]
    for name, values in dictionaries.items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {_toml_list(values)}", ""]
    lines.append("[parameters]")
    for key, name in bindings.items():
        if dictionaries[name]:
            lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}')
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.django_db(transaction=True)
def test_every_response_matches_the_schema_and_the_schema_matches_the_api(
    api_server: str, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, record_property: Any
) -> None:
    # Fuzzing sends thousands of requests with one token: lift every rate limit for this run.
    settings.API_RATE_LIMITS = dict.fromkeys(settings.API_RATE_LIMITS, "")
    monkeypatch.setattr(outbound, "resolve", _resolve_publicly)
    call_command("seed_demo", verbosity=0)
    ivan = User.objects.get(username="ivan")
    _token, key = api_token_issue(actor=ivan, user=ivan)
    report, events = tmp_path / "schemathesis.json", tmp_path / "schemathesis.ndjson"
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(run_config(tmp_path)),
        "run",
        f"{api_server}/api/v1/schema/",
        "-H",
        f"Authorization: Token {key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
        "--workers",
        "1",
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261128"),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(report),
        "--report-ndjson-path",
        str(events),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert report.exists(), output[-5000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]["generated"]
    seconds = dict(re.findall(r"(Examples|Coverage|Fuzzing|Stateful) \(in ([0-9.]+)s\)", output))
    phases = ", ".join(
        f"{phase} {n}" + (f" in {float(seconds[phase.title()]):.0f} s" if phase.title() in seconds else "")
        for phase, n in cases_by_phase(events).items()
    )
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", output)
    figure = (
        f"schemathesis: {cases} generated requests ({phases}) over {summary['operations']['tested']} operations "
        f"in {summary['running_time']:.0f} s; stateful links covered: "
        f"{f'{links[1]} of {links[2]}' if links else 'none'}; {summary['test_cases']['with_failures']} with "
        f"failures, exit code {result.returncode}"
    )
    print(figure)
    record_property("schemathesis", figure)
    assert summary["operations"]["errored"] == 0, output[-8000:]
    assert result.returncode == 0 and not summary["failures"], output[-12000:]
    assert cases >= MIN_CASES, f"only {cases} requests generated"
