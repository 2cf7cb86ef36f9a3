"""Policy versions as drafts: every save validates strictly and runs the tests, only drafts are
edited, a failing test keeps a version in draft, and the enforced one is never retired by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db.models.signals import pre_save

from governance.exceptions import Conflict, IllegalTransition, NotAllowed, Unprocessable
from governance.models import AuditEvent, User
from governance.roles import Role
from runtime.models import PolicyStatus, PolicyVersion
from runtime.policy import pdp
from runtime.policy.source import text_sha256
from runtime.services import policies
from tests.runtime.policy.support import build_policy_world
from tests.runtime.policy.versions_support import (
    TYPO_TEXT,
    VENDOR_TEST,
    audited,
    shipped,
    stricter_tests,
    stricter_text,
)

pytestmark = pytest.mark.django_db


def _draft(actor: User, **values: object) -> PolicyVersion:
    return policies.policy_draft_create(
        actor=actor,
        title=str(values.pop("title", "Vendors get no admin scope")),
        cedar_text=str(values.pop("cedar_text", stricter_text())),
        tests=values.pop("tests", stricter_tests()),  # type: ignore[arg-type]
        **values,  # type: ignore[arg-type]
    )


def test_a_typo_is_refused_with_its_line_and_column(iam_admin: User) -> None:
    with pytest.raises(policies.PolicyTextRejected) as refused:
        _draft(iam_admin, cedar_text=TYPO_TEXT, tests=[])
    [error] = refused.value.policy_errors
    assert (error.line, error.column, error.policy_id) == (4, 18, "permit-held")
    assert "statuss" in error.message
    assert refused.value.status == 422
    assert refused.value.errors["cedar_text"][0].startswith("line 4, column 18 (policy permit-held)")
    assert PolicyVersion.objects.count() == 1


def test_a_malformed_test_is_refused_naming_its_field(iam_admin: User) -> None:
    tests = [*shipped().tests[:2], {**VENDOR_TEST, "scope": {"acess": "admin"}}]
    with pytest.raises(Unprocessable) as refused:
        _draft(iam_admin, tests=tests)
    assert list(refused.value.errors) == ["tests[2].scope.acess"]
    assert PolicyVersion.objects.count() == 1


def test_a_draft_takes_the_next_number_runs_its_tests_and_is_audited(iam_admin: User) -> None:
    draft = _draft(iam_admin, source="api", source_ref="policies@4f1c2e9")
    assert draft.number == 2 and draft.status == PolicyStatus.DRAFT
    assert draft.sha256 == text_sha256(stricter_text())
    assert draft.tests_passed and draft.tests_run_at is not None
    assert len(draft.test_results) == len(stricter_tests())
    assert all(result["passed"] for result in draft.test_results)
    assert (draft.created_by, draft.edited_by, draft.source, draft.source_ref) == (
        iam_admin,
        iam_admin,
        "api",
        "policies@4f1c2e9",
    )
    event, _, after = audited("policy_version.created", draft)
    assert event.actor == iam_admin and after["sha256"] == draft.sha256
    assert _draft(iam_admin, title="Another").number == 3


def test_line_ends_are_stored_as_newlines(iam_admin: User) -> None:
    draft = _draft(iam_admin, cedar_text=stricter_text().replace("\n", "\r\n"))
    assert "\r" not in draft.cedar_text and draft.sha256 == text_sha256(stricter_text())


def test_a_draft_based_on_another_takes_its_tests(iam_admin: User) -> None:
    draft = policies.policy_draft_create(
        actor=iam_admin, title="Copy", cedar_text=shipped().cedar_text, based_on=shipped()
    )
    assert draft.tests == shipped().tests and draft.based_on == shipped() and draft.tests_passed


def test_an_edit_replaces_the_text_runs_the_tests_again_and_is_audited(iam_admin: User) -> None:
    draft = _draft(iam_admin, cedar_text=shipped().cedar_text, tests=shipped().tests)
    first_sha, first_edit = draft.sha256, draft.edited_at
    policies.policy_draft_update(
        actor=iam_admin, version=draft, title="Stricter", cedar_text=stricter_text(), tests=stricter_tests()
    )
    draft.refresh_from_db()
    assert draft.sha256 == text_sha256(stricter_text()) != first_sha
    assert draft.edited_at > first_edit and draft.title == "Stricter"
    assert [result["name"] for result in draft.test_results][-1] == VENDOR_TEST["name"]
    _, before, after = audited("policy_version.edited", draft)
    assert before["sha256"] == first_sha and after["sha256"] == draft.sha256


def test_an_edit_without_tests_keeps_them(iam_admin: User) -> None:
    draft = _draft(iam_admin)
    policies.policy_draft_update(actor=iam_admin, version=draft, title="Same tests", cedar_text=stricter_text())
    assert draft.tests == stricter_tests()


def test_an_invalid_edit_changes_nothing(iam_admin: User) -> None:
    draft = _draft(iam_admin)
    with pytest.raises(policies.PolicyTextRejected):
        policies.policy_draft_update(actor=iam_admin, version=draft, title="Broken", cedar_text=TYPO_TEXT)
    draft.refresh_from_db()
    assert draft.title == "Vendors get no admin scope" and draft.cedar_text == stricter_text()
    assert not AuditEvent.objects.filter(action="policy_version.edited").exists()


def test_only_a_draft_is_edited(iam_admin: User) -> None:
    draft = _draft(iam_admin)
    policies.policy_shadow(actor=iam_admin, version=draft)
    for version in (draft, shipped()):
        with pytest.raises(IllegalTransition):
            policies.policy_draft_update(actor=iam_admin, version=version, title="x", cedar_text=stricter_text())


def test_a_draft_with_a_failing_test_cannot_go_to_shadow(iam_admin: User) -> None:
    # The shipped set allows a vendor's agent an admin scope it holds: the new test fails.
    draft = _draft(iam_admin, cedar_text=shipped().cedar_text)
    assert not draft.tests_passed
    [failing] = [result for result in draft.test_results if not result["passed"]]
    assert failing["name"] == VENDOR_TEST["name"] and failing["actual"] == "allow"
    with pytest.raises(Conflict, match="cannot leave draft"):
        policies.policy_shadow(actor=iam_admin, version=draft)
    draft.refresh_from_db()
    assert draft.status == PolicyStatus.DRAFT and draft.shadow_at is None


def test_a_shadow_version_is_evaluated_beside_the_enforced_one(iam_admin: User, owner: User) -> None:
    world = build_policy_world(owner)
    draft = _draft(iam_admin)
    policies.policy_shadow(actor=iam_admin, version=draft)
    assert draft.status == PolicyStatus.SHADOW and draft.shadow_at is not None
    assert AuditEvent.objects.filter(action="policy_version.shadowed", target_id=str(draft.pk)).exists()
    [outcome] = pdp.decide([world.request("read")], point="api")
    assert outcome.enforced.number == 1 and [result.number for result in outcome.shadow] == [draft.number]


def test_drafts_and_shadows_retire_but_the_enforced_version_never_by_hand(iam_admin: User) -> None:
    draft, shadow = _draft(iam_admin), _draft(iam_admin, title="Shadow")
    policies.policy_shadow(actor=iam_admin, version=shadow)
    for version in (draft, shadow):
        policies.policy_retire(actor=iam_admin, version=version)
        assert version.status == PolicyStatus.RETIRED and version.retired_by == iam_admin
    with pytest.raises(IllegalTransition, match="enforced"):
        policies.policy_retire(actor=iam_admin, version=shipped())
    with pytest.raises(IllegalTransition):
        policies.policy_retire(actor=iam_admin, version=draft)
    with pytest.raises(IllegalTransition):
        policies.policy_shadow(actor=iam_admin, version=draft)
    assert shipped().status == PolicyStatus.ENFORCED
    assert AuditEvent.objects.filter(action="policy_version.retired").count() == 2


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR, Role.BUSINESS_USER])
def test_only_iam_admins_write_policies(make_user: Callable[..., User], iam_admin: User, role: str) -> None:
    someone = make_user("someone", role)
    with pytest.raises(NotAllowed):
        _draft(someone)
    draft = _draft(iam_admin)
    for write in (
        lambda: policies.policy_draft_update(actor=someone, version=draft, title="x", cedar_text=stricter_text()),
        lambda: policies.policy_shadow(actor=someone, version=draft),
        lambda: policies.policy_retire(actor=someone, version=draft),
    ):
        with pytest.raises(NotAllowed):
            write()
    draft.refresh_from_db()
    assert draft.status == PolicyStatus.DRAFT and PolicyVersion.objects.count() == 2


def test_running_the_tests_stores_their_results(iam_admin: User) -> None:
    enforced = shipped()
    results = policies.policy_tests_run(actor=iam_admin, version=enforced)
    enforced.refresh_from_db()
    assert enforced.tests_passed and enforced.tests_run_at is not None
    assert enforced.test_results == results and len(results) == len(enforced.tests)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR, Role.BUSINESS_USER])
def test_only_iam_admins_run_the_tests(make_user: Callable[..., User], role: str) -> None:
    enforced = shipped()
    before = enforced.tests_run_at
    with pytest.raises(NotAllowed):
        policies.policy_tests_run(actor=make_user("someone", role), version=enforced)
    enforced.refresh_from_db()
    assert enforced.tests_run_at == before


def test_results_of_a_text_edited_meanwhile_are_not_stored(iam_admin: User) -> None:
    draft = _draft(iam_admin, cedar_text=shipped().cedar_text)
    stale = PolicyVersion.objects.get(pk=draft.pk)
    policies.policy_draft_update(actor=iam_admin, version=draft, title="Fixed", cedar_text=stricter_text())
    policies.policy_tests_run(actor=iam_admin, version=stale)  # decided by the text it was read with: one test fails
    draft.refresh_from_db()
    assert draft.tests_passed


def test_a_number_taken_meanwhile_is_retried(iam_admin: User) -> None:
    # Another writer takes the number between this save's read of the highest and its insert. (Its
    # row goes with this save's savepoint here; what matters is that the clash is retried.)
    taken: list[PolicyVersion] = []

    def another_writer(sender: type[PolicyVersion], instance: PolicyVersion, **kwargs: object) -> None:
        if not taken:
            values = {"title": "Concurrent", "cedar_text": "", "sha256": "", "status": PolicyStatus.DRAFT}
            taken.extend(PolicyVersion.objects.bulk_create([PolicyVersion(number=instance.number, **values)]))

    pre_save.connect(another_writer, sender=PolicyVersion, dispatch_uid="test-number-race")
    try:
        draft = _draft(iam_admin)
    finally:
        pre_save.disconnect(sender=PolicyVersion, dispatch_uid="test-number-race")
    assert taken and taken[0].number == 2
    assert draft.number == 2 and PolicyVersion.objects.filter(number=2).get() == draft


# Brackets nested this deep made Cedar's parser overflow the stack and kill the process.
DEEP_BRACKETS = (
    '@id("deep")\n@description("Brackets nested far too deep.")\n'
    "forbid (principal, action, resource)\nwhen { " + "(" * 5000 + "true" + ")" * 5000 + " };\n"
)


def _chain(alternatives: int) -> str:
    """A forbid whose condition is a chain of ``alternatives`` comparisons joined by ``||``."""
    codes = " || ".join(f'resource.code == "crm:{index}"' for index in range(alternatives))
    return f'\n@id("forbid-listed")\n@description("Listed scopes are frozen.")\nforbid (principal, action, resource is Scope)\nwhen {{ {codes} }};\n'


def test_brackets_nested_too_deep_are_refused_at_their_place_before_any_parser_reads_them(iam_admin: User) -> None:
    with pytest.raises(policies.PolicyTextRejected) as refused:
        _draft(iam_admin, cedar_text=shipped().cedar_text + DEEP_BRACKETS, tests=[])
    [error] = refused.value.policy_errors
    # At the bracket one level too deep: `when {` is the first level, each "(" one more.
    when_line = shipped().cedar_text.count("\n") + 4
    assert (error.line, error.column) == (when_line, len("when { ") + policies.MAX_NESTING)
    assert "nest more than" in error.message
    assert PolicyVersion.objects.count() == 1


def test_a_policy_with_too_many_operators_is_refused(iam_admin: User) -> None:
    # Three operators (==, . and ||) per comparison.
    with pytest.raises(policies.PolicyTextRejected, match="at most 200 operators"):
        _draft(iam_admin, cedar_text=shipped().cedar_text + _chain(70), tests=[])
    assert PolicyVersion.objects.count() == 1


def test_a_valid_chain_too_deep_for_the_decision_point_to_load_is_refused_not_stored(iam_admin: User) -> None:
    # It parses and validates, but the set is loaded from its JSON form, which nests too deep.
    text = shipped().cedar_text + _chain(60)
    with pytest.raises(policies.PolicyTextRejected) as refused:
        _draft(iam_admin, cedar_text=text, tests=[])
    [error] = refused.value.policy_errors
    assert error.message == policies.TOO_DEEP
    assert error.line == shipped().cedar_text.count("\n") + 2
    assert PolicyVersion.objects.count() == 1
    # A shorter list of the same kind is fine.
    assert _draft(iam_admin, cedar_text=shipped().cedar_text + _chain(10), tests=[]).number == 2
