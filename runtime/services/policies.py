"""Runtime policy versions: their Cedar text and tests, their life, and the two-person rule that
puts one in force.

Moves (``MANUAL_MOVES``; ``policy_shadow``, ``policy_retire``)::

    draft --shadow--> shadow            (valid against the schema now, every test passing)
    draft | shadow --retire--> retired  (an open change request for it is cancelled)
    draft | shadow --approved "enforce" request--> enforced   (the enforced one becomes retired)
    retired --approved "rollback" request--> enforced         (the enforced one becomes retired)

Rules that hold whoever calls:

* every save parses and validates the text strictly against the current schema and checks the
  tests (a typo is refused with its line and column, never stored to silently never match); it
  runs the tests and stores their results; only a draft is edited;
* a version never leaves draft while one of its tests fails;
* enforcing takes two people: an IAM admin asks (``policy_enforcement_request``, only when
  ``promotion_blockers`` is empty, which needs a replay of this exact text since its last edit)
  and another IAM admin approves the ``policy_change`` request in approvals — neither the
  version's authors nor the requester may decide it. The approval applies it here
  (``policy_change_decided``) in the decision's transaction, and only if the text is still the
  one the request named;
* the enforced version is never retired by itself: enforcing another (or rolling back) retires
  it, first, in the same transaction, so that at most one is enforced at any moment;
* every change is audited in its transaction; only IAM admins (or the system) write.

The decision point reads which version is enforced at every decision, so an approval counts at
the next one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone

from approvals.models import OPEN_STATUSES, AccessRequest, Decision, DecisionKind, RequestStatus, RequestType
from approvals.services import change_request_cancel, change_request_open
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, IllegalTransition, NotAllowed, Unprocessable, ValidationFailed
from governance.models import AuditEvent, User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion, ReplayStatus
from runtime.permissions import can_manage_policies
from runtime.policy.source import (
    MAX_TEXT,
    PolicyError,
    PolicyTextInvalid,
    errors_of,
    load,
    position,
    split_statements,
    text_sha256,
)
from runtime.policy.testing import PolicyTestsInvalid, checked_tests, run_tests

# What people move by hand; enforcing (and the retirement it causes) only follows an approval.
MANUAL_MOVES: dict[str, frozenset[str]] = {
    PolicyStatus.DRAFT: frozenset({PolicyStatus.SHADOW, PolicyStatus.RETIRED}),
    PolicyStatus.SHADOW: frozenset({PolicyStatus.RETIRED}),
    PolicyStatus.ENFORCED: frozenset(),
    PolicyStatus.RETIRED: frozenset(),
}
# Who an approved "enforce" request may put in force; a "rollback" brings back a retired one.
ENFORCEABLE = frozenset({PolicyStatus.DRAFT, PolicyStatus.SHADOW})
ENFORCE = "enforce"
ROLLBACK = "rollback"
SOURCES = ("portal", "api")
TITLE_MAX = 200
SOURCE_REF_MAX = 200
LABEL_MAX = 200
# Cedar's parser recurses once per nested bracket and overflows the worker's stack (the process
# dies, no exception) some hundreds of levels down, and a long chain of operators nests as deep
# in the JSON form a set is loaded from. Real policies stay far below these bounds (the shipped
# ones: 15 operators, brackets 2 deep); a text past them is refused before any parser reads it.
MAX_NESTING = 32
MAX_OPERATORS = 200
_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"?|//[^\n]*')
_OPERATOR = re.compile(r"&&|\|\||[=!<>]=|[<>+*.-]|\b(?:if|in|has|like|is)\b")
TOO_DEEP = (
    "The policy engine cannot load this policy: a chain of conditions nests too deeply. Split it into "
    "several policies, or test membership with […].contains(…)."
)
# Whose work a version is: its audit events name each author and editor (and, for a service
# account, the person answering for it).
WRITTEN = ("policy_version.created", "policy_version.edited")


class PolicyTextRejected(Unprocessable):
    """The Cedar text does not parse or does not validate strictly against the schema.
    ``policy_errors`` are the errors at their line and column; ``errors`` names the field
    (``cedar_text``) with the same errors as text, like any refused input."""

    def __init__(self, policy_errors: Sequence[PolicyError]) -> None:
        messages = [str(error) for error in policy_errors]
        count = "1 error" if len(messages) == 1 else f"{len(messages)} errors"
        super().__init__(f"The policy text has {count}: {messages[0]}", errors={"cedar_text": messages})
        self.policy_errors = list(policy_errors)


# --- Checks -----------------------------------------------------------------------------------


def _manager(actor: Actor | User, doing: str) -> Actor:
    resolved = Actor.coerce(actor)
    if not can_manage_policies(resolved):
        raise NotAllowed(f"Only IAM admins {doing}.")
    return resolved


def _person(actor: Actor) -> User:
    """Who a version records as its author or approver: the person, or whom the system acts for."""
    return actor.on_behalf_of or actor.user


def _checked_line(field: str, value: str, *, maximum: int, required: bool) -> str:
    if not isinstance(value, str):
        raise ValidationFailed.on(field, "Expected a string.")
    value = value.strip()
    if required and not value:
        raise ValidationFailed.on(field, "Required.")
    if len(value) > maximum:
        raise ValidationFailed.on(field, f"At most {maximum} characters.")
    if has_control_characters(value):
        raise ValidationFailed.on(field, SINGLE_LINE_MESSAGE)
    return value


def _blanked(statement: str) -> str:
    """``statement`` with its strings and comments blanked out (same length: offsets hold)."""
    return _STRING_OR_COMMENT.sub(lambda match: " " * len(match.group()), statement)


def _shape_errors(text: str) -> list[PolicyError]:
    """Where a policy nests brackets deeper than ``MAX_NESTING`` or holds more than
    ``MAX_OPERATORS`` operators (found without parsing: the parser is what such a text breaks)."""
    errors: list[PolicyError] = []
    for statement in split_statements(text):
        code = _blanked(statement.text)
        depth, offset = 0, -1
        for index, char in enumerate(code):
            depth = max(0, depth + (char in "([{") - (char in ")]}"))
            if depth > MAX_NESTING:
                offset = index
                break
        if offset >= 0:
            message = f"Brackets nest more than {MAX_NESTING} deep: split the condition into simpler ones."
            errors.append(PolicyError(*position(text, statement.start + offset), message))
            continue
        operators = [match.start() for match in _OPERATOR.finditer(code)]
        if len(operators) > MAX_OPERATORS:
            message = f"A policy holds at most {MAX_OPERATORS} operators: split it into several policies."
            errors.append(PolicyError(*position(text, statement.start + operators[MAX_OPERATORS]), message))
    return errors


def _deepest_policy(text: str) -> PolicyError:
    """The unloadable text's policy with the most operators, at its first line (a text that
    validated has at least one)."""
    deepest = max(split_statements(text), key=lambda statement: len(_OPERATOR.findall(_blanked(statement.text))))
    code = _blanked(deepest.text)
    start = len(code) - len(code.lstrip())
    return PolicyError(*position(text, deepest.start + start), TOO_DEEP)


def _checked_text(cedar_text: str) -> str:
    """The text as stored (line ends made ``\\n``, so a browser's and a repository's copy of the
    same text have one hash), parsed, strictly validated, and loadable by the decision point."""
    if not isinstance(cedar_text, str):
        raise ValidationFailed.on("cedar_text", "Expected a string.")
    text = cedar_text.replace("\r\n", "\n")
    # An oversized text is refused by its size first (no need to scan it).
    shape = _shape_errors(text) if len(text) <= MAX_TEXT else []
    if shape:
        raise PolicyTextRejected(shape)
    try:
        load(text)
    except PolicyTextInvalid as invalid:
        raise PolicyTextRejected(invalid.errors) from invalid
    except (ValueError, RecursionError) as exc:
        # It parses and validates, but its JSON form nests deeper than the loader reads.
        raise PolicyTextRejected([_deepest_policy(text)]) from exc
    return text


def _checked_tests(raw: Any) -> list[dict[str, Any]]:
    """The tests as written (so they read back as the author or the repository has them), once
    checked."""
    try:
        checked_tests(raw)
    except PolicyTestsInvalid as invalid:
        raise Unprocessable.on(invalid.field, invalid.message) from invalid
    return [dict(test) for test in raw]


def _checked_source(source: str, source_ref: str) -> tuple[str, str]:
    if source not in SOURCES:
        raise ValidationFailed.on("source", f"One of {', '.join(SOURCES)}.")
    return source, _checked_line("source_ref", source_ref, maximum=SOURCE_REF_MAX, required=False)


def _failed_result(test: Mapping[str, Any], error: str) -> dict[str, Any]:
    return {
        "name": str(test.get("name", "")),
        "expected": str(test.get("expect", "")),
        "actual": "deny",
        "passed": False,
        "reasons": [],
        "errors": [error],
    }


def _results(text: str, raw_tests: Any) -> tuple[list[dict[str, Any]], bool]:
    """The tests run against ``text`` under the current schema, and whether all passed. A text or
    tests the schema no longer accepts fail, saying why (never an exception: pages show it)."""
    try:
        tests = checked_tests(raw_tests)
    except PolicyTestsInvalid as invalid:
        return [_failed_result({"name": invalid.field}, f"The test is malformed: {invalid.message}")], False
    try:
        loaded = load(text)
    except PolicyTextInvalid as invalid:
        error = f"The policy text does not validate against the current schema: {invalid}"
        return [_failed_result(test, error) for test in tests], False
    except (ValueError, RecursionError):
        return [_failed_result(test, TOO_DEEP) for test in tests], False
    results = [result.as_dict() for result in run_tests(loaded, tests)]
    return results, all(result["passed"] for result in results)


def _failing_summary(results: Sequence[Mapping[str, Any]]) -> str:
    failing = [result for result in results if not result["passed"]]
    named = "; ".join(
        f"'{result['name']}' (expected {result['expected']}, got {result['actual']}"
        + (f": {result['errors'][0]}" if result["errors"] else "")
        + ")"
        for result in failing[:3]
    )
    more = f" and {len(failing) - 3} more" if len(failing) > 3 else ""
    return f"{len(failing)} of its tests fail: {named}{more}."


def _text_summary(errors: Sequence[PolicyError]) -> str:
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"It does not validate against the current schema: {errors[0]}{more}."


def _readiness(version: PolicyVersion) -> tuple[list[str], list[dict[str, Any]]]:
    """What stops the text from deciding anything now (schema errors, or a failing test), and
    the tests' results when it validates."""
    errors = errors_of(version.cedar_text)
    if errors:
        return [_text_summary(errors)], []
    results, passed = _results(version.cedar_text, version.tests)
    return ([] if passed else [_failing_summary(results)]), results


def _readiness_blockers(version: PolicyVersion) -> list[str]:
    return _readiness(version)[0]


def _open_request(version: PolicyVersion) -> AccessRequest | None:
    if version.change_request_id is None:
        return None
    return AccessRequest.objects.filter(pk=version.change_request_id, status__in=OPEN_STATUSES).first()


def replay_is_fresh(replay: PolicyReplay, version: PolicyVersion) -> bool:
    """Whether ``replay`` finished on exactly ``version``'s current text after its last edit."""
    return (
        replay.status == ReplayStatus.DONE
        and replay.candidate_sha256 == version.sha256
        and replay.finished_at is not None
        and replay.finished_at > version.edited_at
    )


def fresh_replay(version: PolicyVersion) -> PolicyReplay | None:
    """The latest finished replay of exactly this text, run after its last edit (None: there is
    none, so nobody has seen what enforcing it would change)."""
    return (
        PolicyReplay.objects.filter(
            candidate=version,
            status=ReplayStatus.DONE,
            candidate_sha256=version.sha256,
            finished_at__gt=version.edited_at,
        )
        .order_by("-finished_at", "-id")
        .first()
    )


def promotion_blockers(version: PolicyVersion) -> list[str]:
    """Why ``version`` may not be asked for enforcement yet (empty: it may): it must be a draft
    or in shadow, valid against the current schema, pass every test (run again now), have a
    fresh replay, and have no open request already."""
    blockers: list[str] = []
    if version.status not in ENFORCEABLE:
        label = PolicyStatus(version.status).label.lower()
        blockers.append(f"v{version.number} is {label}: only a draft or a shadow version can be enforced.")
    blockers.extend(_readiness_blockers(version))
    if fresh_replay(version) is None:
        blockers.append(
            "No replay of this exact text has finished since its last edit: run one and read what it would change."
        )
    pending = _open_request(version)
    if pending is not None:
        blockers.append(f"Request #{pending.pk} to enforce it is still open.")
    return blockers


# --- Rows -------------------------------------------------------------------------------------


def _locked(version: PolicyVersion) -> PolicyVersion:
    return PolicyVersion.objects.select_for_update().get(pk=version.pk)


def _move(row: PolicyVersion, from_status: str, **changes: Any) -> None:
    """A status move that must find the row still in ``from_status`` with the same text (a
    concurrent move or edit that got there first makes this one fail loudly)."""
    moved = PolicyVersion.objects.filter(pk=row.pk, status=from_status, sha256=row.sha256).update(**changes)
    if moved != 1:
        raise Conflict(f"Policy v{row.number} changed meanwhile: reload it and try again.")
    for name, value in changes.items():
        setattr(row, name, value)


def _check_manual_move(row: PolicyVersion, to_status: str) -> None:
    if to_status in MANUAL_MOVES[row.status]:
        return
    if row.status == PolicyStatus.ENFORCED:
        raise IllegalTransition(
            f"v{row.number} is enforced: it is retired when another version is enforced or a rollback is approved."
        )
    raise IllegalTransition(
        f"v{row.number} is {PolicyStatus(row.status).label.lower()}; it cannot become "
        f"{PolicyStatus(to_status).label.lower()}."
    )


def _copy_back(version: PolicyVersion, row: PolicyVersion) -> PolicyVersion:
    """The caller's object brought up to date with what was saved."""
    if version is not row:
        version.refresh_from_db()
    return row


def _snapshot(row: PolicyVersion) -> dict[str, Any]:
    return {
        "number": row.number,
        "title": row.title,
        "status": row.status,
        "sha256": row.sha256,
        "tests": len(row.tests),
        "tests_passed": row.tests_passed,
        "source": row.source,
        "source_ref": row.source_ref,
    }


def _page_of(version: PolicyVersion) -> str:
    return reverse("runtime:policy-detail", args=[version.pk])


# --- Drafts -----------------------------------------------------------------------------------


def _insert(values: dict[str, Any]) -> PolicyVersion:
    """Insert with the next number. Two saves at the same moment may pick the same one: the
    unique number refuses the second, which takes the next one in a retry."""
    for attempt in range(5):
        try:
            with transaction.atomic():
                number = (PolicyVersion.objects.aggregate(highest=Max("number"))["highest"] or 0) + 1
                return PolicyVersion.objects.create(number=number, **values)
        except IntegrityError:
            if attempt == 4:
                raise Conflict("Other versions were saved at the same moment: save again.") from None
    raise AssertionError("unreachable")


def policy_draft_create(
    *,
    actor: Actor | User,
    title: str,
    cedar_text: str,
    tests: list[dict[str, Any]] | None = None,
    based_on: PolicyVersion | None = None,
    source: str = "portal",
    source_ref: str = "",
) -> PolicyVersion:
    """Save a new draft with the next number. The text is validated strictly
    (``PolicyTextRejected`` with each error's line and column) and the tests checked (a 422
    naming the test field, e.g. ``tests[2].scope.acess``); without ``tests``, a draft based on
    another version takes its tests. The tests are run and their results stored. Audited as
    ``policy_version.created``. IAM admins only."""
    resolved = _manager(actor, "write runtime policies")
    clean_title = _checked_line("title", title, maximum=TITLE_MAX, required=True)
    text = _checked_text(cedar_text)
    checked = _checked_tests(tests if tests is not None else (based_on.tests if based_on is not None else []))
    clean_source, ref = _checked_source(source, source_ref)
    results, passed = _results(text, checked)
    author, now = _person(resolved), timezone.now()
    with transaction.atomic():
        row = _insert(
            {
                "title": clean_title,
                "cedar_text": text,
                "sha256": text_sha256(text),
                "tests": checked,
                "test_results": results,
                "tests_passed": passed,
                "tests_run_at": now,
                "status": PolicyStatus.DRAFT,
                "based_on": based_on,
                "source": clean_source,
                "source_ref": ref,
                "created_by": author,
                "created_at": now,
                "edited_by": author,
                "edited_at": now,
            }
        )
        audit_record(
            actor=resolved,
            action="policy_version.created",
            target=row,
            after={**_snapshot(row), "based_on": based_on.number if based_on is not None else None},
        )
    return row


def policy_draft_update(
    *,
    actor: Actor | User,
    version: PolicyVersion,
    title: str,
    cedar_text: str,
    tests: list[dict[str, Any]] | None = None,
    source: str = "portal",
    source_ref: str = "",
) -> PolicyVersion:
    """Replace a draft's title, text and (unless ``tests`` is None) tests, with the same checks as
    a new draft; the tests run again and ``edited_at`` moves, so an earlier replay is no longer
    fresh and an enforcement request opened before cannot be approved. Only a draft (409
    otherwise). Audited as ``policy_version.edited`` with before and after. IAM admins only."""
    resolved = _manager(actor, "write runtime policies")
    clean_title = _checked_line("title", title, maximum=TITLE_MAX, required=True)
    text = _checked_text(cedar_text)
    clean_source, ref = _checked_source(source, source_ref)
    with transaction.atomic():
        row = _locked(version)
        if row.status != PolicyStatus.DRAFT:
            raise IllegalTransition(
                f"v{row.number} is {PolicyStatus(row.status).label.lower()}: only a draft is edited. "
                "Start a new draft based on it."
            )
        checked = _checked_tests(tests if tests is not None else row.tests)
        results, passed = _results(text, checked)
        before, now = _snapshot(row), timezone.now()
        row.title, row.cedar_text, row.sha256, row.tests = clean_title, text, text_sha256(text), checked
        row.test_results, row.tests_passed, row.tests_run_at = results, passed, now
        row.source, row.source_ref = clean_source, ref
        row.edited_by, row.edited_at = _person(resolved), now
        row.save(
            update_fields=[
                "title", "cedar_text", "sha256", "tests", "test_results", "tests_passed", "tests_run_at",
                "source", "source_ref", "edited_by", "edited_at",
            ]
        )  # fmt: skip
        audit_record(actor=resolved, action="policy_version.edited", target=row, before=before, after=_snapshot(row))
    return _copy_back(version, row)


def policy_tests_run(*, actor: Actor | User, version: PolicyVersion) -> list[dict[str, Any]]:
    """Run the version's tests against the current schema and store the results (whatever its
    status: a schema change may have broken the enforced one). Results of a text that changed
    meanwhile are not stored over the newer ones. IAM admins (or the system) only."""
    _manager(actor, "run policy tests")
    results, passed = _results(version.cedar_text, version.tests)
    now = timezone.now()
    stored = PolicyVersion.objects.filter(pk=version.pk, sha256=version.sha256).update(
        test_results=results, tests_passed=passed, tests_run_at=now
    )
    if stored:
        version.test_results, version.tests_passed, version.tests_run_at = results, passed, now
    return results


# --- Manual moves -----------------------------------------------------------------------------


def policy_shadow(*, actor: Actor | User, version: PolicyVersion) -> PolicyVersion:
    """Draft → shadow: from the next decision on it is evaluated beside the enforced version and
    logged, never applied. Only a version valid against the schema now whose tests all pass
    (run again now). Audited as ``policy_version.shadowed``. IAM admins only."""
    resolved = _manager(actor, "move runtime policy versions")
    with transaction.atomic():
        row = _locked(version)
        _check_manual_move(row, PolicyStatus.SHADOW)
        blockers, results = _readiness(row)
        if blockers:
            raise Conflict(f"v{row.number} cannot leave draft: {' '.join(blockers)}")
        now = timezone.now()
        _move(
            row,
            PolicyStatus.DRAFT,
            status=PolicyStatus.SHADOW,
            shadow_at=now,
            test_results=results,
            tests_passed=True,
            tests_run_at=now,
        )
        audit_record(
            actor=resolved,
            action="policy_version.shadowed",
            target=row,
            before={"status": PolicyStatus.DRAFT},
            after={"status": PolicyStatus.SHADOW, "sha256": row.sha256},
        )
    return _copy_back(version, row)


def policy_retire(*, actor: Actor | User, version: PolicyVersion) -> PolicyVersion:
    """Draft or shadow → retired (it decides nothing any more; it stays as a record). An open
    request to enforce it is cancelled. The enforced version is never retired this way.
    Audited as ``policy_version.retired``. IAM admins only."""
    resolved = _manager(actor, "move runtime policy versions")
    with transaction.atomic():
        row = _locked(version)
        _check_manual_move(row, PolicyStatus.RETIRED)
        pending = _open_request(row)
        if pending is not None:
            # Its handler (below) hears "cancelled" in this transaction and forgets the request.
            change_request_cancel(actor=resolved, request=pending, reason=f"Policy v{row.number} was retired.")
            row.refresh_from_db()
        before = row.status
        _move(row, before, status=PolicyStatus.RETIRED, retired_at=timezone.now(), retired_by=_person(resolved))
        audit_record(
            actor=resolved,
            action="policy_version.retired",
            target=row,
            before={"status": before},
            after={"status": PolicyStatus.RETIRED},
        )
    return _copy_back(version, row)


# --- Two-person enforcement -------------------------------------------------------------------


def _writer_ids(version: PolicyVersion) -> set[int]:
    """Everyone who wrote or edited ``version`` — every editor, not only the last one — and the
    person answering for a service account that did (its audit events' owner)."""
    ids = {pk for pk in (version.created_by_id, version.edited_by_id) if pk is not None}
    events = AuditEvent.objects.filter(
        target_type=PolicyVersion._meta.label_lower, target_id=str(version.pk), action__in=WRITTEN
    )
    for actor_id, owner_id in events.values_list("actor_id", "owner_id"):
        ids |= {pk for pk in (actor_id, owner_id) if pk is not None}
    return ids


def _authors(version: PolicyVersion) -> list[User]:
    return list(User.objects.filter(pk__in=_writer_ids(version)))


def _people_behind(users: Iterable[User]) -> set[int]:
    """The people acting through ``users``: each one, and the manager answering for a service
    account."""
    ids: set[int] = set()
    for user in users:
        ids.add(user.pk)
        if user.is_service_account and user.manager_id is not None:
            ids.add(user.manager_id)
    return ids


def _check_two_people(req: AccessRequest, target: PolicyVersion, actor: Actor) -> None:
    """Nobody who asked for the change or wrote the version — counting edits made after the
    request was opened, which approvals did not know to exclude, and service accounts acting for
    them — approves it."""
    approvals = Decision.objects.filter(request=req, step__round=req.round, decision=DecisionKind.APPROVE)
    approvers = list(User.objects.filter(pk__in=approvals.values("reviewer_id")))
    deciding = _people_behind([*approvers, actor.user])
    barred = _writer_ids(target) | _people_behind([req.requester])
    if deciding & barred:
        raise NotAllowed(
            f"Separation of duties: v{target.number} was written or edited, or this change asked for, by "
            "someone approving it. Another IAM admin must decide; reject this request if it can never apply."
        )


def _label(prefix: str, version: PolicyVersion) -> str:
    return f"{prefix} v{version.number} — {version.title}"[:LABEL_MAX]


def policy_enforcement_request(
    *, actor: Actor | User, version: PolicyVersion, justification: str = ""
) -> AccessRequest:
    """Ask for ``version`` to be enforced: opens a ``policy_change`` request in approvals, which
    another IAM admin decides — never the requester nor the version's authors. Refused (409)
    while ``promotion_blockers`` names anything. Audited as ``policy_version.
    enforcement_requested``. IAM admins only."""
    resolved = _manager(actor, "ask for a runtime policy version to be enforced")
    with transaction.atomic():
        row = _locked(version)
        blockers = promotion_blockers(row)
        if blockers:
            raise Conflict(
                f"v{row.number} cannot be asked for enforcement yet: {' '.join(blockers)}",
                errors={"promotion_blockers": blockers},
            )
        req = change_request_open(
            actor=resolved,
            type=RequestType.POLICY_CHANGE,
            subject_label=_label("Runtime policy", row),
            subject_url=_page_of(row),
            payload={"version_id": row.pk, "action": ENFORCE, "sha256": row.sha256},
            justification=justification,
            excluded_reviewers=_authors(row),
        )
        PolicyVersion.objects.filter(pk=row.pk).update(change_request_id=req.pk)
        row.change_request_id = req.pk
        audit_record(
            actor=resolved,
            action="policy_version.enforcement_requested",
            target=row,
            after={"action": ENFORCE, "request": req.pk, "sha256": row.sha256, "status": row.status},
            reason=justification,
        )
    _copy_back(version, row)
    return req


def _previous_enforced(current: PolicyVersion) -> PolicyVersion | None:
    """The version enforced just before ``current``: the retired one put in force last before it."""
    if current.enforced_at is None:
        return None
    return (
        PolicyVersion.objects.filter(
            status=PolicyStatus.RETIRED, enforced_at__isnull=False, enforced_at__lt=current.enforced_at
        )
        .order_by("-enforced_at", "-number")
        .first()
    )


def policy_rollback_request(*, actor: Actor | User, justification: str = "") -> AccessRequest:
    """Ask for the version enforced before the current one to be enforced again: a
    ``policy_change`` request (action ``rollback``) another IAM admin decides. Refused (409)
    when nothing was enforced before, or that version no longer validates or passes its tests.
    Audited as ``policy_version.enforcement_requested``. IAM admins only."""
    resolved = _manager(actor, "ask for a runtime policy rollback")
    with transaction.atomic():
        current = PolicyVersion.objects.select_for_update().filter(status=PolicyStatus.ENFORCED).first()
        if current is None:
            raise Conflict("No version is enforced: there is nothing to roll back.")
        previous = _previous_enforced(current)
        if previous is None:
            raise Conflict(f"v{current.number} is the first version enforced: there is nothing to roll back to.")
        previous = _locked(previous)
        blockers = _readiness_blockers(previous)
        if blockers:
            raise Conflict(f"v{previous.number} cannot be enforced again: {' '.join(blockers)}")
        req = change_request_open(
            actor=resolved,
            type=RequestType.POLICY_CHANGE,
            subject_label=_label("Roll back runtime policy to", previous),
            subject_url=_page_of(previous),
            payload={
                "version_id": previous.pk,
                "action": ROLLBACK,
                "sha256": previous.sha256,
                "from_version_id": current.pk,
            },
            justification=justification,
            excluded_reviewers=_authors(previous),
        )
        PolicyVersion.objects.filter(pk=previous.pk).update(change_request_id=req.pk)
        previous.change_request_id = req.pk
        audit_record(
            actor=resolved,
            action="policy_version.enforcement_requested",
            target=previous,
            after={"action": ROLLBACK, "request": req.pk, "from": current.number, "to": previous.number},
            reason=justification,
        )
    return req


# --- Applying a decided request (the handler approvals calls) ----------------------------------


def _payload_version_id(req: AccessRequest) -> int:
    value = (req.payload or {}).get("version_id")
    if isinstance(value, bool) or not str(value).isdigit():
        raise Conflict(f"Request #{req.pk} names no policy version.")
    return int(str(value))


def _check_applicable(req: AccessRequest, target: PolicyVersion, current: PolicyVersion | None) -> str:
    """The request's action, once sure it still applies to the versions as they stand."""
    payload = req.payload or {}
    action = payload.get("action")
    if target.sha256 != payload.get("sha256"):
        raise Conflict(
            f"v{target.number} was edited after request #{req.pk} was opened: the text reviewed is not the "
            "one it holds now. Reject this request; ask again for the edited version."
        )
    if action == ENFORCE and target.status not in ENFORCEABLE:
        raise Conflict(f"v{target.number} is {PolicyStatus(target.status).label.lower()}: it cannot be enforced.")
    if action == ROLLBACK:
        if target.status != PolicyStatus.RETIRED or current is None or current.pk != payload.get("from_version_id"):
            raise Conflict(
                f"The enforced version changed since request #{req.pk} was opened: this rollback no longer applies."
            )
    elif action != ENFORCE:
        raise Conflict(f"Request #{req.pk} asks for an unknown policy change.")
    blockers = _readiness_blockers(target)
    if blockers:
        raise Conflict(f"v{target.number} cannot be enforced now: {' '.join(blockers)}")
    return str(action)


def _apply_approved(req: AccessRequest, actor: Actor) -> None:
    """Retire the enforced version, then enforce the request's version (in this order: at most
    one is enforced at any moment), audited with both."""
    version_id = _payload_version_id(req)
    rows = list(
        PolicyVersion.objects.select_for_update()
        .filter(Q(pk=version_id) | Q(status=PolicyStatus.ENFORCED))
        .order_by("pk")
    )
    target = next((row for row in rows if row.pk == version_id), None)
    if target is None:
        raise Conflict(f"The policy version request #{req.pk} names no longer exists.")
    current = next((row for row in rows if row.status == PolicyStatus.ENFORCED and row.pk != version_id), None)
    action = _check_applicable(req, target, current)
    _check_two_people(req, target, actor)
    approver, now, before = _person(actor), timezone.now(), target.status
    if current is not None:
        _move(current, PolicyStatus.ENFORCED, status=PolicyStatus.RETIRED, retired_at=now, retired_by=approver)
    _move(
        target,
        before,
        status=PolicyStatus.ENFORCED,
        approved_by=approver,
        approved_at=now,
        enforced_by=approver,
        enforced_at=now,
        retired_at=None,
        retired_by=None,
        change_request_id=req.pk,
    )
    audit_record(
        actor=actor,
        action="policy_version.rolled_back" if action == ROLLBACK else "policy_version.enforced",
        target=target,
        owner=req.accountable_owner,
        before={"status": before, "enforced": current.number if current is not None else None},
        after={
            "status": PolicyStatus.ENFORCED,
            "enforced": target.number,
            "sha256": target.sha256,
            "retired": current.number if current is not None else None,
            "request": req.pk,
            "approved_by": approver.username,
        },
        reason=req.justification or f"Request #{req.pk} approved.",
    )


def _forget_request(req: AccessRequest, status: str, actor: Actor) -> None:
    """A request that ended without approval: the version no longer waits for it."""
    row = PolicyVersion.objects.select_for_update().filter(pk=_payload_version_id(req)).first()
    if row is None:
        return
    PolicyVersion.objects.filter(pk=row.pk, change_request_id=req.pk).update(change_request_id=None)
    audit_record(
        actor=actor,
        action="policy_version.change_rejected",
        target=row,
        owner=req.accountable_owner,
        before={"request": req.pk},
        after={"request_status": status, "action": (req.payload or {}).get("action")},
        reason=req.outcome_reason,
    )


def policy_change_decided(req: AccessRequest, status: str, actor: Actor) -> None:
    """The handler of ``policy_change`` requests (registered in ``RuntimeConfig.ready``), run by
    approvals in the transaction of the final decision. Approved: the version is enforced (or,
    for a rollback, enforced again) and the enforced one retired — refused with a conflict, which
    undoes the approval, when the version was edited since the request, is no longer in a state
    to be enforced, or no longer validates or passes its tests. Rejected, withdrawn or cancelled:
    the version forgets the request. Audited as ``policy_version.enforced`` /
    ``.rolled_back`` / ``.change_rejected``."""
    with transaction.atomic():
        if status == RequestStatus.APPROVED:
            _apply_approved(req, actor)
        else:
            _forget_request(req, status, actor)
