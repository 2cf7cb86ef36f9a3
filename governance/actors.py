"""Who performs an action: a person, an integration's service account, or the system acting
for an accountable owner. Every service function takes ``actor=`` (a ``User`` or an ``Actor``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

from governance.models import ActorKind

if TYPE_CHECKING:
    from governance.models import User

SYSTEM_USERNAME = "system"


def system_user() -> User:
    """The account that background tasks act as; it cannot log in (no usable password, inactive)."""
    model = get_user_model()
    user, created = model.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "is_service_account": True, "display_name": "Portal (system)"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@dataclass(frozen=True)
class Actor:
    user: User
    kind: str
    on_behalf_of: User | None = None

    @classmethod
    def coerce(cls, value: Actor | User) -> Actor:
        if isinstance(value, Actor):
            return value
        if value.username == SYSTEM_USERNAME:
            return cls(user=value, kind=ActorKind.SYSTEM)
        kind = ActorKind.INTEGRATION if getattr(value, "is_service_account", False) else ActorKind.HUMAN
        return cls(user=value, kind=kind)

    @classmethod
    def system(cls, *, on_behalf_of: User | None) -> Actor:
        """The portal acting by itself (a schedule, a deadline) for the accountable owner."""
        return cls(user=system_user(), kind=ActorKind.SYSTEM, on_behalf_of=on_behalf_of)

    @property
    def is_system(self) -> bool:
        return self.kind == ActorKind.SYSTEM
