"""The Node.js verifier scripts of this folder, run as real processes: one JSON request per line
on stdin, one JSON answer per line on stdout. Tests skip, saying why, where Node.js or the
modules installed by ``npm ci`` (in ``tests/interop``) are missing."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

VERIFIERS = Path(__file__).resolve().parent
NODE_MODULES = VERIFIERS.parent / "node_modules"
# How long one answer may take: a verification, or a round trip to the live portal.
ANSWER_SECONDS = 30.0


def node_or_skip(*modules: str) -> str:
    """The ``node`` executable; skips the test, saying why, when Node.js, npm or the installed
    modules are missing (the same rule as the provider fixture's), or one of ``modules`` is."""
    from tests.interop.conftest import node_missing_reason

    missing = node_missing_reason()
    node = shutil.which("node")
    if missing or node is None:
        pytest.skip(missing or "node is not installed: the interoperability tests need Node.js and npm")
    for module in modules:
        if not (NODE_MODULES / module / "package.json").exists():
            pytest.skip(f"The Node.js module {module} is missing: run `npm ci` in tests/interop (make test does).")
    return node


class NodeScript:
    """A running verifier script; ``ask`` sends one request and returns its answer. Stopped on
    ``close`` (or at the end of a ``with`` block), whatever happened."""

    def __init__(self, script: str, *args: str, modules: tuple[str, ...], env: dict[str, str] | None = None) -> None:
        node = node_or_skip(*modules)
        self.script = script
        self.process = subprocess.Popen(
            [node, str(VERIFIERS / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=VERIFIERS.parent,
            env={**os.environ, "NODE_NO_WARNINGS": "1", **(env or {})},
        )

    def read(self) -> dict[str, Any]:
        """The next answer line; fails the test with the script's stderr when none comes."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], ANSWER_SECONDS)
        line = stdout.readline() if ready else ""
        if not line:
            stderr = self.close()
            pytest.fail(f"The verifier {self.script} gave no answer. Its stderr:\n{stderr}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self.read()

    def close(self) -> str:
        """Stop the script; returns what it wrote on stderr."""
        if self.process.poll() is None:
            self.process.kill()
        _, stderr = self.process.communicate(timeout=10)
        return stderr or ""

    def __enter__(self) -> NodeScript:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
