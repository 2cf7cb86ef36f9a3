"""Every kind of portal page each demo role reaches, walked in Debian's Chromium from each
person's home: an automated accessibility check (axe-core, run inside the page) finds no serious
or critical violation, and at a phone's width (390 × 844 CSS pixels) no page scrolls sideways —
wide content (tables, code, long names) wraps or scrolls inside its own box, never the page."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser_support import BROWSER_MARKS, chromium, crawl, sign_in

pytestmark = [*BROWSER_MARKS, pytest.mark.db_agnostic]

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Each role's own walk from their home, with how many kinds of page it opens: the IAM admin
# reaches nearly every kind; the others' walks cover what differs for them (owner's actions, a
# manager's and a reviewer's views, the auditor's read-only pages). Bounded so that the whole
# walk stays short on a small machine.
PAGES_PER_ROLE = {"ivan": 30, "audrey": 10, "rita": 12, "mark": 10, "alice": 12, "bob": 8}
BLOCKING = {"serious", "critical"}
# What overflows the page, widest first: the elements sticking out past its right edge, leaving
# out those inside a box that scrolls or clips them (a table's own scroller).
_OFFENDERS = """() => {
  const limit = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') return true;
    }
    return false;
  };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const right = el.getBoundingClientRect().right;
    if (right > limit + 1 && !clipped(el)) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.classList.length ? '.' + [...el.classList].join('.') : '');
      wide.push([Math.round(right), name]);
    }
  }
  wide.sort((a, b) => b[0] - a[0]);
  return wide.slice(0, 3).map(([right, name]) => name + ' to ' + right + 'px').join(', ');
}"""


@pytest.fixture
def demo_site(transactional_db: None, live_server: Any) -> str:
    from governance.roles import roles_sync

    roles_sync()
    call_command("seed_demo", stdout=StringIO())
    return str(live_server.url)


@pytest.fixture
def browser(demo_site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


def _too_wide(page: Any) -> str | None:
    """None when the page fits the phone; else its width and what sticks out."""
    width = page.evaluate("document.documentElement.scrollWidth")
    if width <= PHONE["width"]:
        return None
    return f"{width}px wide ({page.evaluate(_OFFENDERS)})"


def _violations(page: Any) -> str | None:
    """None when axe-core finds nothing serious or critical; else what it found, rule by rule."""
    from axe_playwright_python.sync_playwright import Axe

    found = [
        f"{rule['impact']} {rule['id']} ({len(rule['nodes'])}×, e.g. {rule['nodes'][0]['target']})"
        for rule in Axe().run(page).response["violations"]
        if rule["impact"] in BLOCKING
    ]
    return "; ".join(found) or None


def _check(page: Any, where: str, problems: dict[str, str], axe_done: set[str], kind: str) -> None:
    """The accessibility check once per kind of page (the first person to reach it), then the
    same page at a phone's width."""
    if kind not in axe_done:
        axe_done.add(kind)
        if found := _violations(page):
            problems[f"accessibility: {where}"] = found
    page.set_viewport_size(PHONE)
    if found := _too_wide(page):
        problems[f"phone width: {where}"] = found
    page.set_viewport_size(LAPTOP)


def test_every_page_is_accessible_and_fits_a_phone(browser: Any, demo_site: str) -> None:
    from tests.browser_support import page_kind

    problems: dict[str, str] = {}
    axe_done: set[str] = set()
    opened = 0
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{demo_site}/accounts/login/")
    _check(page, "(signed out) /accounts/login/", problems, axe_done, "/accounts/login/")
    page.close()
    for username, limit in PAGES_PER_ROLE.items():
        page = browser.new_page(viewport=LAPTOP)
        sign_in(page, demo_site, username, "demo")
        for path in crawl(page, demo_site, limit=limit):
            opened += 1
            _check(page, f"{username} {path}", problems, axe_done, page_kind(path))
        page.close()
    assert opened > 40 and len(axe_done) > 30, f"the walk reached too few pages: {sorted(axe_done)}"
    assert not problems, "\n".join(f"{where}: {found}" for where, found in sorted(problems.items()))
