"""Enforcing a policy version takes two people: an IAM admin asks once the version validates,
passes its tests and has a fresh replay; another IAM admin — neither its author nor the asker —
approves, and the decision point uses it at the next decision. A rollback works the same way."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from approvals.models import AccessRequest, RequestStatus
from approvals.services import request_decide, request_withdraw
from governance.exceptions import Conflict, NotAllowed
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.models import Grant
from runtime import selectors
from runtime.models import PolicyStatus, PolicyVersion
from runtime.policy import pdp
from runtime.services import policies
from tests.runtime.policy.support import PolicyWorld, build_policy_world
from tests.runtime.policy.versions_support import (
    VENDOR_TEST,
    audited,
    enforced_numbers,
    replayed,
    shipped,
    stricter_tests,
    stricter_text,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def author(iam_admin: User) -> User:
    return iam_admin


@pytest.fixture
def asker(make_user: Callable[..., User]) -> User:
    return make_user("admin2", Role.IAM_ADMIN)


@pytest.fixture
def approver(make_user: Callable[..., User]) -> User:
    return make_user("admin3", Role.IAM_ADMIN)


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    # A vendor's agent holding an admin scope: the stricter version denies it.
    world = build_policy_world(owner, vendor="Acme")
    Grant.objects.create(integration=world.integration, scope=world.scopes["admin"], source_type="tests", source_id="2")
    return world


def _draft(author: User, **values: object) -> PolicyVersion:
    return policies.policy_draft_create(
        actor=author,
        title=str(values.get("title", "Vendors get no admin scope")),
        cedar_text=str(values.get("cedar_text", stricter_text())),
        tests=values.get("tests", stricter_tests()),  # type: ignore[arg-type]
    )


def _ready(author: User) -> PolicyVersion:
    draft = _draft(author)
    replayed(draft, author)
    return draft


def _requested(version: PolicyVersion, asker: User) -> AccessRequest:
    req = policies.policy_enforcement_request(actor=asker, version=version, justification="Vendors out of admin.")
    version.refresh_from_db()
    return req


def _admin_decision(world: PolicyWorld) -> int:
    [outcome] = pdp.decide([world.request("admin")], point="api")
    return outcome.enforced.number


def test_promotion_is_blocked_without_a_fresh_replay(author: User, asker: User) -> None:
    draft = _draft(author)
    assert any("replay" in blocker for blocker in policies.promotion_blockers(draft))
    with pytest.raises(Conflict, match="replay"):
        policies.policy_enforcement_request(actor=asker, version=draft)
    replay = replayed(draft, author)
    assert policies.fresh_replay(draft) == replay and policies.promotion_blockers(draft) == []
    assert not AccessRequest.objects.exists()


def test_an_edit_makes_the_replay_stale_again(author: User) -> None:
    draft = _ready(author)
    policies.policy_draft_update(actor=author, version=draft, title="Renamed only", cedar_text=stricter_text())
    assert policies.fresh_replay(draft) is None
    replayed(draft, author)
    policies.policy_draft_update(
        actor=author, version=draft, title="Other text", cedar_text=stricter_text() + "\n// note\n"
    )
    assert any("replay" in blocker for blocker in policies.promotion_blockers(draft))


def test_a_replay_of_another_text_is_not_fresh(author: User) -> None:
    draft = _draft(author)
    replay = replayed(draft, author)
    replay.candidate_sha256 = shipped().sha256
    replay.save(update_fields=["candidate_sha256"])
    assert policies.fresh_replay(draft) is None


def test_a_draft_with_a_failing_test_cannot_be_asked_for_enforcement(author: User, asker: User) -> None:
    draft = _draft(author, cedar_text=shipped().cedar_text)
    replayed(draft, author)
    [blocker] = policies.promotion_blockers(draft)
    assert "1 of its tests fail" in blocker and VENDOR_TEST["name"] in blocker
    with pytest.raises(Conflict):
        policies.policy_enforcement_request(actor=asker, version=draft)
    assert not AccessRequest.objects.exists()


def test_only_drafts_and_shadows_are_asked_for(author: User, asker: User) -> None:
    assert any("enforced" in blocker for blocker in policies.promotion_blockers(shipped()))
    with pytest.raises(Conflict):
        policies.policy_enforcement_request(actor=asker, version=shipped())


def test_the_authors_cannot_approve_and_another_admin_enforces(
    author: User, asker: User, approver: User, world: PolicyWorld
) -> None:
    draft = _ready(author)
    assert _admin_decision(world) == 1 and pdp.decide([world.request("admin")], point="api")[0].allowed
    req = _requested(draft, asker)
    assert draft.change_request_id == req.pk and req.payload["sha256"] == draft.sha256
    assert (
        req.subject_label == f"Runtime policy v2 — {draft.title}"
        and req.subject_url == f"/runtime/policies/{draft.pk}/"
    )
    for excluded in (author, asker):
        with pytest.raises(NotAllowed):
            request_decide(actor=excluded, request=req, decision="approve")
    assert draft.status == PolicyStatus.DRAFT
    request_decide(actor=approver, request=req, decision="approve")
    draft.refresh_from_db()
    previous = shipped()
    assert draft.status == PolicyStatus.ENFORCED and enforced_numbers() == [2]
    assert (draft.approved_by, draft.enforced_by) == (approver, approver)
    assert draft.approved_at is not None and draft.enforced_at is not None
    assert previous.status == PolicyStatus.RETIRED and previous.retired_by == approver
    assert selectors.enforced_version() == draft
    asked, _, asked_after = audited("policy_version.enforcement_requested", draft)
    assert asked.actor == asker and asked_after["request"] == req.pk
    enforced, before, after = audited("policy_version.enforced", draft)
    assert enforced.actor == approver and before == {"status": "draft", "enforced": 1}
    assert after["enforced"] == 2 and after["retired"] == 1 and after["approved_by"] == "admin3"
    # The decision point uses it at the very next decision.
    [outcome] = pdp.decide([world.request("admin")], point="api")
    assert outcome.enforced.number == 2 and not outcome.allowed
    assert outcome.enforced.reasons == ["forbid-vendor-admin"]


def test_a_shadow_version_is_enforced_too(author: User, asker: User, approver: User) -> None:
    draft = _draft(author)
    policies.policy_shadow(actor=author, version=draft)
    replayed(draft, author)
    req = _requested(draft, asker)
    request_decide(actor=approver, request=req, decision="approve")
    draft.refresh_from_db()
    assert draft.status == PolicyStatus.ENFORCED and enforced_numbers() == [2]


def test_an_edit_after_the_request_makes_the_approval_fail_and_change_nothing(
    author: User, asker: User, approver: User, world: PolicyWorld
) -> None:
    draft = _ready(author)
    req = _requested(draft, asker)
    policies.policy_draft_update(
        actor=author, version=draft, title="Changed after review", cedar_text=stricter_text() + "\n// edited\n"
    )
    with pytest.raises(Conflict, match="edited after request"):
        request_decide(actor=approver, request=req, decision="approve")
    req.refresh_from_db()
    draft.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and draft.status == PolicyStatus.DRAFT
    assert enforced_numbers() == [1] and _admin_decision(world) == 1
    assert not AuditEvent.objects.filter(action="policy_version.enforced").exists()


def test_a_rejection_frees_the_version_for_a_new_request(author: User, asker: User, approver: User) -> None:
    draft = _ready(author)
    req = _requested(draft, asker)
    assert policies.promotion_blockers(draft) == [f"Request #{req.pk} to enforce it is still open."]
    with pytest.raises(Conflict, match="still open"):
        policies.policy_enforcement_request(actor=asker, version=draft)
    request_decide(actor=approver, request=req, decision="reject", comment="Not before the audit.")
    draft.refresh_from_db()
    assert draft.change_request_id is None and draft.status == PolicyStatus.DRAFT
    event, _, after = audited("policy_version.change_rejected", draft)
    assert after["request_status"] == "rejected" and event.reason == "Not before the audit."
    again = _requested(draft, asker)
    assert again.pk != req.pk and draft.change_request_id == again.pk


def test_a_withdrawn_request_frees_the_version(author: User, asker: User) -> None:
    draft = _ready(author)
    req = _requested(draft, asker)
    request_withdraw(actor=asker, request=req, reason="Wrong week.")
    draft.refresh_from_db()
    assert draft.change_request_id is None
    assert AuditEvent.objects.filter(action="policy_version.change_rejected", target_id=str(draft.pk)).exists()


def test_retiring_a_version_cancels_its_open_request(author: User, asker: User) -> None:
    draft = _ready(author)
    req = _requested(draft, asker)
    policies.policy_retire(actor=author, version=draft)
    req.refresh_from_db()
    assert req.status == RequestStatus.CANCELLED
    assert draft.status == PolicyStatus.RETIRED and draft.change_request_id is None


def test_only_iam_admins_ask(author: User, reviewer: User, auditor: User) -> None:
    draft = _ready(author)
    for someone in (reviewer, auditor):
        with pytest.raises(NotAllowed):
            policies.policy_enforcement_request(actor=someone, version=draft)
        with pytest.raises(NotAllowed):
            policies.policy_rollback_request(actor=someone)
    assert not AccessRequest.objects.exists()


def test_nothing_to_roll_back_to_before_a_second_version_was_enforced(asker: User) -> None:
    with pytest.raises(Conflict, match="first version enforced"):
        policies.policy_rollback_request(actor=asker)


def _enforce(author: User, asker: User, approver: User) -> PolicyVersion:
    draft = _ready(author)
    request_decide(actor=approver, request=_requested(draft, asker), decision="approve")
    draft.refresh_from_db()
    return draft


def test_a_rollback_takes_two_people_and_brings_back_the_previous_version(
    author: User, asker: User, approver: User, world: PolicyWorld
) -> None:
    second = _enforce(author, asker, approver)
    assert _admin_decision(world) == 2
    req = policies.policy_rollback_request(actor=asker, justification="The vendor rule broke the helpdesk.")
    assert req.payload["action"] == "rollback" and req.payload["version_id"] == shipped().pk
    assert req.payload["from_version_id"] == second.pk and shipped().change_request_id == req.pk
    with pytest.raises(NotAllowed):
        request_decide(actor=asker, request=req, decision="approve")
    request_decide(actor=approver, request=req, decision="approve")
    first = shipped()
    second.refresh_from_db()
    assert first.status == PolicyStatus.ENFORCED and first.retired_at is None and first.approved_by == approver
    assert second.status == PolicyStatus.RETIRED and enforced_numbers() == [1]
    event, before, after = audited("policy_version.rolled_back", first)
    assert event.actor == approver and before == {"status": "retired", "enforced": 2} and after["retired"] == 2
    [outcome] = pdp.decide([world.request("admin")], point="api")
    assert outcome.enforced.number == 1 and outcome.allowed


def test_a_rollback_no_longer_applies_once_another_version_is_enforced(
    author: User, asker: User, approver: User
) -> None:
    _enforce(author, asker, approver)
    rollback = policies.policy_rollback_request(actor=asker)
    third = _enforce(author, asker, approver)
    with pytest.raises(Conflict, match="enforced version changed"):
        request_decide(actor=approver, request=rollback, decision="approve")
    assert enforced_numbers() == [third.number]


# --- Separation of duties, whoever edits when ------------------------------------------------------


@pytest.fixture
def fourth(make_user: Callable[..., User]) -> User:
    return make_user("admin4", Role.IAM_ADMIN)


def test_an_earlier_editor_cannot_approve_though_someone_else_edited_last(
    author: User, asker: User, approver: User, fourth: User
) -> None:
    draft = _draft(author)
    policies.policy_draft_update(actor=approver, version=draft, title="Tightened", cedar_text=stricter_text())
    policies.policy_draft_update(actor=author, version=draft, title="Tightened again", cedar_text=stricter_text())
    replayed(draft, author)
    req = _requested(draft, asker)
    assert draft.edited_by == author and approver.pk in req.excluded_reviewer_ids
    with pytest.raises(NotAllowed, match="wrote or edited"):
        request_decide(actor=approver, request=req, decision="approve")
    assert enforced_numbers() == [1]
    request_decide(actor=fourth, request=req, decision="approve")
    assert enforced_numbers() == [2]


def test_whoever_edits_after_the_request_cannot_approve_it_even_with_the_same_text(
    author: User, asker: User, approver: User, world: PolicyWorld
) -> None:
    draft = _ready(author)
    req = _requested(draft, asker)
    # The same text (so the same hash) with one test renamed: the approver is now an editor.
    tests = [*stricter_tests()[:-1], {**VENDOR_TEST, "name": "vendors stay out of admin scopes"}]
    policies.policy_draft_update(
        actor=approver, version=draft, title="Renamed a test", cedar_text=stricter_text(), tests=tests
    )
    assert draft.sha256 == req.payload["sha256"]
    with pytest.raises(NotAllowed, match="Separation of duties"):
        request_decide(actor=approver, request=req, decision="approve")
    req.refresh_from_db()
    draft.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and draft.status == PolicyStatus.DRAFT
    assert enforced_numbers() == [1] and _admin_decision(world) == 1
    assert not AuditEvent.objects.filter(action="policy_version.enforced").exists()


def test_the_author_of_the_version_rolled_back_to_cannot_approve_the_rollback(
    author: User, asker: User, approver: User, fourth: User
) -> None:
    second = _enforce(author, asker, approver)
    third = policies.policy_draft_create(
        actor=approver, title="Third", cedar_text=stricter_text() + "\n// third\n", tests=stricter_tests()
    )
    replayed(third, approver)
    request_decide(actor=author, request=_requested(third, asker), decision="approve")
    assert enforced_numbers() == [third.number]
    rollback = policies.policy_rollback_request(actor=asker, justification="Back to v2.")
    assert rollback.payload["version_id"] == second.pk and author.pk in rollback.excluded_reviewer_ids
    with pytest.raises(NotAllowed):
        request_decide(actor=author, request=rollback, decision="approve")
    assert enforced_numbers() == [third.number]
    request_decide(actor=fourth, request=rollback, decision="approve")
    assert enforced_numbers() == [second.number]


def test_the_person_behind_a_service_account_cannot_approve_what_it_wrote(
    make_user: Callable[..., User], asker: User, approver: User
) -> None:
    # A repository's CI pushes drafts with an IAM admin service account that its manager answers for.
    manager = approver
    robot = make_user("ci-robot", Role.IAM_ADMIN, manager=manager, is_service_account=True)
    draft = _ready(robot)
    req = _requested(draft, asker)
    assert manager.pk in req.excluded_reviewer_ids
    with pytest.raises(NotAllowed, match="(?i)separation of duties"):
        request_decide(actor=manager, request=req, decision="approve")
    assert enforced_numbers() == [1]
