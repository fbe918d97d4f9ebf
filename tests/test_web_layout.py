"""Every page reads at 375 px (a phone) and 1280 px: nothing wider than the viewport outside the
boxes that scroll by themselves, in real Chromium."""

from __future__ import annotations

import pytest

from support.web import login, served

PAGES = ("/?month=2022-10", "/school?name=安溪县北门小学", "/quarantine", "/messages", "/messages/1", "/outbox",
         "/outbox/1", "/downloads", "/downloads/send?month=2022-10", "/system")
OVERFLOW = """() => {
  const W = window.innerWidth;
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const inBox = el => { for (let p = el.parentElement; p; p = p.parentElement) if (scrolls(p)) return true; return false; };
  return {width: document.documentElement.scrollWidth,
          wide: Array.from(document.querySelectorAll('body *')).filter(el => {
            const r = el.getBoundingClientRect(); return r.width > 0 && r.right > W + 0.5 && !inBox(el);
          }).slice(0, 5).map(el => el.tagName + ' ' + (el.textContent || '').slice(0, 30))};
}"""


@pytest.mark.parametrize("width", [375, 1280])
def test_pages_fit_the_screen(console, width, browser):
    with served(console.app) as base:
        page = browser.new_page(viewport={"width": width, "height": 900})
        login(page, base, "clerk")
        for path in PAGES:
            page.goto(base + path)
            found = page.evaluate(OVERFLOW)
            assert found["width"] <= width and found["wide"] == [], (path, found)
