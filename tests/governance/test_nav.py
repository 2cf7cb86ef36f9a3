"""The header's navigation, as the layout receives it: the set-up and oversight pages grouped in
menus, a group with one entry for a role shown as a plain link, and exactly one current entry —
the one whose address is the longest prefix of the page's path."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from governance import portal
from governance.context_processors import portal as portal_context

pytestmark = pytest.mark.django_db


def _nav(user: Any, path: str) -> list[dict[str, Any]]:
    request = RequestFactory().get(path)
    request.user = user
    return portal_context(request)["portal_nav"]


def _links(nav: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [link for item in nav for link in item.get("links", [item])]


def test_iam_admin_sees_daily_pages_in_the_bar_and_the_rest_in_two_menus(iam_admin):
    nav = _nav(iam_admin, "/")
    assert [item["label"] for item in nav] == [
        "Home",
        "Inventory",
        "Queue",
        "Requests",
        "Campaigns",
        portal.ADMINISTRATION,
        portal.OVERSIGHT,
    ]
    menus = {item["label"]: [link["label"] for link in item["links"]] for item in nav if "links" in item}
    assert "Workflows" in menus[portal.ADMINISTRATION] and "Admin site" in menus[portal.ADMINISTRATION]
    # The dashboard opens the oversight menu; what it summarises follows.
    assert menus[portal.OVERSIGHT][0] == "Dashboard"
    assert {"Runtime activity", "Audit trail", "Controls", "Frameworks"} <= set(menus[portal.OVERSIGHT])


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/", "Home"),
        ("/inventory/", "Inventory"),
        ("/inventory/catalog/", "Scope catalog"),
        ("/inventory/issuers/", "Workload issuers"),
        ("/inventory/7/", "Inventory"),
        ("/approvals/workflows/12/steps/3/", "Workflows"),
    ],
)
def test_exactly_one_entry_is_current_the_longest_matching_prefix(iam_admin, path, current):
    nav = _nav(iam_admin, path)
    assert [link["label"] for link in _links(nav) if link["active"]] == [current]
    menus_current = [item["label"] for item in nav if "links" in item and item["active"]]
    assert menus_current == (
        [portal.ADMINISTRATION] if current in ("Scope catalog", "Workload issuers", "Workflows") else []
    )


def test_a_menu_with_one_entry_for_the_role_is_a_plain_link(owner):
    nav = _nav(owner, "/")
    assert all("links" not in item for item in nav)
    assert "Administration" not in [item["label"] for item in nav]


def test_an_unknown_group_is_refused_at_registration():
    with pytest.raises(ValueError, match="Unknown navigation group"):
        portal.NavEntry(label="Somewhere", url_name="home", group="Elsewhere")
