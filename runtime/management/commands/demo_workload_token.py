"""``manage.py demo_workload_token INTEGRATION``: print a workload token (a JWT-SVID of the demo
trust domain) proving the demo identity bound to INTEGRATION (its id or exact name), to trade at
``/oauth/token``. Demo data only: it refuses when the integration is bound to any other issuer,
and the key exists only where ``seed_demo`` made it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.models import Integration, WorkloadBinding
from runtime import demo


class Command(BaseCommand):
    help = "Print a workload token from the demo issuer for the demo integration bound to it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", help="The integration's id or exact name.")
        parser.add_argument("--minutes", type=int, default=5, help="Lifetime of the token (1-60, default 5).")

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["minutes"]
        if not 1 <= minutes <= 60:
            raise CommandError("--minutes must be between 1 and 60.")
        binding = self._binding(options["integration"])
        if binding.issuer.issuer != demo.DEMO_ISSUER:
            raise CommandError(
                f"{binding.integration} is bound to {binding.issuer.issuer}, not the demo issuer: "
                "its tokens come from that issuer, not from the portal."
            )
        if not demo.key_file().exists():
            raise CommandError("The demo issuer's key is missing: run `manage.py seed_demo` first.")
        token = demo.workload_token(binding, minutes=minutes)
        self.stdout.write(token)

    def _binding(self, wanted: str) -> WorkloadBinding:
        integrations = Integration.objects.all()
        found = integrations.filter(pk=int(wanted)) if wanted.isdigit() else integrations.filter(name=wanted)
        integration = found.select_related("workload_binding__issuer").first()
        if integration is None:
            raise CommandError(f"No integration {wanted!r}.")
        try:
            return integration.workload_binding
        except WorkloadBinding.DoesNotExist:
            raise CommandError(f"{integration} has no workload identity bound: bind one on its page first.") from None
