from django.core.management.base import BaseCommand, CommandError

from governance.anchoring import AuditTrailBroken, SigningKeyMissing, checkpoint_sign


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of the audit chain (event count, newest id, head hash, time) with the "
        "Ed25519 key kept outside the database, store it and send it to the configured witnesses. "
        "The worker does this every hour."
    )

    def handle(self, *args: object, **options: object) -> None:
        try:
            checkpoint = checkpoint_sign()
        except (AuditTrailBroken, SigningKeyMissing) as exc:
            raise CommandError(str(exc)) from exc
        witnesses = ", ".join(f"{w['kind']} {w['target']} ({w['status']})" for w in checkpoint.witnesses) or (
            "none configured (AUDIT_WITNESS_EMAIL, AUDIT_WITNESS_FILE, AUDIT_WITNESS_SYSLOG, or a webhook "
            "subscription to audit.checkpoint)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoint {checkpoint.sequence} signed: {checkpoint.event_count} events, newest "
                f"#{checkpoint.last_event_id}, head {checkpoint.head_hash[:16]}…, key {checkpoint.key_id}."
            )
        )
        self.stdout.write(f"Witnesses: {witnesses}.")
