from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.actors import Actor
from governance.context import task_context
from governance.exceptions import DomainError
from governance.models import User
from governance.roles import is_iam_admin
from runtime.keys import SUPPORTED_ALGORITHMS
from runtime.services.keys import RotationResult, portal_owner, signing_keys_reencrypt, signing_keys_rotate


class Command(BaseCommand):
    help = (
        "Rotate the portal's signing keys now: the published next key starts signing, the current one "
        "stays published until its tokens have expired, and a new next key is published. The next key "
        "must have been published for RUNTIME_JWKS_CACHE_SECONDS first. With --reencrypt, encrypt every "
        "key again under the first configured encryption key instead (after rotating SECRET_KEY)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--algorithm", choices=SUPPORTED_ALGORITHMS, help="Only this algorithm's keys.")
        parser.add_argument(
            "--reencrypt", action="store_true", help="Re-encrypt the private keys instead of rotating them."
        )
        parser.add_argument(
            "--by",
            metavar="USERNAME",
            help="The IAM admin who answers for it in the audit trail (default: the longest-standing one).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = self._owner(options.get("by"))
        actor = Actor.system(on_behalf_of=owner)
        try:
            with task_context(user=actor.user):
                if options["reencrypt"]:
                    count = signing_keys_reencrypt(actor=actor)
                    self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} signing keys under the first key."))
                    return
                results = signing_keys_rotate(actor=actor, algorithm=options.get("algorithm"), force=True)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        waiting = [result for result in results if result.waiting]
        for result in results:
            self.stdout.write(self._describe(result))
        if waiting:
            raise CommandError("Not every algorithm could rotate yet: " + " ".join(r.waiting for r in waiting))

    def _owner(self, username: str | None) -> User:
        if username:
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None or not is_iam_admin(user):
                raise CommandError(f"{username!r} is not an active IAM admin.")
            return user
        owner = portal_owner()
        if owner is None:
            raise CommandError("The portal has no active IAM admin to answer for the rotation.")
        return owner

    @staticmethod
    def _describe(result: RotationResult) -> str:
        parts = [f"{result.algorithm}:"]
        if result.promoted and result.current is not None:
            parts.append(
                f"{result.current.kid} now signs; {result.superseded} stays published until its tokens expire."
            )
        elif result.current is not None:
            parts.append(f"{result.current.kid} signs.")
        if result.next is not None:
            parts.append(f"Next: {result.next.kid} (may sign from {result.next.sign_after:%Y-%m-%d %H:%M:%S %Z}).")
        if result.retired:
            parts.append(f"Retired: {', '.join(result.retired)}.")
        return " ".join(parts)
