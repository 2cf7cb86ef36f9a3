"""What every browser test shares: Debian's Chromium driven by Playwright (never a downloaded
browser), the marks that skip the tests where Chromium is missing, and signing in through the
login page as a person does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@contextmanager
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium, closed afterwards. Playwright's sync API runs an event loop in this
    thread; the ORM is let run here anyway, through monkeypatch so that the variable does not leak
    into later tests' subprocesses (where `check --deploy` rightly refuses it)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    """Sign in through the login page and wait for the home page."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")


# Paths a crawl never follows: signing out ends the walk, the admin is Django's own, the API
# answers JSON and downloads open no page.
CRAWL_SKIP = (
    "/accounts/logout",
    "/admin/",
    "/api/v1/",
    "/oauth/",
    "/.well-known/",
    "/static/",
    "/complete/",
    "/login/",
)
CRAWL_SKIP_SUFFIXES = (".csv", ".json", ".jsonl", ".pdf", ".zip", "/export/", "/download/")


def page_kind(path: str) -> str:
    """The path with its numbers and ids collapsed: ``/inventory/3/`` and ``/inventory/7/`` are
    one kind of page; a view switch in the query makes another."""
    path, _, query = path.partition("?")
    kind = "/".join("N" if part.isdigit() or len(part) >= 20 else part for part in path.split("/"))
    return f"{kind}?{query}" if query else kind


def crawl(page: Any, base: str, start: str = "/", limit: int = 40) -> Iterator[str]:
    """Open, one after the other, the portal pages a signed-in person reaches by following links
    from ``start``: one per kind of page (``page_kind``), breadth first, at most ``limit``.
    Yields each path while its page is open in ``page``."""
    from urllib.parse import urlsplit

    seen: set[str] = set()
    queue, opened, host = [start], 0, urlsplit(base).netloc
    while queue and opened < limit:
        path = queue.pop(0)
        if page_kind(path) in seen:
            continue
        seen.add(page_kind(path))
        response = page.goto(base + path)
        if response is None or response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        opened += 1
        for href in page.eval_on_selector_all("a[href]", "els => els.map(el => el.href)"):
            parts = urlsplit(href)
            if parts.netloc != host or parts.path.startswith(CRAWL_SKIP) or parts.path.endswith(CRAWL_SKIP_SUFFIXES):
                continue
            # Filters and pages of a list are the same page; a view switch is another.
            query = parts.query if parts.query.startswith("view=") else ""
            queue.append(parts.path + (f"?{query}" if query else ""))
        yield path
