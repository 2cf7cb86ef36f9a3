"""Property-based test of the whole API against its own schema (issue 6): schemathesis's CLI
runs against a real server (pytest-django's live server, in a thread of this process, on a free
port of 127.0.0.1) over the demo organisation, authenticated with an IAM admin's API token (who
may call every endpoint), and fails on any 5xx or any response that does not match the schema
(status code, content type, headers, body). It must generate at least 1,000 requests.

PITFALLS.md: ``from_fixture`` breaks with this pytest and the in-process WSGI client closes the
test's connection on PostgreSQL, hence the CLI against a live server. One schemathesis worker:
on SQLite the live server shares one in-memory connection between threads, and with several
workers hypothesis itself crashed once here ("AST constructor recursion depth mismatch").

Stricter input checks (schema-valid input refused, e.g. a username that does not exist;
schema-violating input accepted) are not part of this gate; set ``SCHEMATHESIS_ALL_CHECKS=1``
to see them. ``SCHEMATHESIS_MAX_EXAMPLES`` tunes the size of the run (default 5 per operation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from governance.models import User
from governance.services import api_token_issue

RESPONSE_CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
MIN_CASES = 1000


@pytest.mark.django_db(transaction=True)
def test_no_5xx_and_every_response_matches_the_schema(live_server, settings, tmp_path: Path) -> None:
    # Fuzzing sends thousands of requests with one token: lift the rate limits for this run.
    settings.API_RATE_LIMITS = {"token": "", "user": "", "anon": ""}
    call_command("seed_demo", verbosity=0)
    _token, key = api_token_issue(actor=User.objects.get(username="ivan"), user=User.objects.get(username="ivan"))
    report = tmp_path / "schemathesis.json"
    checks = "all" if os.environ.get("SCHEMATHESIS_ALL_CHECKS") == "1" else ",".join(RESPONSE_CHECKS)
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{live_server.url}/api/v1/schema/",
        "-H",
        f"Authorization: Token {key}",
        "--checks",
        checks,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"),
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
        "json",
        "--report-json-path",
        str(report),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert report.exists(), output[-5000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]["generated"]
    print(
        f"schemathesis: {cases} generated requests over {summary['operations']['tested']} operations, "
        f"{summary['test_cases']['with_failures']} with failures, exit code {result.returncode}"
    )
    assert summary["operations"]["errored"] == 0, output[-8000:]
    assert result.returncode == 0 and not summary["failures"], output[-12000:]
    assert cases >= MIN_CASES, f"only {cases} requests generated"
