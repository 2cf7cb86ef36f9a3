"""Serve the portal and run the django-q2 worker together; one Ctrl-C stops both.

Used by ``make run``. If either process exits, the other is stopped too, so a crashed worker is
never left unnoticed behind a running web server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server and the background worker together (development and demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: object, **options: object) -> None:
        manage = [sys.executable, "manage.py"]
        procs = {
            "web": subprocess.Popen([*manage, "runserver", str(options["addr"]), "--noreload"]),
            "worker": subprocess.Popen([*manage, "qcluster"]),
        }
        self.stdout.write(f"Portal on http://{options['addr']}/ with its worker. Press Ctrl-C to stop both.")
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in procs.values()) and not stopping:
                time.sleep(0.5)
        finally:
            stop()
            deadline = time.monotonic() + 15
            for name, proc in procs.items():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stderr.write(f"{name} did not stop in time; killing it")
                    proc.kill()
        self.stdout.write("Stopped.")
