from django.core.management.base import BaseCommand, CommandError

from governance.audit import verify_and_record


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; exit non-zero naming the first event altered, removed or inserted."

    def handle(self, *args: object, **options: object) -> None:
        checked, broken = verify_and_record()
        if broken is not None:
            raise CommandError(f"Audit trail is broken at {broken} ({checked} events before it are intact).")
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} events verified."))
