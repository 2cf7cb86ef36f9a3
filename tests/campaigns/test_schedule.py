"""The definition's recurrence is a django-q2 schedule that launches a new run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_q.conf
import django_q.scheduler
import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, CampaignStatus, ReviewItem
from governance.exceptions import ValidationFailed
from governance.roles import Role


@pytest.fixture
def one_grant(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> Any:
    owner = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    return make_grant(make_integration(owner, technical_owner=tech), catalog["write"])


def test_definition_with_recurrence_has_one_schedule_named_after_it(make_definition: Any, iam_admin: Any) -> None:
    definition = make_definition(recurrence="0 6 1 1,4,7,10 *")
    schedule = Schedule.objects.get(name=definition.schedule_name)
    assert schedule.cron == "0 6 1 1,4,7,10 *" and schedule.func == "approvals.campaigns.tasks.campaign_run_scheduled"
    assert schedule.next_run > timezone.now()
    services.definition_save(actor=iam_admin, definition=definition, values={"recurrence": "0 6 1 * *"})
    assert Schedule.objects.filter(name=definition.schedule_name).get().cron == "0 6 1 * *"
    services.definition_save(actor=iam_admin, definition=definition, values={"recurrence": ""})
    assert not Schedule.objects.filter(name=definition.schedule_name).exists()


def test_invalid_cron_is_refused_on_its_field(make_definition: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        make_definition(recurrence="every quarter")
    assert "recurrence" in exc.value.errors


def _scheduler_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)
    if connection.vendor == "postgresql":
        monkeypatch.setattr(django_q.scheduler, "close_old_django_connections", lambda: None)
    django_q.scheduler.scheduler(broker=get_broker())


def test_the_schedule_fires_the_launch(one_grant: Any, make_definition: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    definition = make_definition(recurrence="0 6 1 1,4,7,10 *")
    Schedule.objects.filter(name=definition.schedule_name).update(next_run=timezone.now() - timedelta(minutes=1))
    _scheduler_pass(monkeypatch)
    campaign = Campaign.objects.get(definition=definition)
    assert campaign.status == CampaignStatus.ACTIVE
    assert campaign.run_key  # the slot's date
    assert ReviewItem.objects.filter(campaign=campaign).count() == 1
    assert Schedule.objects.get(name=definition.schedule_name).next_run > timezone.now()


def test_the_same_slot_fired_twice_makes_one_campaign(one_grant: Any, make_definition: Any) -> None:
    from approvals.campaigns.tasks import campaign_run_scheduled

    definition = make_definition(recurrence="0 6 1 1,4,7,10 *")
    slot = "2026-01-01T06:00:00+00:00"
    first = campaign_run_scheduled(definition.pk, intended_date=slot)
    second = campaign_run_scheduled(definition.pk, intended_date=slot)
    assert first is not None and first == second
    assert Campaign.objects.filter(definition=definition).count() == 1
    assert ReviewItem.objects.filter(campaign_id=first).count() == 1


def test_campaigns_sweep_is_a_registered_schedule() -> None:
    from governance.scheduling import registered

    assert any(
        t.name == "campaigns-sweep" and t.func == "approvals.campaigns.tasks.campaigns_sweep" for t in registered()
    )
