import os

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from governance.anchoring import Verdict, verify_and_record
from governance.audit import registered_verifiers

# Workers beyond this gain little: the database's side of the walk and the machine's other work
# share the same cores.
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Processes for a full walk: one per core up to ``MAX_DEFAULT_WORKERS`` on PostgreSQL (each
    with its own connection); one on SQLite."""
    if connection.vendor != "postgresql":
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain and hold it against the newest signed checkpoint; exit "
        "non-zero naming the first event altered, removed or inserted, a truncation or rewrite since "
        "the checkpoint, or a checkpoint whose signature fails; then check the logs sealed into the trail "
        "(the runtime's token log) against what they sealed. With --since-checkpoint, walk only the events "
        "written after the newest signed checkpoint's head (seconds at millions of events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--witness-file",
            default=None,
            help="A JSON-lines witness file to compare with too (default: AUDIT_WITNESS_FILE when readable).",
        )
        parser.add_argument(
            "--since-checkpoint",
            action="store_true",
            help=(
                "Start from the newest signed checkpoint (its signature checked, its head event still in place "
                "and unaltered) instead of the first event. Without a checkpoint the whole trail is walked."
            ),
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help=(
                "Walk the whole trail in this many processes over id ranges (PostgreSQL; default: one per core, "
                f"at most {MAX_DEFAULT_WORKERS}; 1 walks it in this process). SQLite always walks it in one."
            ),
        )

    def handle(self, *args: object, **options: object) -> None:
        witness_file = options["witness_file"]
        workers = options["workers"]
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise CommandError("--workers must be 1 or more.")
        verdict = verify_and_record(
            witness_file=str(witness_file) if witness_file is not None else None,
            since_checkpoint=bool(options["since_checkpoint"]),
            workers=workers if isinstance(workers, int) else default_workers(),
        )
        broken, checkpoint = verdict.broken, verdict.checkpoint
        if broken is not None and verdict.anchored and checkpoint is not None:
            raise CommandError(
                f"Audit trail does not hold what checkpoint {checkpoint.sequence} (from {verdict.source}, "
                f"signed {checkpoint.signed_at}) signed: {broken.problem} "
                f"({verdict.checked} events walked, the chain itself intact)."
            )
        if broken is not None:
            raise CommandError(f"Audit trail is broken at {broken} ({verdict.checked} events before it are intact).")
        self.stdout.write(self.style.SUCCESS(self._intact_message(verdict)))
        if checkpoint is None:
            self.stdout.write(
                "No signed checkpoint yet: the worker signs one every hour, or run manage.py audit_checkpoint."
            )
        self._verify_sealed_logs()

    def _intact_message(self, verdict: Verdict) -> str:
        checkpoint = verdict.checkpoint
        if verdict.since_checkpoint and checkpoint is not None:
            return (
                f"Audit trail intact since signed checkpoint {checkpoint.sequence} (from {verdict.source}, signed "
                f"{checkpoint.signed_at}, {checkpoint.event_count} events up to #{checkpoint.last_event_id}): "
                f"{verdict.checked} events verified after it."
            )
        message = f"Audit trail intact: {verdict.checked} events verified."
        if checkpoint is not None:
            message += (
                f" It holds signed checkpoint {checkpoint.sequence} (from {verdict.source}, signed "
                f"{checkpoint.signed_at}): {checkpoint.event_count} events up to #{checkpoint.last_event_id}."
            )
        return message

    def _verify_sealed_logs(self) -> None:
        """The logs sealed into the trail (registered by their apps) hold what they sealed."""
        for name, verifier in registered_verifiers():
            checked, problem = verifier()
            if problem is not None:
                raise CommandError(f"The {name} is broken: {problem} ({checked} entries before it are intact).")
            self.stdout.write(self.style.SUCCESS(f"The {name} is intact: {checked} entries verified."))
