"""The one shape every source's data is read into, and the error that names what was wrong.

Each format (``inventory.discovery.formats``) turns a provider's own JSON, as its API returns it,
into ``ConsentRecord`` objects; the importer writes those, whatever the source was."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# Not frozen: a million of them are made per large import, and a frozen instance costs twice as
# much to create.
@dataclass(slots=True)
class ConsentRecord:
    """One consent as a provider shows it.

    ``record_no`` counts the provider's records (tokens, grants, installations, approved apps) in
    the file from 1; ``app_key`` is the provider's id of the app (Google OAuth client id, Entra
    application id, Slack app id, GitHub App id, Okta client id) and ``alt_key`` a second id of
    the same app (Entra: the service principal's object id). ``person_key`` is the person as the
    provider names them (email, username or provider user id), ``"*"`` for an admin consent for
    everyone; ``person_email`` is their email when the data says it. ``scopes`` are the
    provider's scope names; ``grant_ids`` its ids for revoking this consent, if it has any."""

    record_no: int
    app_key: str
    app_name: str
    consent_type: str
    person_key: str
    scopes: tuple[str, ...]
    alt_key: str = ""
    publisher: str = ""
    publisher_verified: bool | None = None
    person_email: str = ""
    grant_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class RecordError(ValueError):
    """A record (or the file around it) the importer refuses: ``record_no`` (0 for the file as a
    whole) and ``field`` (the provider's field name, dotted for nested ones) say where, the
    message what. ``str(exc)`` reads "record 12, field scopes: must be a list of strings"."""

    def __init__(self, message: str, *, record_no: int = 0, field: str = "") -> None:
        self.message = message
        self.record_no = record_no
        self.field = field
        where = []
        if record_no:
            where.append(f"record {record_no}")
        if field:
            where.append(f"field {field}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
