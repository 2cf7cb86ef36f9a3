from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify

from governance import portal as portal_registry
from governance import roles


def _nav_links(request: HttpRequest, user: Any) -> list[dict[str, Any]]:
    """The entries ``user`` may open, with their counts; exactly one is current: the one whose
    address is the longest prefix of the page's path (the inventory's catalog lives under the
    inventory, and only the catalog is current there)."""
    links: list[dict[str, Any]] = []
    for entry in portal_registry.nav_entries():
        if not entry.visible(user):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        count = entry.count(request) if entry.count else None
        links.append({"label": entry.label, "url": url, "count": count, "group": entry.group, "active": False})
    matching = [
        link
        for link in links
        if request.path == link["url"] or (link["url"] != "/" and request.path.startswith(link["url"]))
    ]
    if matching:
        max(matching, key=lambda link: len(link["url"]))["active"] = True
    return links


def _nav_bar(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The header's items in order: plain links, and one menu per group where its first entry
    falls. A group with a single entry for this user is shown as a plain link."""
    items: list[dict[str, Any]] = []
    menus: dict[str, dict[str, Any]] = {}
    for link in links:
        if not link["group"]:
            items.append(link)
            continue
        menu = menus.get(link["group"])
        if menu is None:
            menu = {"label": link["group"], "id": "nav-" + slugify(link["group"]), "links": [], "count": 0}
            menus[link["group"]] = menu
            items.append(menu)
        menu["links"].append(link)
    for position, item in enumerate(items):
        if "links" not in item:
            continue
        if len(item["links"]) == 1:
            items[position] = item["links"][0]
            continue
        item["active"] = any(link["active"] for link in item["links"])
        item["count"] = sum(link["count"] or 0 for link in item["links"])
    for item in items:
        for shown in (item, *item.get("links", ())):
            if shown["count"]:
                shown["badge"], shown["badge_label"] = portal_registry.badge(shown["count"])
    return items


def portal(request: HttpRequest) -> dict[str, Any]:
    """Navigation (with counts, grouped in menus) and role flags for the base layout."""
    user = getattr(request, "user", None)
    nav: list[dict[str, Any]] = []
    if user is not None and user.is_authenticated:
        nav = _nav_bar(_nav_links(request, user))
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
