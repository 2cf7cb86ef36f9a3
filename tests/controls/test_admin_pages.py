"""The catalog's admin pages: IAM admins add frameworks, items and mappings and set thresholds;
a refused form keeps what was typed; everyone else (auditors, reviewers, business users) finds no
such page; each page runs a fixed number of queries; the audit trail links the rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.controls import services
from governance.controls.models import ControlMapping, EvidenceThreshold, Framework, FrameworkItem
from governance.models import AuditEvent, User
from governance.targets import target_links
from tests.controls.admin_support import OPEN_KEY, SHARE_KEY, TEST_CONTROL_ID, catalog_control  # noqa: F401

pytestmark = pytest.mark.django_db

CREATE_URL = "/frameworks/manage/new/"
MAPPING_URL = "/frameworks/manage/mappings/new/"
THRESHOLDS_URL = f"/controls/{TEST_CONTROL_ID}/thresholds/"
BANK = {"slug": "bank-std", "name": "Bank IT standard", "source_url": "https://intranet.example.com/std"}


def _items_url(slug: str) -> str:
    return f"/frameworks/manage/{slug}/items/new/"


def _remove_url(mapping: ControlMapping) -> str:
    return f"/frameworks/manage/mappings/{mapping.pk}/remove/"


@pytest.fixture
def bank(iam_admin: User) -> Framework:
    return services.framework_create(actor=iam_admin, **BANK)


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


# --- Frameworks and items ----------------------------------------------------------------------


def test_an_admin_adds_a_framework_and_lands_on_its_page(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    page = client.get(CREATE_URL)
    assert page.status_code == 200 and b"Add the framework" in page.content
    response = client.post(CREATE_URL, {**BANK, "version": "3.1", "description": "Internal."})
    assert response.status_code == 302
    assert response["Location"] == "/frameworks/bank-std/"
    assert Framework.objects.get().version == "3.1"
    assert AuditEvent.objects.filter(action="controls.framework_created").count() == 1


def test_a_refused_framework_keeps_what_was_typed(web_as: Callable[[User], Any], iam_admin: User) -> None:
    response = web_as(iam_admin).post(
        CREATE_URL, {**BANK, "slug": "nist-csf-2.0", "publisher": "Bank CISO office", "description": "Kept text."}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "built-in framework" in page and 'id="error-summary"' in page
    assert 'value="Bank CISO office"' in page and "Kept text." in page and 'value="nist-csf-2.0"' in page
    assert 'aria-invalid="true"' in page
    assert not Framework.objects.exists()


def test_an_admin_adds_items_to_the_organisations_framework(
    web_as: Callable[[User], Any], iam_admin: User, bank: Framework
) -> None:
    client = web_as(iam_admin)
    assert client.get(_items_url("bank-std")).status_code == 200
    response = client.post(_items_url("bank-std"), {"code": "SEC 1.2", "title": "Inventory", "description": ""})
    assert response.status_code == 302
    assert response["Location"] == "/frameworks/bank-std/#item-sec-12"
    assert FrameworkItem.objects.get().code == "SEC 1.2"
    again = client.post(_items_url("bank-std"), {"code": "sec 1.2", "title": "Duplicate title kept"})
    assert again.status_code == 400
    assert 'value="Duplicate title kept"' in again.content.decode() and "already has an item" in again.content.decode()
    listed = client.get(_items_url("bank-std")).content.decode()
    assert "Inventory" in listed and "?item=bank-std%3ASEC%201.2" in listed


def test_a_builtin_framework_takes_no_item_here(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    assert client.get(_items_url("nist-csf-2.0")).status_code == 404
    assert client.post(_items_url("nist-csf-2.0"), {"code": "X", "title": "Y"}).status_code == 404
    assert not FrameworkItem.objects.exists()


@pytest.mark.parametrize("size", [1, 12])
def test_the_framework_page_runs_fixed_queries(
    size: int, web_as: Callable[[User], Any], iam_admin: User, bank: Framework
) -> None:
    client = web_as(iam_admin)
    client.get(CREATE_URL)
    baseline = _queries(client, CREATE_URL)
    for n in range(size):
        framework = services.framework_create(actor=iam_admin, **{**BANK, "slug": f"std-{n}"})
        services.framework_item_add(actor=iam_admin, framework=framework, code="A", title="A")
    assert _queries(client, CREATE_URL) == baseline
    for n in range(size):
        services.framework_item_add(actor=iam_admin, framework=bank, code=f"B-{n}", title="B")
    first = _queries(client, _items_url("bank-std"))
    services.framework_item_add(actor=iam_admin, framework=bank, code="C", title="C")
    assert _queries(client, _items_url("bank-std")) == first


# --- Mappings ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_control")
def test_an_admin_maps_a_control_and_lands_on_the_controls_page(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    page = client.get(f"{MAPPING_URL}?control={TEST_CONTROL_ID}&item=nist-csf-2.0%3ARS.MA").content.decode()
    assert f'<option value="{TEST_CONTROL_ID}" selected>' in page
    assert '<option value="nist-csf-2.0:RS.MA" selected>' in page
    assert '<optgroup label="OWASP Non-Human Identities Top 10 2025">' in page
    response = client.post(
        MAPPING_URL, {"control_id": TEST_CONTROL_ID, "item": "nist-csf-2.0:RS.MA", "note": "Incidents are tickets."}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/controls/{TEST_CONTROL_ID}/"
    mapping = ControlMapping.objects.get()
    assert (mapping.framework_slug, mapping.item_code, mapping.note) == (
        "nist-csf-2.0",
        "RS.MA",
        "Incidents are tickets.",
    )


@pytest.mark.usefixtures("catalog_control")
def test_a_mapping_follows_a_safe_next_only(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    data = {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L3", "next": "/frameworks/csa-maestro/"}
    assert client.post(MAPPING_URL, data)["Location"] == "/frameworks/csa-maestro/"
    data = {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L2", "next": "//evil.example/"}
    assert client.post(MAPPING_URL, data)["Location"] == f"/controls/{TEST_CONTROL_ID}/"


@pytest.mark.usefixtures("catalog_control")
def test_a_refused_mapping_keeps_what_was_typed(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    client.post(MAPPING_URL, {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L3"})
    response = client.post(
        MAPPING_URL, {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L3", "note": "Typed reason stays."}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "already mapped" in page and "Typed reason stays." in page
    assert '<option value="csa-maestro:L3" selected>' in page
    unknown = client.post(MAPPING_URL, {"control_id": "not-a-control", "item": "csa-maestro:L3"})
    assert unknown.status_code == 400 and ControlMapping.objects.count() == 1


@pytest.mark.usefixtures("catalog_control")
def test_an_admin_removes_the_organisations_mapping(web_as: Callable[[User], Any], iam_admin: User) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3"
    )
    client = web_as(iam_admin)
    listed = client.get(MAPPING_URL).content.decode()
    assert _remove_url(mapping) in listed
    response = client.post(_remove_url(mapping), {"reason": "Wrong layer."})
    assert response.status_code == 302 and response["Location"] == f"/controls/{TEST_CONTROL_ID}/"
    assert not ControlMapping.objects.exists()
    assert AuditEvent.objects.get(action="controls.mapping_removed").reason == "Wrong layer."
    assert client.post(_remove_url(mapping)).status_code == 404


@pytest.mark.usefixtures("catalog_control")
@pytest.mark.parametrize("size", [1, 20])
def test_the_mapping_page_runs_fixed_queries(size: int, web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L1")
    # With no framework of its own the items' query is skipped: start from one.
    framework = services.framework_create(actor=iam_admin, **BANK)
    client.get(MAPPING_URL)
    baseline = _queries(client, MAPPING_URL)
    for n in range(size):
        services.framework_item_add(actor=iam_admin, framework=framework, code=f"S-{n}", title="S")
        services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="bank-std", item_code=f"S-{n}")
    assert _queries(client, MAPPING_URL) == baseline


# --- Thresholds --------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_control")
def test_the_threshold_page_shows_each_figure_with_its_default_and_the_organisations(
    web_as: Callable[[User], Any], iam_admin: User
) -> None:
    services.threshold_set(actor=iam_admin, figure_key=OPEN_KEY, met=2, partly=6, reason="Backlog of the migration.")
    page = web_as(iam_admin).get(THRESHOLDS_URL).content.decode()
    assert "Share owned" in page and "Open items" in page
    assert "at least 98 %" in page, "the share's default"
    assert "at most 0" in page and "at most 2" in page, "the count's default and the organisation's"
    assert "Backlog of the migration." in page
    assert page.count("Use the default again") == 1
    assert 'aria-describedby="id_f-test-catalog-control-share-met-help"' in page, "each input points at its help"


@pytest.mark.usefixtures("catalog_control")
def test_an_admin_sets_and_clears_a_threshold(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    prefix = "f-test-catalog-control-share"
    response = client.post(
        THRESHOLDS_URL,
        {
            "figure": SHARE_KEY,
            "action": "set",
            f"{prefix}-met": "95",
            f"{prefix}-partly": "",
            f"{prefix}-reason": "Pilot.",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/controls/{TEST_CONTROL_ID}/"
    row = EvidenceThreshold.objects.get()
    assert (row.figure_key, row.met, row.partly) == (SHARE_KEY, 95, None)
    response = client.post(THRESHOLDS_URL, {"figure": SHARE_KEY, "action": "clear", f"{prefix}-clear-reason": "Done."})
    assert response.status_code == 302
    assert not EvidenceThreshold.objects.exists()
    assert AuditEvent.objects.get(action="controls.threshold_cleared").reason == "Done."


@pytest.mark.usefixtures("catalog_control")
def test_a_refused_threshold_keeps_what_was_typed(web_as: Callable[[User], Any], iam_admin: User) -> None:
    prefix = "f-test-catalog-control-share"
    response = web_as(iam_admin).post(
        THRESHOLDS_URL,
        {
            "figure": SHARE_KEY,
            "action": "set",
            f"{prefix}-met": "150",
            f"{prefix}-partly": "80",
            f"{prefix}-reason": "Typed.",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "between 0 and 100" in page
    assert 'value="150"' in page and 'value="Typed."' in page
    assert not EvidenceThreshold.objects.exists()


@pytest.mark.usefixtures("catalog_control")
def test_a_threshold_for_another_figure_or_control_is_not_found(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    assert client.post(THRESHOLDS_URL, {"figure": "kill-switch.anything", "action": "set"}).status_code == 404
    assert client.get("/controls/no-such-control/thresholds/").status_code == 404


@pytest.mark.usefixtures("catalog_control")
def test_the_threshold_page_runs_fixed_queries(web_as: Callable[[User], Any], iam_admin: User) -> None:
    client = web_as(iam_admin)
    client.get(THRESHOLDS_URL)
    baseline = _queries(client, THRESHOLDS_URL)
    services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason="Pilot.")
    services.threshold_set(actor=iam_admin, figure_key=OPEN_KEY, met=1, reason="Pilot.")
    assert _queries(client, THRESHOLDS_URL) == baseline


# --- Who may ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_control")
@pytest.mark.parametrize("who", ["auditor", "reviewer", "outsider", "owner"])
def test_the_admin_pages_do_not_exist_for_anyone_else(
    who: str, request: pytest.FixtureRequest, web_as: Callable[[User], Any], iam_admin: User, bank: Framework
) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3"
    )
    client = web_as(request.getfixturevalue(who))
    for url in (CREATE_URL, _items_url("bank-std"), MAPPING_URL, THRESHOLDS_URL):
        # An auditor sees that the page exists and may not use it; anyone else finds none.
        assert client.get(url).status_code == (403 if who == "auditor" else 404), url
    posts = [
        (CREATE_URL, {**BANK, "slug": "other"}),
        (_items_url("bank-std"), {"code": "X", "title": "Y"}),
        (MAPPING_URL, {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L2"}),
        (_remove_url(mapping), {}),
        (THRESHOLDS_URL, {"figure": SHARE_KEY, "action": "set", "f-test-catalog-control-share-met": "1"}),
    ]
    for url, data in posts:
        # An auditor's write is refused before any view (403); anyone else finds no page (404).
        assert client.post(url, data).status_code in ((403,) if who == "auditor" else (404,)), url
    assert Framework.objects.count() == 1 and not FrameworkItem.objects.exists()
    assert list(ControlMapping.objects.values_list("item_code", flat=True)) == ["L3"]
    assert not EvidenceThreshold.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client: Any) -> None:
    for url in (CREATE_URL, MAPPING_URL, THRESHOLDS_URL):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


@pytest.mark.usefixtures("catalog_control")
def test_the_audit_trail_names_and_links_the_catalogs_rows(
    iam_admin: User, auditor: User, outsider: User, bank: Framework
) -> None:
    item = services.framework_item_add(actor=iam_admin, framework=bank, code="SEC-01", title="Inventory")
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="bank-std", item_code="SEC-01"
    )
    threshold = services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason="Pilot.")
    refs = [
        ("controls.framework", str(bank.pk), "recorded"),
        ("controls.frameworkitem", str(item.pk), "recorded"),
        ("controls.controlmapping", str(mapping.pk), "recorded"),
        ("controls.evidencethreshold", str(threshold.pk), "recorded"),
    ]
    links = target_links(auditor, refs)
    assert [link.url for link in links] == [
        "/frameworks/bank-std/",
        "/frameworks/bank-std/#item-sec-01",
        f"/controls/{TEST_CONTROL_ID}/",
        THRESHOLDS_URL,
    ]
    assert links[0].text == "Bank IT standard" and links[1].text == "Bank IT standard: SEC-01 Inventory"
    hidden = target_links(outsider, refs)
    assert all(link.url == "" and link.text == "recorded" for link in hidden)


# --- Refusals the review found ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [CREATE_URL, _items_url("bank-std")])
def test_an_empty_post_is_refused_with_the_required_fields_named(
    url: str, web_as: Callable[[User], Any], iam_admin: User, bank: Framework
) -> None:
    before = (Framework.objects.count(), FrameworkItem.objects.count(), AuditEvent.objects.count())
    response = web_as(iam_admin).post(url, {})
    assert response.status_code == 400
    form = response.context["form"]
    assert form.is_bound and form.errors, "an empty POST must show what is missing"
    assert "This field is required." in response.content.decode()
    assert (Framework.objects.count(), FrameworkItem.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.usefixtures("catalog_control")
def test_a_mapping_already_made_is_refused_beside_the_item_field(
    web_as: Callable[[User], Any], iam_admin: User
) -> None:
    services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3")
    response = web_as(iam_admin).post(MAPPING_URL, {"control_id": TEST_CONTROL_ID, "item": "csa-maestro:L3"})
    assert response.status_code == 400
    form = response.context["form"]
    assert any("already mapped" in message for message in form.errors["item"])
    assert not form.non_field_errors()
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.usefixtures("catalog_control")
def test_a_removal_whose_reason_cannot_be_kept_removes_nothing(web_as: Callable[[User], Any], iam_admin: User) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3"
    )
    response = web_as(iam_admin).post(_remove_url(mapping), {"reason": "x" * 1001}, follow=True)
    assert response.status_code == 200
    assert ControlMapping.objects.filter(pk=mapping.pk).exists()
    assert not AuditEvent.objects.filter(action="controls.mapping_removed").exists()
    assert "The mapping was kept" in response.content.decode()
