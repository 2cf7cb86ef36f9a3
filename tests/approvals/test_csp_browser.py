"""The Content-Security-Policy in a real browser (Debian's Chromium through Playwright): the
reviewer queue's script and the API docs pages (Swagger UI, ReDoc) work under the policy the
portal sends, with no violation reported — and an inline script, which the policy forbids, is
refused (so the check would see a violation if a page relied on one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = [*BROWSER_MARKS, pytest.mark.db_agnostic]

# Runs before every page's own scripts (Playwright injects it outside the page's policy) and
# records each violation the browser reports. (Waits use locators, not wait_for_function: its
# predicate string is eval'd in the page, which the policy refuses.)
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
  document.documentElement.dataset.cspViolations = String(window.__csp.length);
});
"""


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _watched_page(browser: Any) -> tuple[Any, list[str]]:
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    return page, console


# ReDoc always shows Redocly's logo from Redocly's CDN (no option turns it off; it hides itself
# when the image fails). The policy blocks it on purpose — no third-party request from the docs,
# and none is possible from an air-gapped deployment — so this one refusal is expected.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _violations(page: Any, console: list[str], *, expected: str = "") -> list[str]:
    found = list(page.evaluate("window.__csp")) + console
    return [v for v in found if not (expected and expected in v)]


def test_the_queue_and_the_api_docs_work_under_the_policy_with_no_violation(
    transactional_db, live_server, make_integration, submit, reviewer, browser
):  # noqa: ANN001
    step = submit(make_integration("Mail bot")).steps.get()
    base = str(live_server.url)
    page, console = _watched_page(browser)
    try:
        sign_in(page, base, "reviewer", "pw")

        # The queue: the page is served under the policy, and its script decides without a reload.
        response = page.goto(f"{base}/approvals/queue/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.evaluate("window.__noReload = true")
        item = page.locator(f"#item-{step.pk}")
        item.get_by_label("Comment").fill("Fine")
        # Approve is pre-selected on a low-risk item, and the button says so.
        item.get_by_role("button", name="Approve", exact=True).click()
        item.wait_for(state="detached")
        assert page.evaluate("window.__noReload") is True
        assert _violations(page, console) == []

        # Swagger UI: the start-up script (served as a file) renders every operation.
        response = page.goto(f"{base}/api/v1/docs/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector(".opblock", timeout=60_000)
        assert page.locator(".opblock").count() > 10
        assert _violations(page, console) == []

        # ReDoc: renders the API's title and its operations' menu.
        response = page.goto(f"{base}/api/v1/redoc/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.get_by_role("heading", name="AI Governance Portal API").first.wait_for(timeout=60_000)
        assert page.locator("li[data-item-id]").count() > 10
        assert _violations(page, console, expected=REDOC_LOGO) == []

        # The watch works: an inline script is refused and reported.
        page.evaluate(
            "document.body.appendChild(Object.assign(document.createElement('script'),"
            " {textContent: 'window.__inlineRan = true'}))"
        )
        page.locator("html[data-csp-violations]").wait_for(state="attached")
        assert page.evaluate("window.__inlineRan === undefined") is True
        assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
    finally:
        page.close()
