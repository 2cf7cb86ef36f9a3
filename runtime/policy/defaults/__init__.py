"""The default policy set the portal ships: ``policies.cedar`` and its tests ``tests.json``.
A fresh database is seeded with them as version 1, enforced (``runtime`` migration 0005 keeps
its own copy, so later edits here never change what an installation was seeded with)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils import timezone

from runtime.models import PolicyStatus, PolicyVersion
from runtime.policy.source import text_sha256

HERE = Path(__file__).resolve().parent


def default_text() -> str:
    return (HERE / "policies.cedar").read_text()


def default_tests() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((HERE / "tests.json").read_text())
    return loaded


def seed_default_version() -> PolicyVersion | None:
    """Version 1, enforced, when there is no version at all (a database emptied by a test run,
    which the migration's seed does not survive); otherwise nothing."""
    if PolicyVersion.objects.exists():
        return None
    text = default_text()
    return PolicyVersion.objects.create(
        number=1,
        title="Default policy set shipped with the portal",
        cedar_text=text,
        sha256=text_sha256(text),
        tests=default_tests(),
        status=PolicyStatus.ENFORCED,
        enforced_at=timezone.now(),
    )
