"""Microsoft Entra ID: delegated permission grants (Graph ``oauth2PermissionGrants``) joined to
the client apps' service principals and to the users who consented.

Documents, in any order and mix: pages ``{"@odata.context": ..., "value": [...]}`` of grants,
service principals or users, single objects (``GET /servicePrincipals/{id}``,
``GET /users/{id}``) and arrays. What an item is comes from its page's ``@odata.context``
(``#oauth2PermissionGrants``, ``#servicePrincipals``, ``#users``), else its own ``@odata.type`` or
``@odata.context``, else its fields (``clientId``: a grant; ``appId``: a service principal;
``userPrincipalName`` or ``mail``: a user).

The file is read twice, so that the parts may come in any order: the first pass checks every
record and keeps the service principals and users; the second turns each grant into a consent.
A grant (``id``, ``clientId``, ``consentType``, ``principalId``, ``scope``, all required but
``principalId`` for an admin consent) becomes:
- ``app_key``: the service principal's ``appId`` (the application id, the same in every tenant)
  when the service principal is in the file, else the grant's ``clientId``; ``alt_key``: the
  service principal's object id (``clientId``), so that either id matches an integration;
- ``consent_type`` "admin" and ``person_key`` "*" for ``AllPrincipals``, else "user" and the
  ``principalId`` (the email: the user's ``mail``, else ``userPrincipalName``, when the user is in
  the file);
- ``scopes``: the space-separated ``scope``; ``grant_ids``: the grant's ``id`` (revoking deletes it);
- name, publisher (verified publisher's name, else ``publisherName``) and verification from the
  service principal (the client id as the name when it is not in the file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory.discovery.choices import ConsentType
from inventory.discovery.formats import GRANT_ID_MAX, PERSON_MAX, Fields, walk
from inventory.discovery.records import ConsentRecord

GRANT, SERVICE_PRINCIPAL, USER = "grant", "service principal", "user"
_CONTEXT = re.compile(r"#(\w+)")
_CONTEXT_KINDS = {"oauth2PermissionGrants": GRANT, "servicePrincipals": SERVICE_PRINCIPAL, "users": USER}
_TYPE_KINDS = {
    "#microsoft.graph.oAuth2PermissionGrant": GRANT,
    "#microsoft.graph.servicePrincipal": SERVICE_PRINCIPAL,
    "#microsoft.graph.user": USER,
}
_CONSENT_TYPES = {"AllPrincipals": str(ConsentType.ADMIN), "Principal": str(ConsentType.USER)}


@dataclass(frozen=True)
class _App:
    """What a service principal says about the client app."""

    app_id: str
    name: str
    publisher: str
    verified: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Directory:
    apps: dict[str, _App] = field(default_factory=dict)  # by service principal object id
    emails: dict[str, str] = field(default_factory=dict)  # by user object id


def records(path: Path) -> Iterator[ConsentRecord]:
    """The consents in a file of Graph pages (see the module's rules)."""
    directory, nothing_known = _Directory(), _Directory()
    for fields in _walk(path):
        kind = _kind(fields)
        if kind == SERVICE_PRINCIPAL:
            object_id = fields.key("id")
            directory.apps[object_id] = _service_principal(fields)
        elif kind == USER:
            user_id = fields.key("id", PERSON_MAX)
            directory.emails[user_id] = fields.optional_key("mail", PERSON_MAX) or fields.optional_key(
                "userPrincipalName", PERSON_MAX
            )
        else:
            _grant(fields, nothing_known)  # checked now, so that the first fault in the file is named
    for fields in _walk(path):
        if _kind(fields) == GRANT:
            yield _grant(fields, directory)


def _walk(path: Path) -> Iterator[Fields]:
    return walk(path, list_keys=("value",))


def _kind(fields: Fields) -> str:
    """Whether the record is a grant, a service principal or a user (see the module's rules)."""
    data = fields.data
    for context in ((fields.page or {}).get("@odata.context"), data.get("@odata.context")):
        match = _CONTEXT.search(context) if isinstance(context, str) else None
        if match and match[1] in _CONTEXT_KINDS:
            return _CONTEXT_KINDS[match[1]]
    odata_type = data.get("@odata.type")
    if isinstance(odata_type, str) and odata_type in _TYPE_KINDS:
        return _TYPE_KINDS[odata_type]
    if "clientId" in data or "consentType" in data:
        return GRANT
    if "appId" in data:
        return SERVICE_PRINCIPAL
    if "userPrincipalName" in data or "mail" in data:
        return USER
    raise fields.error(
        "clientId", "is required: the record is not a permission grant (clientId), service principal (appId) or user"
    )


def _service_principal(fields: Fields) -> _App:
    app_id = fields.key("appId")
    verified = fields.optional_nested("verifiedPublisher")
    verified_name = verified.text("displayName") if verified else ""
    verified_id = verified.optional_key("verifiedPublisherId") if verified else ""
    return _App(
        app_id=app_id,
        name=fields.text("displayName") or app_id,
        publisher=verified_name or fields.text("publisherName"),
        verified=bool(verified_id),
        details=fields.details("appOwnerOrganizationId", "servicePrincipalType"),
    )


def _grant(fields: Fields, directory: _Directory) -> ConsentRecord:
    grant_id = fields.key("id", GRANT_ID_MAX)
    client_id = fields.key("clientId")
    consent_type = fields.key("consentType", 50)
    if consent_type not in _CONSENT_TYPES:
        raise fields.error("consentType", "must be AllPrincipals or Principal")
    scopes = fields.word_list("scope")
    person_key, email = "*", ""
    if consent_type == "Principal":
        person_key = fields.key("principalId", PERSON_MAX)
        email = directory.emails.get(person_key, "")
    app = directory.apps.get(client_id)
    return ConsentRecord(
        record_no=fields.record_no,
        app_key=app.app_id if app else client_id,
        alt_key=client_id,
        app_name=app.name if app else client_id,
        publisher=app.publisher if app else "",
        publisher_verified=app.verified if app else None,
        consent_type=_CONSENT_TYPES[consent_type],
        person_key=person_key,
        person_email=email,
        scopes=scopes,
        grant_ids=(grant_id,),
        details=dict(app.details) if app else {},
    )
