"""The runtime demo: the workload issuer's key (made once, owner-only, the same key afterwards)
and a trial policy version in shadow."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from runtime import demo
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion


def test_the_demo_key_is_made_owner_only_and_kept(settings: Any, tmp_path: Path) -> None:
    settings.RUNTIME_DEMO_KEY_FILE = tmp_path / "demo.pem"
    first = demo.private_key()

    assert stat.S_IMODE((tmp_path / "demo.pem").stat().st_mode) == 0o600
    assert demo.private_key().private_numbers() == first.private_numbers()
    assert demo.public_jwks(first)["keys"][0]["kid"] == demo.DEMO_KEY_ID


@pytest.mark.django_db
def test_the_demo_puts_a_trial_policy_in_shadow_beside_the_enforced_one() -> None:
    call_command("seed_demo", verbosity=0)
    trial = PolicyVersion.objects.get(number=2)
    assert trial.status == PolicyStatus.SHADOW and trial.tests_passed and trial.created_by is not None
    decisions = PolicyDecision.objects.filter(point="token_exchange")
    assert decisions.exists() and all("2" in row.shadow for row in decisions)
    assert PolicyVersion.objects.get(status=PolicyStatus.ENFORCED).number == 1
