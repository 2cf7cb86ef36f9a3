"""What discovery adds to the portal when the apps load: schedules, navigation, audit targets,
webhook representations and demo data. Each part registers itself from its own module."""

from __future__ import annotations

from inventory.discovery import demo, panels, pull, schedules, section


def register_all() -> None:
    schedules.register()
    pull.register()
    section.register()
    panels.register()
    demo.register()
    pass
