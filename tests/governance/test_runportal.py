"""``manage.py runportal`` (what ``make run`` starts): the web server and the worker run together,
the worker delivers queued email, and one Ctrl-C (SIGINT to the foreground process group) stops
both. Runs against its own SQLite file and mail folder in a temporary directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

# Its child processes use their own SQLite file (or no database): one run per CI is enough.
pytestmark = pytest.mark.db_agnostic

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and process groups")
def test_runportal_serves_runs_the_worker_and_stops_both_on_one_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "GOVERNANCE_TESTING", "DJANGO_ENV")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        EMAIL_URL=f"filemail://{tmp_path / 'mail'}",
        Q_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, "manage.py"]
    done = subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr

    log = (tmp_path / "runportal.log").open("w")
    # As a terminal would: its own process group with SIGINT at its default disposition.
    portal = subprocess.Popen(
        [*manage, "runportal", "--addr", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    try:

        def login_page_up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as resp:
                    return resp.status == 200 and b"Sign in" in resp.read()
            except OSError:
                return False

        assert _wait_for(login_page_up, 60), (tmp_path / "runportal.log").read_text()
        children = _children(portal.pid)
        assert len(children) == 2  # runserver and qcluster

        queue = subprocess.run(
            [
                *manage,
                "shell",
                "-c",
                "from django.db import transaction\n"
                "from governance.models import User\n"
                "from governance.services import email_enqueue\n"
                "alice = User.objects.create_user('alice', 'alice@example.com')\n"
                "with transaction.atomic():\n"
                "    email_enqueue(key='runportal-test', recipient=alice, subject='worker check',"
                " template='governance_notice', context={'message': 'hi', 'path': '/'})\n",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert queue.returncode == 0, queue.stderr
        mail_dir = tmp_path / "mail"

        def delivered() -> bool:
            # Other apps' demo data may queue notifications too; look for ours.
            return mail_dir.exists() and any("Subject: worker check" in f.read_text() for f in mail_dir.iterdir())

        assert _wait_for(delivered, 30), (tmp_path / "runportal.log").read_text()

        os.killpg(portal.pid, signal.SIGINT)  # Ctrl-C reaches the foreground group
        assert portal.wait(timeout=30) == 0
        assert _wait_for(lambda: not any(_alive(c) for c in children), 10)
        text = (tmp_path / "runportal.log").read_text()
        assert "Stopped." in text and "Traceback" not in text and "did not stop in time" not in text
    finally:
        if portal.poll() is None:
            os.killpg(portal.pid, signal.SIGKILL)
        log.close()
