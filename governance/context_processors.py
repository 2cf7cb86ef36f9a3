from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from governance import portal as portal_registry
from governance import roles


def portal(request: HttpRequest) -> dict[str, Any]:
    """Navigation (with counts) and role flags for the base layout."""
    user = getattr(request, "user", None)
    nav: list[dict[str, Any]] = []
    if user is not None and user.is_authenticated:
        for entry in portal_registry.nav_entries():
            if not entry.visible(user):
                continue
            try:
                url = reverse(entry.url_name)
            except NoReverseMatch:
                continue
            nav.append(
                {
                    "label": entry.label,
                    "url": url,
                    "count": entry.count(request) if entry.count else None,
                    "active": url != "/" and request.path.startswith(url),
                }
            )
    authenticated = user is not None and user.is_authenticated
    return {
        "portal_nav": nav,
        "demo_mode": settings.DEMO_MODE,
        "oidc_enabled": settings.OIDC_ENABLED,
        "user_role": roles.primary_role(user) if authenticated else "",
        "user_role_label": roles.Role(roles.primary_role(user)).label
        if authenticated and roles.primary_role(user)
        else "",
        "user_read_only": roles.is_read_only(user) if authenticated else False,
    }
