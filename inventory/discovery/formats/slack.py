"""Slack Enterprise: the apps approved for the organisation (``admin.apps.approved.list``).

Documents: pages ``{"ok": true, "approved_apps": [...], "response_metadata": {"next_cursor"}}``,
single approved apps, or arrays of them. A page with ``"ok": false`` is Slack refusing the
request (a pull that went wrong, or an error answer uploaded): the file is refused, naming the
field ``ok`` and Slack's ``error``.

An approved app (``app`` with ``id`` and ``name``, ``scopes`` an array of ``{name, is_sensitive,
token_type}``, all required but ``is_sensitive`` and ``token_type``) is an admin's approval for
the whole organisation: ``consent_type`` "admin", ``person_key`` "*". The app key is ``app.id``,
the scopes are the scope names (a name granted to the bot and to users counts once); whether
Slack calls each scope sensitive is kept under ``details["sensitive_scopes"]`` (scope name →
true/false, for the scopes Slack says it of). ``is_app_directory_approved`` says whether the app
is verified. Revoking uninstalls the app by its id, so there are no grant ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inventory.discovery.choices import ConsentType
from inventory.discovery.formats import DETAIL_MAX, SCOPE_MAX, Fields, walk
from inventory.discovery.records import ConsentRecord, RecordError

_ADMIN_CONSENT = str(ConsentType.ADMIN)


def records(path: Path) -> Iterator[ConsentRecord]:
    """The consents in a file of Slack pages (see the module's rules)."""
    for fields in walk(path, list_keys=("approved_apps",), is_page=_is_page, check_page=_check_page):
        yield _approved_app(fields)


def _is_page(document: dict[str, Any]) -> bool:
    return "ok" in document


def _check_page(page: dict[str, Any], next_record_no: int) -> None:
    """Refuse a page in which Slack says the request failed."""
    ok = page.get("ok")
    if ok is True or (ok is None and "approved_apps" in page):
        return
    if ok is False:
        error = page.get("error")
        said = (
            error if isinstance(error, str) and error.isprintable() and len(error) <= DETAIL_MAX else "no error given"
        )
        raise RecordError(f"Slack refused the request (ok: false, error: {said})", record_no=next_record_no, field="ok")
    raise RecordError("must be true or false", record_no=next_record_no, field="ok")


def _approved_app(fields: Fields) -> ConsentRecord:
    app = fields.nested("app")
    app_id = app.key("id")
    scopes: dict[str, None] = {}
    sensitive: dict[str, bool] = {}
    for scope in fields.object_list("scopes"):
        name = scope.key("name", SCOPE_MAX)
        scope.text("token_type", 50)
        scopes[name] = None
        is_sensitive = scope.flag("is_sensitive")
        if is_sensitive is not None:
            sensitive[name] = sensitive.get(name, False) or is_sensitive
    return ConsentRecord(
        record_no=fields.record_no,
        app_key=app_id,
        app_name=app.text("name") or app_id,
        publisher_verified=app.flag("is_app_directory_approved"),
        consent_type=_ADMIN_CONSENT,
        person_key="*",
        scopes=tuple(scopes),
        details={
            **app.details("is_internal", "app_homepage_url", "app_directory_url"),
            **fields.details("date_updated"),
            "sensitive_scopes": sensitive,
        },
    )
