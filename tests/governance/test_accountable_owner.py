"""Every audit event names an accountable person, who answers for it: the
owner given, else the person acting (the acting admin where nothing else owns the target); the
system must say on whose behalf it acts. A deactivation answers to the leaver's manager, or to
whoever deactivated them, and each API token it revokes gets its own event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction

from governance.actors import Actor
from governance.audit import MissingAccountableOwner, audit_record
from governance.models import ApiToken, AuditEvent, User
from governance.roles import Role
from governance.services import api_token_issue, user_deactivate

pytestmark = pytest.mark.django_db


def test_an_event_without_an_owner_names_the_person_acting(iam_admin: User, owner: User) -> None:
    with transaction.atomic():
        event = audit_record(actor=iam_admin, action="catalog.tidied", target=owner)
    assert (event.owner, event.owner_username) == (iam_admin, "admin")


def test_the_system_acting_for_nobody_cannot_write_an_event(owner: User) -> None:
    before = AuditEvent.objects.count()
    with pytest.raises(MissingAccountableOwner, match="names no accountable owner"), transaction.atomic():
        audit_record(actor=Actor.system(on_behalf_of=None), action="sweep.ran", target=owner)
    assert AuditEvent.objects.count() == before


def test_a_service_account_answers_through_its_manager(make_user: Callable[..., User], owner: User) -> None:
    bot = make_user("servicenow", is_service_account=True, manager=owner)
    with transaction.atomic():
        event = audit_record(actor=bot, action="ticket.synced", target=bot)
    assert event.owner_username == "owner"


def test_a_deactivation_answers_to_the_leavers_manager_else_to_the_acting_admin(
    iam_admin: User, make_user: Callable[..., User]
) -> None:
    boss = make_user("boss", Role.BUSINESS_USER)
    managed = make_user("managed", Role.BUSINESS_USER, manager=boss)
    unmanaged = make_user("unmanaged", Role.BUSINESS_USER)
    user_deactivate(actor=iam_admin, user=managed, reason="Left the company")
    user_deactivate(actor=iam_admin, user=unmanaged, reason="Left the company")
    owners = dict(AuditEvent.objects.filter(action="user.deactivated").values_list("target_repr", "owner_username"))
    assert owners == {"managed": "boss", "unmanaged": "admin"}


def test_each_token_revoked_by_a_deactivation_gets_its_own_event(
    iam_admin: User, make_user: Callable[..., User]
) -> None:
    leaver = make_user("leaver", Role.BUSINESS_USER)
    tokens = [api_token_issue(actor=leaver, user=leaver, name=f"t{i}")[0] for i in range(2)]
    already = api_token_issue(actor=leaver, user=leaver, name="old")[0]
    ApiToken.objects.filter(pk=already.pk).update(revoked_at=already.created_at)

    user_deactivate(actor=iam_admin, user=leaver, reason="Left the company")

    revoked = AuditEvent.objects.filter(action="api_token.revoked").order_by("id")
    assert sorted(e.target_id for e in revoked) == sorted(str(t.pk) for t in tokens)
    for event in revoked:
        assert event.actor_username == "admin" and event.owner_username == "admin"
        assert event.target_type == "governance.apitoken"
        assert "leaver was deactivated: Left the company" in event.reason
        assert event.after is not None and event.after["revoked_at"] is not None
