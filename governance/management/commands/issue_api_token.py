from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.actors import Actor
from governance.exceptions import DomainError
from governance.models import User
from governance.services import api_token_issue


class Command(BaseCommand):
    help = "Issue an API token for USERNAME and print it once; only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="Days until it expires (0: never). Default from API_TOKEN_DEFAULT_DAYS.",
        )
        parser.add_argument("--name", default="", help="A label to recognise the token by, e.g. 'ServiceNow'.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = str(options["username"])
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            # Issued from the command line by an operator: recorded as the system for the user.
            token, key = api_token_issue(
                actor=Actor.system(on_behalf_of=user),
                user=user,
                name=str(options["name"] or ""),
                expires_days=options["expires_days"],
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token for {username} (expires {expiry}). It is shown only once:")
        self.stdout.write(key)
