"""Fixtures of the kernel's tests: the demo people alone (fast) or the whole demo organisation."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from governance import demo
from governance.actors import system_user
from governance.context import task_context


@pytest.fixture
def people(roles: None) -> None:
    """The nine demo people with their roles (the kernel's seeder only: no other app's data)."""
    with task_context(user=system_user()), transaction.atomic():
        demo.seed_people()


@pytest.fixture
def demo_org(roles: None) -> None:
    """The whole demo organisation, every app's seeder (seconds: use only where it matters)."""
    call_command("seed_demo", stdout=StringIO())
