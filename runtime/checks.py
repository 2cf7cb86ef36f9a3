"""System checks for the portal's signing keys (``manage.py check --database default``; migrate
runs them too) and the runtime policy settings. A signing key nobody can decrypt is an error an
operator must see before tokens stop being issued, not a key the portal silently replaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError

from runtime import keys
from runtime.models import KeyState, SigningKey


@register(Tags.security)
def encryption_keys_check(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """runtime.E002: every entry of RUNTIME_KEY_ENCRYPTION_KEYS must be a Fernet key."""
    errors: list[CheckMessage] = []
    for position, value in enumerate(settings.RUNTIME_KEY_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(value)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"Entry {position} of RUNTIME_KEY_ENCRYPTION_KEYS is not a Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    id="runtime.E002",
                )
            )
    return errors


@register(Tags.security, Tags.database)
def signing_keys_readable_check(
    app_configs: Any = None, databases: Sequence[str] | None = None, **_: Any
) -> list[CheckMessage]:
    """runtime.E001: every live signing key decrypts with a configured key. Reads the database,
    so it runs only when asked to (``--database default``, and during migrate)."""
    if not databases or "default" not in databases:
        return []
    try:
        rows = list(SigningKey.objects.exclude(state=KeyState.RETIRED).order_by("id"))
        unreadable = [row for row in rows if not keys.is_decryptable(row)]
    except DatabaseError:
        # Not migrated yet: there are no keys to read.
        return []
    except ValueError:
        # A malformed encryption key: runtime.E002 says so.
        return []
    return [
        Error(
            f"The {row.algorithm} signing key {row.kid} ({row.state}) cannot be decrypted with any configured key; "
            "the portal refuses to sign with it and will not replace it by itself.",
            hint="Put the SECRET_KEY it was encrypted under into SECRET_KEY_FALLBACKS (or its key back into "
            "RUNTIME_KEY_ENCRYPTION_KEYS), then run manage.py rotate_signing_keys --reencrypt.",
            obj=row,
            id="runtime.E001",
        )
        for row in unreadable
    ]


@register(Tags.compatibility)
def policy_settings_check(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """runtime.E003: the runtime policy settings make a schema Cedar accepts, a time zone and a
    replay default in range. Wrong, every decision would be a deny (or the decision API a 503)
    until fixed: this says so before the first request."""
    from runtime.policy.schema import SchemaSettingsError, current_schema

    problems: list[str] = []
    try:
        current_schema()
    except SchemaSettingsError as exc:
        problems.append(str(exc))
    except ValueError as exc:  # Cedar refuses a declared name (a reserved word such as "in")
        problems.append(f"RUNTIME_POLICY_CONTEXT_ATTRIBUTES: {exc}")
    try:
        ZoneInfo(str(settings.RUNTIME_POLICY_TIME_ZONE))
    except (ValueError, ZoneInfoNotFoundError):
        problems.append(f"RUNTIME_POLICY_TIME_ZONE {settings.RUNTIME_POLICY_TIME_ZONE!r} is not a known time zone.")
    if not 1 <= settings.RUNTIME_REPLAY_DEFAULT_LIMIT <= settings.RUNTIME_REPLAY_MAX_LIMIT:
        problems.append(f"RUNTIME_REPLAY_DEFAULT_LIMIT must be from 1 to {settings.RUNTIME_REPLAY_MAX_LIMIT:,}.")
    return [Error(problem, id="runtime.E003") for problem in problems]
