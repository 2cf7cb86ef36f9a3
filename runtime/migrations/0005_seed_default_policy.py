"""The portal ships one enforced policy version: the default policy set and its tests, as they
stood when this migration was written (copied here, so a later edit of the shipped files never
changes what an existing installation was seeded with)."""

import hashlib
import json
from pathlib import Path

from django.db import migrations
from django.utils import timezone

DEFAULTS = Path(__file__).resolve().parent / "seed_0005"


def seed(apps, schema_editor):
    PolicyVersion = apps.get_model("runtime", "PolicyVersion")
    if PolicyVersion.objects.exists():
        return
    text = (DEFAULTS / "policies.cedar").read_text()
    tests = json.loads((DEFAULTS / "tests.json").read_text())
    PolicyVersion.objects.create(
        number=1,
        title="Default policy set shipped with the portal",
        cedar_text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        tests=tests,
        status="enforced",
        enforced_at=timezone.now(),
        source="portal",
    )


def unseed(apps, schema_editor):
    apps.get_model("runtime", "PolicyVersion").objects.filter(number=1, created_by__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("runtime", "0004_policy_as_code")]

    operations = [migrations.RunPython(seed, unseed)]
