"""The control catalog's pages: IAM admins, reviewers and auditors read the controls with their
live evidence and the frameworks item by item (IAM admins also get the links to change
thresholds, frameworks and mappings); anyone else gets a 404, an anonymous visitor the sign-in
page. Gaps come first; every item of every built-in framework is listed with its source; each
page measures each control once and runs a fixed number of queries however much data there is."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance import portal
from governance.context_processors import portal as portal_context
from governance.controls import catalog, registry, services
from governance.controls.registry import Control, Figure, Threshold
from governance.models import User

pytestmark = pytest.mark.django_db

# The test catalog: four controls the mapping file maps, one per status, each measured with one
# query (how many users are active) so that query counts can be compared as data grows.
NOT_MET, PARTLY, MET, NOT_APPLICABLE = "kill-switch", "time-bound-grants", "named-owners", "audit-trail"
VALUES: dict[str, float | None] = {NOT_MET: 50.0, PARTLY: 95.0, MET: 99.5, NOT_APPLICABLE: None}
RECORDS_URL = "/inventory/?status=active"


class Catalog:
    """The registered controls for one test, counting how often each one's evidence runs."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.values = dict(VALUES)

    def evidence(self, control_id: str) -> Callable[[], list[Figure]]:
        def measure() -> list[Figure]:
            self.runs[control_id] += 1
            active = User.objects.filter(is_active=True).count()
            value = self.values[control_id]
            return [
                Figure(
                    key=f"{control_id}.share",
                    label=f"Share for {control_id}",
                    value=value,
                    threshold=Threshold(met=98, partly=90),
                    detail=f"Measured over {active} active people." if value is not None else "Nothing to measure yet.",
                    records_url=RECORDS_URL if value is not None else "",
                ),
                Figure(
                    key=f"{control_id}.left",
                    label=f"Left over for {control_id}",
                    value=0 if value is not None else None,
                    threshold=Threshold(met=0),
                    unit="count",
                    better=registry.LOWER,
                ),
            ]

        return measure

    def controls(self) -> dict[str, Control]:
        return {
            control_id: Control(
                id=control_id,
                title=f"Control {control_id}",
                description=f"What {control_id} does.",
                app="inventory" if control_id != NOT_APPLICABLE else "governance",
                evidence=self.evidence(control_id),
                order=index,
            )
            for index, control_id in enumerate((MET, PARTLY, NOT_MET, NOT_APPLICABLE))
        }


@pytest.fixture
def test_catalog(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """Only the test controls are registered for the test (the registry is put back after)."""
    made = Catalog()
    monkeypatch.setattr(registry, "_CONTROLS", made.controls())
    return made


@pytest.fixture
def superuser(make_user: Callable[..., User]) -> User:
    return make_user("root", is_superuser=True, is_staff=True)


READERS = ["iam_admin", "reviewer", "auditor", "superuser"]


def page_urls() -> list[str]:
    return [
        reverse("controls-list"),
        reverse("control-detail", args=[MET]),
        reverse("framework-list"),
        reverse("framework-detail", args=["owasp-agentic-2026"]),
    ]


def grow(admin: User, tag: str, people: int = 25) -> None:
    """More of everything the pages read: people, the organisation's framework with items,
    mappings to it and to built-in items, and thresholds."""
    User.objects.bulk_create([User(username=f"{tag}-person-{n}", email=f"{tag}{n}@example.com") for n in range(people)])
    framework = services.framework_create(
        actor=admin,
        slug=f"internal-{tag}",
        name=f"Internal standard {tag}",
        source_url="https://intranet.example.com/std",
    )
    for n in range(5):
        services.framework_item_add(actor=admin, framework=framework, code=f"SEC-{n}", title=f"Rule {n}")
        services.mapping_add(actor=admin, control_id=MET, framework_slug=framework.slug, item_code=f"SEC-{n}")
    taken = catalog.mappings().get(NOT_MET, set())
    code = next(code for code in ("ASI01", "ASI05", "ASI06", "ASI09") if ("owasp-agentic-2026", code) not in taken)
    services.mapping_add(actor=admin, control_id=NOT_MET, framework_slug="owasp-agentic-2026", item_code=code)
    services.threshold_set(actor=admin, figure_key=f"{PARTLY}.share", met=94, partly=80, reason=f"Agreed {tag}")


# --- Who may read ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_iam_admins_reviewers_auditors_and_superusers_read_every_catalog_page(
    role: str, request: pytest.FixtureRequest, web_as: Any, test_catalog: Catalog
) -> None:
    client = web_as(request.getfixturevalue(role))
    for url in page_urls():
        assert client.get(url).status_code == 200, url


def test_a_business_user_gets_404_on_every_catalog_page(outsider: User, web_as: Any, test_catalog: Catalog) -> None:
    client = web_as(outsider)
    for url in page_urls():
        assert client.get(url).status_code == 404, url
    assert sum(test_catalog.runs.values()) == 0, "nothing is measured for someone who may not see it"


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Any, test_catalog: Catalog) -> None:
    for url in page_urls():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_pages_answer_get_only(reviewer: User, web_as: Any, test_catalog: Catalog) -> None:
    assert web_as(reviewer).post(reverse("controls-list")).status_code == 405


def test_an_unknown_control_or_framework_is_a_404(reviewer: User, web_as: Any, test_catalog: Catalog) -> None:
    client = web_as(reviewer)
    assert client.get(reverse("control-detail", args=["no-such-control"])).status_code == 404
    assert client.get(reverse("framework-detail", args=["no-such-framework"])).status_code == 404


def test_the_catalog_pages_lead_to_each_other_the_dashboard_and_the_evidence_pack(
    auditor: User, web_as: Any, test_catalog: Catalog
) -> None:
    client = web_as(auditor)
    for url in (reverse("controls-list"), reverse("framework-list")):
        html = client.get(url).content.decode()
        nav = html.split('<nav class="subnav"')[1].split("</nav>")[0]
        for target in ("controls-list", "framework-list", "dashboard", "evidence-pack"):
            assert f'href="{reverse(target)}"' in nav, (url, target)
        assert nav.count('aria-current="page"') == 1


def test_the_oversight_menu_offers_controls_and_frameworks_to_readers_only(
    reviewer: User, auditor: User, outsider: User, rf: Any, test_catalog: Catalog
) -> None:
    def labels(user: User) -> list[str]:
        request = rf.get("/")
        request.user = user
        nav = portal_context(request)["portal_nav"]
        return [link["label"] for item in nav for link in item.get("links", [item])]

    for reader in (reviewer, auditor):
        assert {"Controls", "Frameworks"} <= set(labels(reader))
    assert not {"Controls", "Frameworks"} & set(labels(outsider))
    entries = {entry.url_name: entry for entry in portal.nav_entries()}
    assert entries["controls-list"].group == entries["framework-list"].group == portal.OVERSIGHT


# --- The controls ---------------------------------------------------------------------------------


def _row_ids(html: str, prefix: str) -> list[str]:
    return re.findall(rf'<tr id="{prefix}([^"]+)"', html)


def test_the_catalog_lists_gaps_first_with_each_figure_its_target_status_and_records(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("controls-list")).content.decode()
    assert _row_ids(html, "control-") == [NOT_MET, PARTLY, MET, NOT_APPLICABLE]
    assert "4 controls: 1 not met, 1 partly met, 1 met, 1 not applicable." in html
    assert "50 %" in html and "99.5 %" in html and "at least 98 % (partly met from 90 %)" in html
    assert "at most 0" in html and f'href="{RECORDS_URL}"' in html
    assert 'control-status control-status-not_met">Not met<' in html
    assert "Nothing to measure yet." in html


def test_the_catalog_names_the_framework_items_each_control_answers(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("controls-list")).content.decode()
    row = html.split(f'<tr id="control-{PARTLY}"')[1].split("</tr>")[0]
    agentic = reverse("framework-detail", args=["owasp-agentic-2026"])
    assert f'href="{agentic}#{catalog.item_anchor("ASI03")}"' in row and "Identity and Privilege Abuse" in row
    assert "LLM06:2025" in row and "OWASP Non-Human Identities" in row


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("gaps", [NOT_MET, PARTLY]),
        ("met", [MET]),
        ("not_applicable", [NOT_APPLICABLE]),
        ("", [NOT_MET, PARTLY, MET, NOT_APPLICABLE]),
    ],
)
def test_the_catalog_filters_by_status(
    status: str, shown: list[str], reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("controls-list"), {"status": status}).content.decode()
    assert _row_ids(html, "control-") == shown


def test_the_catalog_filters_by_app_and_ignores_an_unknown_filter_value(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    client = web_as(reviewer)
    html = client.get(reverse("controls-list"), {"app": "governance"}).content.decode()
    assert _row_ids(html, "control-") == [NOT_APPLICABLE]
    response = client.get(reverse("controls-list"), {"status": "bogus"})
    assert response.status_code == 200 and len(_row_ids(response.content.decode(), "control-")) == 4
    assert 'aria-invalid="true"' in response.content.decode()


def test_a_control_page_shows_the_organisation_threshold_who_set_it_and_why(
    iam_admin: User, reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    services.threshold_set(actor=iam_admin, figure_key=f"{PARTLY}.share", met=94, partly=80, reason="Agreed with audit")
    html = web_as(reviewer).get(reverse("control-detail", args=[PARTLY])).content.decode()
    row = html.split(f'id="figure-{PARTLY}share"')[1].split("</tr>")[0]
    assert "at least 94 % (partly met from 80 %)" in row
    assert f"Set by the organisation: {iam_admin.label}" in row and "Why: Agreed with audit" in row
    assert 'control-status-met">Met<' in row, "95 % meets the organisation's 94 %"
    other = html.split(f'id="figure-{PARTLY}left"')[1].split("</tr>")[0]
    assert ">Default<" in other


def test_a_control_page_lists_its_framework_items_with_their_source_and_why(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("control-detail", args=[PARTLY])).content.decode()
    info = catalog.framework("nist-csf-2.0")
    assert info is not None
    assert info.source_url in html and "PR.AA-05" in html
    notes = [note for note in catalog.mapping_notes() if note.control_id == PARTLY and note.why]
    assert notes and all(note.why in html for note in notes[:3])
    assert "The portal's mapping file" in html


def test_iam_admins_get_the_links_to_change_thresholds_frameworks_and_mappings(
    iam_admin: User, auditor: User, web_as: Any, test_catalog: Catalog
) -> None:
    threshold = reverse("threshold-edit", args=[MET])
    add_mapping = reverse("mapping-add")
    pages = [
        reverse("control-detail", args=[MET]),
        reverse("framework-list"),
        reverse("framework-detail", args=["nist-csf-2.0"]),
    ]
    admin_html = "".join(web_as(iam_admin).get(url).content.decode() for url in pages)
    assert threshold in admin_html and add_mapping in admin_html and reverse("framework-create") in admin_html
    auditor_html = "".join(web_as(auditor).get(url).content.decode() for url in pages)
    assert threshold not in auditor_html and add_mapping not in auditor_html
    assert reverse("framework-create") not in auditor_html


# --- The frameworks -------------------------------------------------------------------------------


def test_the_framework_list_shows_every_framework_with_its_edition_source_and_coverage(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("framework-list")).content.decode()
    assert _row_ids(html, "framework-") == [info.slug for info in catalog.frameworks()]
    for info in catalog.builtin_frameworks():
        assert info.source_url in html and info.name in html
    # ASI03 is answered by time-bound grants (partly met) among the test controls: a partly-met item.
    row = html.split('<tr id="framework-owasp-agentic-2026"')[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[1] == "10" and sum(int(cell) for cell in cells[2:7]) == 10


def test_every_item_of_every_built_in_framework_is_listed_with_its_source(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    client = web_as(reviewer)
    for info in catalog.builtin_frameworks():
        html = client.get(reverse("framework-detail", args=[info.slug])).content.decode()
        listed = _row_ids(html, "")
        assert sorted(listed) == sorted(catalog.item_anchor(item.code) for item in info.items), info.slug
        assert html.count(f'href="{info.source_url}"') >= len(info.items) + 1
        for item in info.items:
            assert item.code in html and item.title.replace("'", "&#x27;") in html, (info.slug, item.code)


def test_a_framework_page_lists_gaps_first_then_what_cannot_be_measured_then_what_is_met(
    reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("framework-detail", args=["owasp-nhi-2025"])).content.decode()
    statuses = re.findall(r'<tr id="item-[^"]+">.*?control-status-(\w+)"', html, flags=re.S)
    rank = {"not_met": 0, "no_control": 1, "partly": 2, "not_applicable": 3, "met": 4}
    assert statuses == sorted(statuses, key=rank.__getitem__) and len(statuses) == 10
    # NHI1 is answered by named owners (met) and the kill switch (not met): partly met.
    nhi1 = html.split(f'<tr id="{catalog.item_anchor("NHI1:2025")}"')[1].split("</tr>")[0]
    assert 'control-status-partly">Partly met<' in nhi1
    assert f"Control {MET}" in nhi1 and f"Control {NOT_MET}" in nhi1 and "50 %" in nhi1


@pytest.mark.parametrize(
    ("status", "expected"),
    [("gaps", {"not_met", "partly", "no_control"}), ("no_control", {"no_control"}), ("met", {"met"})],
)
def test_a_framework_page_filters_its_items_by_status(
    status: str, expected: set[str], reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    html = web_as(reviewer).get(reverse("framework-detail", args=["nist-csf-2.0"]), {"status": status}).content.decode()
    found = set(re.findall(r'<tr id="item-[^"]+">.*?control-status-(\w+)"', html, flags=re.S))
    assert found and found <= expected


def test_the_organisation_framework_has_its_page_with_its_items_and_mappings(
    iam_admin: User, reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    grow(iam_admin, "a", people=1)
    client = web_as(reviewer)
    listing = client.get(reverse("framework-list")).content.decode()
    assert "Internal standard a" in listing and "the organisation's" in listing
    html = client.get(reverse("framework-detail", args=["internal-a"])).content.decode()
    assert len(_row_ids(html, "item-")) == 5 and "https://intranet.example.com/std" in html
    assert html.count(f"Control {MET}") == 5
    admin_html = web_as(iam_admin).get(reverse("framework-detail", args=["internal-a"])).content.decode()
    assert reverse("framework-item-add", args=["internal-a"]) in admin_html
    builtin_html = web_as(iam_admin).get(reverse("framework-detail", args=["csa-maestro"])).content.decode()
    assert "/items/new/" not in builtin_html, "built-in frameworks take no new items"


# --- Cost: each control measured once, a fixed number of queries -------------------------------


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_each_page_measures_each_control_it_shows_once(reviewer: User, web_as: Any, test_catalog: Catalog) -> None:
    client = web_as(reviewer)
    for url in (reverse("controls-list"), reverse("framework-list")):
        test_catalog.runs.clear()
        client.get(url)
        assert set(test_catalog.runs.values()) == {1} and len(test_catalog.runs) == 4, url
    test_catalog.runs.clear()
    client.get(reverse("framework-detail", args=["owasp-llm-2026"]))
    assert dict(test_catalog.runs) == {PARTLY: 1}, "only the controls mapped to the framework are measured"


def test_each_page_runs_a_fixed_number_of_queries_however_much_data(
    iam_admin: User, reviewer: User, web_as: Any, test_catalog: Catalog
) -> None:
    client = web_as(reviewer)
    urls = [*page_urls(), reverse("framework-detail", args=["nist-csf-2.0"])]
    grow(iam_admin, "small", people=1)
    client.get(urls[0])  # the session is warm: its first read is not counted
    small = {url: _queries(client, url) for url in urls}
    grow(iam_admin, "large", people=60)
    large = {url: _queries(client, url) for url in urls}
    assert small == large
    # On the list: the session, its user and their roles; the header's three counts of what waits
    # for a reviewer; the thresholds, the organisation's frameworks and their items, the
    # mappings; and one query per control.
    assert small[urls[0]] == 3 + 3 + 4 + len(test_catalog.controls())


@pytest.fixture
def built_in_controls() -> Iterator[list[Control]]:
    """The controls the apps register (their evidence runs against an empty portal)."""
    yield registry.controls()


def test_the_pages_show_every_control_the_apps_register(
    reviewer: User, web_as: Any, built_in_controls: list[Control]
) -> None:
    html = web_as(reviewer).get(reverse("controls-list")).content.decode()
    assert set(_row_ids(html, "control-")) == {control.id for control in built_in_controls}
    for control in built_in_controls:
        assert web_as(reviewer).get(reverse("control-detail", args=[control.id])).status_code == 200
