import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from governance.observability.stream import StreamFailed, StreamResult, configured_sinks, stream_configured


class Command(BaseCommand):
    help = (
        "Stream the audit trail to the SIEM sinks configured (AUDIT_STREAM_FILE, AUDIT_STREAM_SYSLOG): every "
        "event after each sink's position, once and in the chain's order. The worker does the same every "
        "minute; --follow keeps streaming new events every few seconds until interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sink", choices=["file", "syslog"], help="Only this sink (default: every one configured)."
        )
        parser.add_argument("--follow", action="store_true", help="Keep streaming new events until interrupted.")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds between two rounds with --follow (default 5)."
        )
        parser.add_argument("--limit", type=int, default=None, help="Events per sink and round at most (default: all).")

    def handle(self, *args: object, **options: Any) -> None:
        only = options["sink"]
        names = [sink.name for sink in configured_sinks()]
        if not names:
            raise CommandError("No audit stream sink is configured: set AUDIT_STREAM_FILE and/or AUDIT_STREAM_SYSLOG.")
        if only is not None and only not in names:
            raise CommandError(f"The {only} sink is not configured (configured: {', '.join(names)}).")
        limit = options["limit"]
        follow = bool(options["follow"])
        interval = float(options["interval"])
        while True:
            try:
                for result in stream_configured(limit=limit, only=only):
                    self._report(result, quiet=follow)
            except StreamFailed as exc:
                if not follow:
                    raise CommandError(f"Audit stream failed: {exc}") from exc
                # Following, a collector that is down is tried again at the next round.
                self.stderr.write(f"Audit stream failed (tried again in {interval:g} s): {exc}")
            if not follow:
                return
            try:
                between_rounds(interval)
            except KeyboardInterrupt:
                return

    def _report(self, result: StreamResult, *, quiet: bool) -> None:
        recovered = ""
        if result.recovered_through is not None:
            recovered = f" (an interrupted run had already written through #{result.recovered_through})"
        if result.written:
            self.stdout.write(
                f"{result.sink} {result.target}: {result.written} events written, through #{result.last_event_id}"
                f"{recovered}."
            )
        elif not quiet:
            self.stdout.write(f"{result.sink} {result.target}: up to date, through #{result.last_event_id}{recovered}.")


def between_rounds(interval: float) -> None:
    """The pause of --follow. A connection the database dropped meanwhile is replaced."""
    close_old_connections()
    time.sleep(interval)
