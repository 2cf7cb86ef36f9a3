"""Discovery in a real browser (Debian's Chromium through Playwright): an IAM admin uploads a
provider's export, opens the top unregistered app and claims it on someone's behalf; a person
says an app they connected is not needed, from their own page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.services import default_workflows_ensure
from inventory.discovery import importer
from inventory.discovery.choices import ConsentResponse, FindingStatus
from inventory.discovery.models import DiscoveredConsent, DiscoveryImport, Finding
from inventory.models import Integration
from tests.browser_support import BROWSER_MARKS, chromium, sign_in
from tests.discovery.factories import make_app, make_consent, make_finding, make_scope, map_scope

pytestmark = BROWSER_MARKS

DRIVE = "https://www.googleapis.com/auth/drive.readonly"
# One page of Google's tokens.list for two people: the same app, one of them with a portal account.
TOKENS = (
    '{"kind": "admin#directory#tokenList", "items": ['
    '{"kind": "admin#directory#token", "clientId": "77-notes.apps.googleusercontent.com", '
    f'"displayText": "Minutes Maker", "scopes": ["{DRIVE}"], "userKey": "owner@example.com", '
    '"anonymous": false, "nativeApp": false}, '
    '{"kind": "admin#directory#token", "clientId": "77-notes.apps.googleusercontent.com", '
    f'"displayText": "Minutes Maker", "scopes": ["{DRIVE}"], "userKey": "contractor@elsewhere.example", '
    '"anonymous": false, "nativeApp": false}]}'
)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def test_iam_admin_uploads_an_export_and_claims_the_top_app_for_its_user(
    transactional_db, live_server, iam_admin, owner, browser, settings, tmp_path: Path
):  # noqa: ANN001
    default_workflows_ensure()
    map_scope("google", DRIVE, make_scope("gdrive:files.read", sensitivity="medium"))
    settings.DISCOVERY_SPOOL_DIR = tmp_path / "spool"
    export = tmp_path / "tokens.json"
    export.write_text(TOKENS)
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/discovery/imports/")
        page.get_by_label("Source (required)").select_option("google")
        page.get_by_label("Tenant").fill("example.com")
        page.get_by_label("Export file").set_input_files(str(export))
        page.get_by_role("button", name="Upload and import").click()
        expect(page.locator("#status")).to_have_text("Queued")
        # The worker's part, done here: the import runs once the upload is committed.
        importer.import_run(DiscoveryImport.objects.get().pk)
        page.goto(f"{base}/discovery/")
        page.locator("#top-apps").get_by_role("link", name="Minutes Maker").click()
        page.get_by_role("link", name="Claim on someone's behalf").click()
        page.get_by_label("Owner (required)").fill("owner")
        expect(page.get_by_label("gdrive:files.read")).to_be_checked()
        page.get_by_label("What it is used for").fill("Writes the minutes of the sales calls.")
        page.get_by_role("button", name="Register and send for approval").click()
        expect(page.locator("h1")).to_contain_text("Minutes Maker")
        expect(page.locator("#status")).to_have_text("Pending approval")
    finally:
        page.close()
    integration = Integration.objects.get()
    assert integration.business_owner == owner
    assert Finding.objects.get().status == FindingStatus.CLAIMED


def test_a_person_says_an_app_they_connected_is_not_needed(transactional_db, live_server, owner, browser):  # noqa: ANN001
    app = make_app(name="Slide Genie")
    consent = make_consent(
        app, person=owner, response=ConsentResponse.PENDING, respond_by=timezone.now() + timedelta(days=14)
    )
    make_finding(app)
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "owner", "pw")
        page.get_by_role("link", name="Answer: claim or not needed").click()
        row = page.locator(f"#consent-{consent.pk}")
        row.get_by_text("Not needed", exact=True).click()
        row.get_by_label("Comment").fill("Tried it once.")
        row.get_by_role("button", name="Disconnect it").click()
        expect(page.locator(".messages .message.success")).to_contain_text("Slide Genie will be disconnected")
        expect(page.locator(f"#consent-{consent.pk}")).to_contain_text("Not needed")
    finally:
        page.close()
    consent.refresh_from_db()
    assert consent.response == ConsentResponse.NOT_NEEDED
    assert consent.remediations.get().reason == "Tried it once."
    assert DiscoveredConsent.objects.count() == 1
