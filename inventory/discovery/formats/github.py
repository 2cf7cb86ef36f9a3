"""GitHub organisations: the GitHub Apps installed on the organisation
(``GET /orgs/{org}/installations``).

Documents: pages ``{"total_count": n, "installations": [...]}``, bare arrays of installations, or
single installations. An installation (``id`` and ``app_id`` whole numbers, ``app_slug`` and
``permissions`` required) is the organisation's consent for everyone: ``consent_type`` "admin",
``person_key`` "*". The app key is ``str(app_id)``, the name ``app_slug``, and each permission
``{"contents": "read"}`` is a scope ``"contents:read"``. The installation id is the grant id;
``html_url``, ``repository_selection``, ``suspended_at`` and ``target_type`` go to the details
(GitHub has no API to uninstall an app from an organisation: an owner does it at ``html_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inventory.discovery.choices import ConsentType
from inventory.discovery.formats import NAME_MAX, SCOPE_MAX, Fields, walk
from inventory.discovery.records import ConsentRecord

_ADMIN_CONSENT = str(ConsentType.ADMIN)
_LEVEL_MAX = 20


def records(path: Path) -> Iterator[ConsentRecord]:
    """The consents in a file of installation pages (see the module's rules)."""
    for fields in walk(path, list_keys=("installations",), is_page=_is_page):
        yield _installation(fields)


def _is_page(document: dict[str, Any]) -> bool:
    return "total_count" in document


def _installation(fields: Fields) -> ConsentRecord:
    installation_id = fields.integer_key("id")
    app_key = fields.integer_key("app_id")
    scopes = _scopes(fields.nested("permissions"))
    return ConsentRecord(
        record_no=fields.record_no,
        app_key=app_key,
        app_name=fields.key("app_slug", NAME_MAX),
        consent_type=_ADMIN_CONSENT,
        person_key="*",
        scopes=scopes,
        grant_ids=(installation_id,),
        details=fields.details("html_url", "repository_selection", "suspended_at", "target_type"),
    )


def _scopes(permissions: Fields) -> tuple[str, ...]:
    """Each permission and its level (``read``, ``write``, ``admin``) as one scope name."""
    scopes = []
    for permission in permissions.data:
        level = permissions.key(permission, _LEVEL_MAX)
        if len(permission) + 1 + len(level) > SCOPE_MAX:
            raise permissions.error(permission, f"a permission and its level must be at most {SCOPE_MAX} characters")
        scopes.append(f"{permission}:{level}")
    return tuple(scopes)
