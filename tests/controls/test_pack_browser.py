"""The evidence pack in a real browser (Debian's Chromium through Playwright): an IAM admin
downloads it from its page (accessible, fits a phone), and the report inside opens on its own
from a file — headings and tables, nothing fetched, accessible — lays out for print (a page break
before each part) and prints to PDF."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from governance.controls import registry
from governance.controls.models import ControlMapping
from governance.controls.registry import LOWER, Control, Figure, Threshold
from governance.models import User
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}
BLOCKING = {"serious", "critical"}
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def _people_evidence() -> list[Figure]:
    return [
        Figure(
            key="browser-owners.share_named",
            label="Share of people with an email address",
            value=100.0,
            threshold=Threshold(met=98, partly=90),
            detail="Every person has one.",
            records=lambda: User.objects.order_by("username").values("username", "email").iterator(),
        ),
        Figure(
            key="browser-owners.orphans",
            label="Orphans",
            value=3,
            threshold=Threshold(met=0),
            unit="count",
            better=LOWER,
            detail="Three orphans.",
        ),
    ]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def browser_controls(monkeypatch: pytest.MonkeyPatch, iam_admin: User) -> None:
    control = Control("browser-owners", "Named owners (browser test)", "Owners are named.", "tests", _people_evidence)
    monkeypatch.setattr(registry, "_CONTROLS", {control.id: control})
    ControlMapping.objects.create(
        control_id=control.id, framework_slug="nist-csf-2.0", item_code="GV.OC", created_by=iam_admin
    )


def _serious_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{rule['id']}: {rule['nodes'][0]['target']}" for rule in violations if rule["impact"] in BLOCKING]


def _download_pack(browser: Any, base: str, folder: Path) -> Path:
    page = browser.new_page(accept_downloads=True)
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/evidence/pack/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Evidence pack")
        assert _serious_violations(page) == []
        page.set_viewport_size(PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        with page.expect_download() as info:
            page.get_by_role("button", name="Download the evidence pack (ZIP)").click()
        download = info.value
        assert download.suggested_filename.startswith("evidence-pack-")
        target = folder / download.suggested_filename
        download.save_as(target)
        return target
    finally:
        page.close()


def test_the_downloaded_report_opens_from_a_file_and_prints_to_pdf(
    transactional_db, live_server, iam_admin, browser_controls, browser, tmp_path
):  # noqa: ANN001
    archive = _download_pack(browser, str(live_server.url), tmp_path)
    with zipfile.ZipFile(archive) as opened:
        opened.extract("report.html", tmp_path)
    report = tmp_path / "report.html"
    page = browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto(report.as_uri())
        expect(page.get_by_role("heading", level=1)).to_have_text("Evidence pack")
        for name in ("Contents", "Framework coverage", "Controls and their evidence", "Verifying this pack"):
            expect(page.get_by_role("heading", level=2, name=name)).to_be_visible()
        expect(page.get_by_role("heading", level=3, name="Named owners (browser test)")).to_be_visible()
        expect(page.get_by_role("table", name="Stamp")).to_contain_text("admin")
        evidence = page.get_by_role("table", name="Evidence of Named owners (browser test)")
        expect(evidence).to_contain_text("Share of people with an email address")
        expect(evidence).to_contain_text("Not met")
        expect(page.get_by_role("table", name="Coverage per framework")).to_contain_text("NIST")
        assert page.locator("table").count() >= 5
        assert _serious_violations(page) == []
        # Nothing but the file itself is loaded: the report is self-contained.
        assert fetched == [report.as_uri()]

        page.emulate_media(media="print")
        break_before = page.eval_on_selector("#frameworks", "el => getComputedStyle(el).breakBefore")
        assert break_before == "page"
        pdf = tmp_path / "report.pdf"
        page.pdf(path=str(pdf), format="A4", print_background=True)
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-")
        # A page for the cover and contents, then one per part: coverage, controls, each
        # framework's items (seven built in), verifying.
        assert len(PDF_PAGE.findall(data)) >= 10
    finally:
        page.close()
