"""Two processes on one database: what one process changes (the enforced version, an
integration's status) decides the other's very next request, though the other keeps its parsed
policies and entity handles cached. No signal, no shared memory: a per-request check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.policy.defaults import default_text

# Its child processes use their own SQLite file (or no database): one run per CI is enough.
pytestmark = pytest.mark.db_agnostic

ROOT = Path(__file__).resolve().parents[3]


class Process:
    def __init__(self, env: dict[str, str]) -> None:
        self.child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("decider.py"))],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(json.dumps(command) + "\n")
        self.child.stdin.flush()
        answer: dict[str, Any] = json.loads(self.child.stdout.readline())
        return answer

    def stop(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        self.child.wait(timeout=30)


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ENV")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first, second = Process(env), Process(env)
    yield first, second
    first.stop()
    second.stop()


def test_enforcing_and_suspending_elsewhere_count_at_the_next_request(two_processes: tuple[Process, Process]) -> None:
    writer, gateway = two_processes
    integration = writer.ask(op="setup", owner_name="owner")["integration"]
    assert gateway.ask(op="decide", integration_id=integration, scope_code="crm:read") == {
        "decision": "allow",
        "reasons": ["permit-within-active-grants"],
        "version": 1,
    }
    stricter = default_text() + (
        '\n@id("no-crm-reads")\n@description("CRM reads are paused.")\n'
        'forbid (principal, action, resource is Scope) when { resource.code == "crm:read" };\n'
    )
    assert writer.ask(op="enforce", text=stricter) == {"version": 2}
    assert gateway.ask(op="decide", integration_id=integration, scope_code="crm:read") == {
        "decision": "deny",
        "reasons": ["no-crm-reads"],
        "version": 2,
    }
    assert writer.ask(op="enforce", text=default_text()) == {"version": 3}
    assert gateway.ask(op="decide", integration_id=integration, scope_code="crm:read")["decision"] == "allow"
    assert writer.ask(op="suspend", integration_id=integration) == {"updated": 1}
    assert gateway.ask(op="decide", integration_id=integration, scope_code="crm:read") == {
        "decision": "deny",
        "reasons": ["forbid-inactive-integration"],
        "version": 3,
    }
