"""Serve the portal and run the django-q2 worker together; one Ctrl-C stops both.

Used by ``make run``. If either process exits, the other is stopped too, so a crashed worker is
never left unnoticed behind a running web server.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only this command
(and make), which then stops each child exactly once: qcluster's own signal handler fails when it
is signalled twice (once by the terminal, once by us). Children get SIGTERM when this process dies
for any reason (Linux PDEATHSIG), so nothing is left holding the port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandParser

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    # A shell starts background jobs with SIGINT ignored, and that is inherited; restore it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


def site_url_for(addr: str) -> str:
    """The address emails link to when the portal serves on ``addr`` (runserver's form: a port,
    ``host:port`` or ``[v6]:port``); a bare port is served on 127.0.0.1, as runserver does."""
    return f"http://{addr}" if ":" in addr else f"http://127.0.0.1:{addr}"


def child_environment(addr: str) -> dict[str, str]:
    """The environment of the web server and the worker: SITE_URL, unless set (in the
    environment or ``.env``), is where this command serves, so email links open the running
    portal and not the default port."""
    environment = dict(os.environ)
    environment.setdefault("SITE_URL", site_url_for(addr))
    return environment


class Command(BaseCommand):
    help = "Run the web server and the background worker together (development and demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: object, **options: object) -> None:
        manage = [sys.executable, "manage.py"]
        addr = str(options["addr"])

        environment = child_environment(addr)

        def start(cmd: list[str]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(cmd, env=environment, process_group=0, preexec_fn=_child_setup)  # noqa: PLW1509

        procs = {
            "web": start([*manage, "runserver", addr, "--noreload"]),
            "worker": start([*manage, "qcluster"]),
        }
        self.stdout.write(f"Portal on http://{addr}/ with its worker. Press Ctrl-C to stop both.")
        self.stdout.write(f"Links in emails point to {environment['SITE_URL']}/.")
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("Stopping the web server and the worker...")
            for proc in procs.values():
                if proc.poll() is None:
                    # SIGTERM: runserver exits at once; qcluster finishes its running tasks first.
                    proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in procs.values()) and not stopping:
                time.sleep(0.5)
            for name, proc in procs.items():
                if proc.poll() is not None and not stopping:
                    self.stderr.write(f"The {name} process exited (code {proc.returncode}); stopping the other.")
        finally:
            stop()
            deadline = time.monotonic() + 20
            for name, proc in procs.items():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stderr.write(f"The {name} process did not stop in time; killing it.")
                    proc.kill()
                    proc.wait()
        self.stdout.write("Stopped.")
