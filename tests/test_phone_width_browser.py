"""Every kind of portal page each demo role reaches, opened at a phone's width (390 × 844 CSS
pixels) in Debian's Chromium: none scrolls sideways. Wide content (tables, code, long names)
wraps or scrolls inside its own box, never the page."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser_support import BROWSER_MARKS, chromium, crawl, sign_in

pytestmark = BROWSER_MARKS

PHONE = {"width": 390, "height": 844}
# Each role's own walk from their home, with how many kinds of page it opens: the IAM admin
# reaches nearly every kind; the others' walks cover what differs for them (owner's actions, a
# manager's and a reviewer's views, the auditor's read-only pages). Bounded so that the whole
# walk stays short on a small machine.
PAGES_PER_ROLE = {"ivan": 26, "audrey": 8, "rita": 10, "mark": 10, "alice": 12}
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


def test_every_page_fits_a_phone_without_sideways_scrolling(browser: Any, demo_site: str) -> None:
    offenders: dict[str, str] = {}
    opened: set[str] = set()
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{demo_site}/accounts/login/")
    if found := _too_wide(page):
        offenders["(signed out) /accounts/login/"] = found
    page.close()
    for username, limit in PAGES_PER_ROLE.items():
        page = browser.new_page(viewport=PHONE)
        sign_in(page, demo_site, username, "demo")
        for path in crawl(page, demo_site, limit=limit):
            opened.add(path)
            if found := _too_wide(page):
                offenders[f"{username} {path}"] = found
        page.close()
    assert len(opened) > 30, f"the walk reached too few pages: {sorted(opened)}"
    assert not offenders, "pages wider than a phone (390px):\n" + "\n".join(
        f"{where}: {found}" for where, found in sorted(offenders.items())
    )
