"""Okta: the OAuth scope grants users gave apps (``GET /api/v1/users/{id}/grants?expand=scope``).

Documents: arrays of grants (the API's pages) or single grants, and user objects (``GET
/api/v1/users`` pages or single users: ``id``, ``profile.login``, ``profile.email``), which map
user ids to emails. A grant without ``userId`` belongs to the user object just before it in the
file: a pull writes each user, then that user's grants.

A grant (``id``, ``clientId``, ``scopeId`` and ``status`` required) is one scope one person gave
one app, so several records share (app, person) and the importer merges them. Only ``ACTIVE``
grants are consents: any other is skipped (it still counts as a record; only its ``status`` is
checked). ``person_key`` is the user id (revoking names it), the email is the user's
``profile.email`` (else the login, when it is an email address), the scope is
``_embedded.scope.name`` (else ``scopeId``), the app name ``_links.app.title`` (else
``_links.client.title``, else the client id), and the grant's ``id`` its grant id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from inventory.discovery.choices import ConsentType
from inventory.discovery.formats import GRANT_ID_MAX, PERSON_MAX, SCOPE_MAX, Fields, walk
from inventory.discovery.records import ConsentRecord

ACTIVE = "ACTIVE"
_USER_CONSENT = str(ConsentType.USER)


def records(path: Path) -> Iterator[ConsentRecord]:
    """The consents in a file of Okta users and grants (see the module's rules)."""
    emails: dict[str, str] = {}
    last_user = ""
    for fields in walk(path, list_keys=()):
        if "profile" in fields.data and "clientId" not in fields.data:
            last_user = fields.key("id", PERSON_MAX)
            emails[last_user] = _email(fields.nested("profile"))
            continue
        if fields.key("status", 50) != ACTIVE:
            continue
        yield _grant(fields, emails, last_user)


def _email(profile: Fields) -> str:
    email = profile.optional_key("email", PERSON_MAX)
    login = profile.optional_key("login", PERSON_MAX)
    return email or (login if "@" in login else "")


def _grant(fields: Fields, emails: dict[str, str], last_user: str) -> ConsentRecord:
    grant_id = fields.key("id", GRANT_ID_MAX)
    client_id = fields.key("clientId")
    scope_id = fields.key("scopeId", SCOPE_MAX)
    user_id = fields.optional_key("userId", PERSON_MAX) or last_user
    if not user_id:
        raise fields.error("userId", "is required: no user object comes before the grant")
    embedded = fields.optional_nested("_embedded")
    scope = embedded.optional_nested("scope") if embedded else None
    links = fields.optional_nested("_links")
    return ConsentRecord(
        record_no=fields.record_no,
        app_key=client_id,
        app_name=_link_title(links, "app") or _link_title(links, "client") or client_id,
        consent_type=_USER_CONSENT,
        person_key=user_id,
        person_email=emails.get(user_id, ""),
        scopes=(scope.key("name", SCOPE_MAX) if scope else scope_id,),
        grant_ids=(grant_id,),
    )


def _link_title(links: Fields | None, name: str) -> str:
    link = links.optional_nested(name) if links else None
    return link.text("title") if link else ""
