"""Google Workspace: the Directory API's OAuth tokens (``tokens.list``, one call per user).

Documents, in any mix and number:
- a tokens page ``{"kind": "admin#directory#tokenList", "items": [token, ...]}`` (Google leaves
  ``items`` out when the user has no tokens), a single token, or an array of tokens;
- a directory users page ``{"kind": "admin#directory#users", "users": [{"id", "primaryEmail"}]}``
  or a single user (``"kind": "admin#directory#user"``): it maps the ``userKey`` of the tokens
  after it in the file to an email (a pull writes the users before their tokens).

A token (``kind`` ``admin#directory#token``) is one person's consent: ``clientId`` (required) is
the app key, ``userKey`` (required; the user's id) the person key, ``scopes`` (required array of
strings) the scopes, ``displayText`` the app name (the client id when it is missing), and the
booleans ``anonymous`` / ``nativeApp`` go to the details. The person's email is the one the users read
earlier give for that id, else the user key itself when it is an email address. Revoking names the
user and the client, so a token has no grant ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inventory.discovery.choices import ConsentType
from inventory.discovery.formats import PERSON_MAX, Fields, walk
from inventory.discovery.records import ConsentRecord

TOKEN_LIST = "admin#directory#tokenList"
USERS = "admin#directory#users"
USER = "admin#directory#user"
_USER_CONSENT = str(ConsentType.USER)


def records(path: Path) -> Iterator[ConsentRecord]:
    """The consents in a file of Google tokens pages (see the module's rules)."""
    emails: dict[str, str] = {}
    for fields in walk(path, list_keys=("items", "users"), is_page=_is_page):
        if _is_user(fields):
            emails[fields.key("id", PERSON_MAX)] = fields.key("primaryEmail", PERSON_MAX)
        else:
            yield _token(fields, emails)


def _is_page(document: dict[str, Any]) -> bool:
    return document.get("kind") in (TOKEN_LIST, USERS)


def _is_user(fields: Fields) -> bool:
    """A user of a users page, or a standalone user object; everything else is read as a token."""
    if fields.list_key:
        return fields.list_key == "users"
    data = fields.data
    return data.get("kind") == USER or ("primaryEmail" in data and "clientId" not in data)


def _token(fields: Fields, emails: dict[str, str]) -> ConsentRecord:
    client_id = fields.key("clientId")
    user_key = fields.key("userKey", PERSON_MAX)
    scopes = fields.key_list("scopes")
    name = fields.text("displayText") or client_id
    email = emails.get(user_key) or (user_key if "@" in user_key else "")
    return ConsentRecord(
        record_no=fields.record_no,
        app_key=client_id,
        app_name=name,
        consent_type=_USER_CONSENT,
        person_key=user_key,
        person_email=email,
        scopes=scopes,
        details=_details(fields),
    )


def _details(fields: Fields) -> dict[str, Any]:
    """``anonymous`` (the app is not registered with Google) and ``nativeApp`` (an installed
    desktop or mobile app), the booleans Google gives, when it gives them."""
    anonymous, native_app = fields.flag("anonymous"), fields.flag("nativeApp")
    details = {}
    if anonymous is not None:
        details["anonymous"] = anonymous
    if native_app is not None:
        details["nativeApp"] = native_app
    return details
