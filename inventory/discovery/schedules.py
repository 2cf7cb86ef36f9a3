"""Discovery's daily deadline sweep (``governance.scheduling``; the pull registers its own)."""

from __future__ import annotations

from governance import scheduling

# Daily, UTC, early in the working day of most of Europe: a consent nobody answered for by its
# deadline gets the default action, and IAM hears about escalations in the morning.
DEADLINES_CRON = "0 6 * * *"


def register() -> None:
    scheduling.register("discovery-deadlines", "inventory.discovery.tasks.deadlines_apply", DEADLINES_CRON)
