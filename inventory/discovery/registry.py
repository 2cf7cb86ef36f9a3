"""What discovery adds to the portal when the apps load: schedules, navigation, audit targets,
webhook representations and demo data. Each part registers itself from its own module."""

from __future__ import annotations


def register_all() -> None:
    pass
