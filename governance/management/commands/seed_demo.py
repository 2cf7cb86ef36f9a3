from django.core.management.base import BaseCommand
from django.db import transaction

from governance import demo
from governance.actors import system_user
from governance.context import task_context
from governance.roles import roles_sync


class Command(BaseCommand):
    help = "Load the demo organisation (people of every role, scope catalog, integrations). Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        roles_sync()
        with task_context(user=system_user(), request_id="seed-demo"):
            for seeder in demo.seeders():
                with transaction.atomic():
                    seeder.run()
                self.stdout.write(f"  seeded {seeder.name}")
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Every demo user's password is '{demo.DEMO_PASSWORD}'."))
