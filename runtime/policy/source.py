"""Cedar policy text → a checked, loaded policy set, or errors at their line and column.

Rules every policy set meets before it is saved:

* it parses, and every policy carries ``@id("…")`` (lower-case letters, digits and dashes, unique
  in the set) and ``@description("…")``: decisions name their reasons by these ids, so reasons
  and diffs read the same across versions;
* it validates strictly against the generated schema (an unknown attribute, entity type or
  action, or a type mismatch is an error).

Cedar reports parse and validation errors without positions, so positions are found here: each
policy's span in the text is known from splitting it at top-level ``;``; a parse error's
position is the shortest prefix of the policy that fails other than by ending early; a
validation error names an identifier (in backquotes), which is looked for inside the policy's
span. When nothing can be located the error points at the policy's first line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cedarpy

from runtime.policy.schema import LoadedSchema, current_schema

POLICY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
MAX_TEXT = 200_000
MAX_POLICIES = 500
_QUOTED = re.compile(r"`([^`]+)`")
_SINGLE_QUOTED = re.compile(r"'([^']+)'")
_END_OF_INPUT = ("unexpected end of input", "unexpected eof", "expected", "end of input")


@dataclass(frozen=True)
class PolicyError:
    line: int
    column: int
    message: str
    policy_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "policy_id": self.policy_id, "message": self.message}

    def __str__(self) -> str:
        where = f" (policy {self.policy_id})" if self.policy_id else ""
        return f"line {self.line}, column {self.column}{where}: {self.message}"


class PolicyTextInvalid(ValueError):
    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


@dataclass(frozen=True)
class Statement:
    start: int
    text: str
    policy_id: str = ""


@dataclass(frozen=True)
class LoadedPolicies:
    """A checked policy set: its text's hash, the policies' ids and descriptions in order, and the
    parsed handle decisions are made with."""

    sha256: str
    ids: tuple[str, ...]
    descriptions: dict[str, str]
    annotations: dict[str, dict[str, str]]
    handle: cedarpy.PolicySet
    est: dict[str, Any] = field(repr=False)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _skip_string(text: str, index: int) -> int:
    """Index just past the string literal starting at ``index`` (a ``"``)."""
    index += 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    return index


def split_statements(text: str) -> list[Statement]:
    """The policies of ``text`` with their offsets: split at ``;`` outside strings, comments and
    brackets. Trailing text without a ``;`` is a statement of its own (it will fail to parse)."""
    statements: list[Statement] = []
    depth, index, start = 0, 0, 0
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _skip_string(text, index)
            continue
        if text.startswith("//", index):
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            statements.append(Statement(start, text[start : index + 1]))
            start = index + 1
        index += 1
    if _code_of(text[start:]).strip():
        statements.append(Statement(start, text[start:]))
    return [statement for statement in statements if _code_of(statement.text).strip()]


def _code_of(text: str) -> str:
    """``text`` without its ``//`` comments (strings kept)."""
    return re.sub(r"//[^\n]*", "", text)


def _first_code_offset(statement: Statement) -> int:
    """Offset (in the whole text) of the statement's first character that is not blank or comment."""
    index = 0
    body = statement.text
    while index < len(body):
        if body[index].isspace():
            index += 1
        elif body.startswith("//", index):
            newline = body.find("\n", index)
            index = len(body) if newline < 0 else newline
        else:
            break
    return statement.start + index


def _parse_error_offset(statement: Statement, message: str) -> int:
    """Where a statement stops parsing: the end of the shortest prefix that fails with the same
    error (a shorter prefix fails only because the input ends early)."""
    body = statement.text
    low, high = 0, len(body)
    while low < high:
        middle = (low + high) // 2
        try:
            cedarpy.policies_to_json_str(body[:middle] + "\n")
            failure = ""
        except ValueError as exc:
            failure = str(exc)
        if failure == message:
            high = middle
        else:
            low = middle + 1
    # The parser may only notice the offending token one token later: find the token the message
    # names, else step back over the last one to its first character.
    named = _QUOTED.findall(message) or _SINGLE_QUOTED.findall(message)
    if named:
        # The token on its own, not as part of a longer operator (``=`` is not the ``=`` of ``==``).
        pattern = re.compile(rf"(?<![=!<>&|]){re.escape(named[0])}(?![=&|])")
        matches = [match.start() for match in pattern.finditer(_code_of_keep_offsets(body)) if match.start() < low]
        if matches:
            # The statement failing only at its end means the token was refused where it first stands.
            return statement.start + (matches[0] if low >= len(body.rstrip()) else matches[-1])
    offset = max(0, low - 1)
    while offset > 0 and not body[offset - 1].isspace() and body[offset - 1] not in "(){}[];,":
        offset -= 1
    return statement.start + offset


def _statement_errors(text: str, statement: Statement) -> tuple[Statement, list[PolicyError]]:
    """Parse one statement alone: its ``@id`` or the errors that stop it."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(statement.text))
    except ValueError as exc:
        message = str(exc)
        line, column = position(text, _parse_error_offset(statement, message))
        return statement, [PolicyError(line, column, f"Cannot parse: {message}")]
    policies = list(est.get("staticPolicies", {}).values()) + list(est.get("templates", {}).values())
    line, column = position(text, _first_code_offset(statement))
    if est.get("templates"):
        return statement, [PolicyError(line, column, "Templates are not supported here: write static policies.")]
    annotations = policies[0].get("annotations", {}) if policies else {}
    policy_id = str(annotations.get("id") or "")
    errors: list[PolicyError] = []
    if not POLICY_ID.match(policy_id):
        errors.append(
            PolicyError(line, column, 'Every policy needs @id("…"): lower-case letters, digits and dashes.', policy_id)
        )
    if not str(annotations.get("description") or "").strip():
        errors.append(PolicyError(line, column, 'Every policy needs @description("…") saying what it does.', policy_id))
    return Statement(statement.start, statement.text, policy_id), errors


def _locate(text: str, statement: Statement, message: str) -> tuple[int, int]:
    """The position of the identifier a validation message names inside the statement."""
    body = statement.text
    for name in _QUOTED.findall(message):
        if name == statement.policy_id or name.startswith("policy"):
            continue
        for pattern in (rf"\.{re.escape(name)}\b", rf"\bhas\s+{re.escape(name)}\b", rf"\b{re.escape(name)}\b"):
            found = re.search(pattern, _code_of_keep_offsets(body))
            if found:
                start = found.start() + (1 if pattern.startswith(r"\.") else 0)
                return position(text, statement.start + start)
    return position(text, _first_code_offset(statement))


def _code_of_keep_offsets(body: str) -> str:
    """``body`` with comments blanked out (same length, so offsets still hold)."""
    return re.sub(r"//[^\n]*", lambda match: " " * len(match.group()), body)


def _validation_errors(text: str, statements: list[Statement], schema: LoadedSchema) -> list[PolicyError]:
    """Strict validation of the whole text; Cedar names the policies by position (``policy<n>``)."""
    result = cedarpy.validate_policies(text, schema.handle)
    if result.validation_passed:
        return []
    errors: list[PolicyError] = []
    for error in result.errors:
        index = error.policy_id.removeprefix("policy")
        statement = statements[int(index)] if index.isdigit() and int(index) < len(statements) else None
        if statement is None:
            errors.append(PolicyError(1, 1, error.error, error.policy_id))
            continue
        message = error.error.replace(f"`{error.policy_id}`", f"`{statement.policy_id}`")
        line, column = _locate(text, statement, message)
        errors.append(PolicyError(line, column, message, statement.policy_id))
    return sorted(errors, key=lambda error: (error.line, error.column))


def _combined_est(statements: list[Statement]) -> dict[str, Any]:
    """One EST policy set whose policies are keyed by their ``@id`` (so reasons are the ids)."""
    policies: dict[str, Any] = {}
    for statement in statements:
        est = json.loads(cedarpy.policies_to_json_str(statement.text))
        policies[statement.policy_id] = next(iter(est["staticPolicies"].values()))
    return {"staticPolicies": policies, "templates": {}, "templateLinks": []}


def check(text: str, schema: LoadedSchema | None = None) -> tuple[list[Statement], dict[str, Any]]:
    """Parse and validate ``text``; raise ``PolicyTextInvalid`` with every error found."""
    schema = schema or current_schema()
    if len(text) > MAX_TEXT:
        raise PolicyTextInvalid([PolicyError(1, 1, f"A policy set is at most {MAX_TEXT} characters.")])
    raw = split_statements(text)
    if not raw:
        raise PolicyTextInvalid([PolicyError(1, 1, "Write at least one policy.")])
    if len(raw) > MAX_POLICIES:
        raise PolicyTextInvalid([PolicyError(1, 1, f"A policy set holds at most {MAX_POLICIES} policies.")])
    statements: list[Statement] = []
    errors: list[PolicyError] = []
    seen: dict[str, int] = {}
    for statement in raw:
        parsed, found = _statement_errors(text, statement)
        statements.append(parsed)
        errors.extend(found)
        if parsed.policy_id and parsed.policy_id in seen and not found:
            line, column = position(text, _first_code_offset(parsed))
            errors.append(
                PolicyError(
                    line, column, f"@id {parsed.policy_id} is used twice (first at line {seen[parsed.policy_id]})."
                )
            )
        seen.setdefault(parsed.policy_id, position(text, _first_code_offset(parsed))[0])
    if errors:
        raise PolicyTextInvalid(sorted(errors, key=lambda error: (error.line, error.column)))
    errors = _validation_errors(text, statements, schema)
    if errors:
        raise PolicyTextInvalid(errors)
    return statements, _combined_est(statements)


def errors_of(text: str, schema: LoadedSchema | None = None) -> list[PolicyError]:
    """The errors of ``text`` (empty when it is a valid policy set)."""
    try:
        check(text, schema)
    except PolicyTextInvalid as invalid:
        return invalid.errors
    return []


@lru_cache(maxsize=32)
def _loaded(text: str, schema_sha256: str) -> LoadedPolicies:
    statements, est = check(text)
    annotations = {
        policy_id: {str(key): str(value) for key, value in policy.get("annotations", {}).items()}
        for policy_id, policy in est["staticPolicies"].items()
    }
    return LoadedPolicies(
        sha256=text_sha256(text),
        ids=tuple(statement.policy_id for statement in statements),
        descriptions={policy_id: values.get("description", "") for policy_id, values in annotations.items()},
        annotations=annotations,
        handle=cedarpy.PolicySet.from_json_str(json.dumps(est)),
        est=est,
    )


def load(text: str) -> LoadedPolicies:
    """The checked, parsed policy set of ``text``: once per process per (text, schema)."""
    return _loaded(text, current_schema().sha256)
