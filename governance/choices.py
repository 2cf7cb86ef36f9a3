"""Vocabulary shared by the apps."""

from __future__ import annotations

from django.db import models


class Level(models.TextChoices):
    """The four-step scale of the portal: an integration's risk tier and a scope's sensitivity."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


LEVEL_ORDER: dict[str, int] = {Level.LOW: 0, Level.MEDIUM: 1, Level.HIGH: 2, Level.CRITICAL: 3}
