"""The Cedar schema the runtime policies are validated and decided against, generated from the
portal's model: the entity types (people, groups, integrations, resource systems, scopes) with
the attributes the inventory holds, the actions a decision can be asked about, and the request
context — including the caller-supplied attributes the settings declare. Policies are checked
against it strictly: an attribute that does not exist is an error, never a rule that silently
never matches."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import cedarpy
from django.conf import settings

# The actions a decision point may ask about: the token endpoint asks ``exchange_token`` for each
# scope it would put in a token; gateways, MCP servers and API proxies ask ``use_scope``.
ACTIONS = ("exchange_token", "use_scope")
CONTEXT_TYPES = ("Bool", "Long", "String")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_ENTITY_TYPES = """\
// People are members of their groups (the portal's roles are groups too).
entity Group {
  name: String,
};
entity Person in [Group] {
  username: String,
  roles: Set<String>,
  active: Bool,
};
entity ResourceSystem {
  code: String,
  name: String,
  environment: String,
};
// A scope is in its resource system; environment is its system's.
entity Scope in [ResourceSystem] {
  code: String,
  sensitivity: String,
  access: String,
  environment: String,
  jit_eligible: Bool,
  active: Bool,
};
// grants: the scopes it holds by an active, unexpired grant whose recertification is not overdue.
entity Integration {
  name: String,
  kind: String,
  status: String,
  risk_tier: String,
  autonomy: String,
  environment: String,
  data_classifications: Set<String>,
  acts_for_users: Bool,
  vendor: String,
  workload_identity: String,
  workload_identity_verified: Bool,
  orphaned: Bool,
  business_owner: Person,
  owners: Set<Person>,
  grants: Set<Scope>,
};
"""

_CONTEXT = """\
// time: the decision's time in the policy time zone (weekday 1 = Monday … 7 = Sunday).
// chain_depth: integrations in the calling chain, this one included (1 = called directly).
type RequestContext = {
  time: {
    epoch: Long,
    hour: Long,
    minute: Long,
    weekday: Long,
    date: String,
  },
  task: String,
  chain_depth: Long,
  delegated_user?: Person,
  caller: {
%s
  },
};
"""

_ACTIONS = """\
action exchange_token appliesTo {
  principal: [Integration],
  resource: [Scope],
  context: RequestContext,
};
action use_scope appliesTo {
  principal: [Integration],
  resource: [Scope],
  context: RequestContext,
};
"""


class SchemaSettingsError(ValueError):
    """The declared caller attributes cannot be put in the schema."""


def caller_attributes() -> dict[str, str]:
    """The caller-supplied context attributes, by name and Cedar type, checked."""
    declared: Mapping[str, str] = settings.RUNTIME_POLICY_CONTEXT_ATTRIBUTES
    if not isinstance(declared, Mapping):
        raise SchemaSettingsError("RUNTIME_POLICY_CONTEXT_ATTRIBUTES must be a JSON object: name → Cedar type.")
    checked: dict[str, str] = {}
    for name, kind in declared.items():
        if not ATTRIBUTE_NAME.match(str(name)) or kind not in CONTEXT_TYPES:
            raise SchemaSettingsError(
                f"RUNTIME_POLICY_CONTEXT_ATTRIBUTES: {name!r} must be a lower-case name typed one of "
                f"{', '.join(CONTEXT_TYPES)}."
            )
        checked[str(name)] = str(kind)
    return checked


def schema_text() -> str:
    """The Cedar schema (human-readable syntax) as the portal's model and settings stand."""
    attributes = caller_attributes()
    # Every caller attribute is optional: a policy reading one must test ``has`` first.
    lines = "\n".join(f"    {name}?: {kind}," for name, kind in sorted(attributes.items()))
    return _ENTITY_TYPES + _CONTEXT % lines + _ACTIONS


@dataclass(frozen=True)
class LoadedSchema:
    text: str
    sha256: str
    handle: cedarpy.Schema


@lru_cache(maxsize=4)
def _parsed(text: str) -> LoadedSchema:
    return LoadedSchema(text, hashlib.sha256(text.encode()).hexdigest(), cedarpy.Schema.from_str(text))


def current_schema() -> LoadedSchema:
    """The schema parsed once per process (per distinct text: a settings change gives a new one)."""
    return _parsed(schema_text())
