"""Render the summary HTML in headless Chromium: layout measurements and screenshots.

Used by the rendering test and to make the docs images; never by the daemon. The email itself has
no script: a measuring script is added to a copy of the page only here.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=3000")

# Runs after load: page widths, elements sticking out of the viewport (outside boxes that scroll by
# themselves), the scroll boxes, every table's right edge, the table cells whose text a reader cannot
# see whole (it leaves its cell, or leaves the viewport where no scroll box can bring it back), how
# many lines each occurrence of the given phrases takes, and the text as rendered.
_MEASURE = """<script>
var PHRASES = %s, WITHIN = %s;
window.addEventListener('load', function () {
  var W = window.innerWidth, d = document.documentElement;
  function scrolls(el) { var o = getComputedStyle(el).overflowX; return o === 'auto' || o === 'scroll'; }
  function scrollBox(el) { for (var p = el.parentElement; p; p = p.parentElement) { if (scrolls(p)) return p; } return null; }
  function reachable(right, el) {
    if (right <= W + 0.5) return true;
    var box = scrollBox(el); if (!box) return false;
    var b = box.getBoundingClientRect();
    return b.right <= W + 0.5 && box.scrollWidth > box.clientWidth && b.left + box.scrollWidth >= right - 0.5;
  }
  var wide = [], boxes = [], tables = [], clipped = [];
  document.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > W + 0.5 && !scrollBox(el)) wide.push(el.tagName + ' ' + Math.round(r.right) + ' ' + (el.textContent || '').slice(0, 30));
    if (el.tagName === 'DIV' && scrolls(el)) boxes.push({client: el.clientWidth, scroll: el.scrollWidth, right: Math.round(r.right)});
    if (el.tagName === 'TABLE' && el.rows.length) tables.push({head: el.rows[0].innerText.replace(/\\s+/g, ' ').trim().slice(0, 40),
      right: Math.round(r.right), scrolled: !!scrollBox(el)});
    if ((el.tagName === 'TD' || el.tagName === 'TH') && el.textContent.trim()) {
      var range = document.createRange(); range.selectNodeContents(el); var t = range.getBoundingClientRect();
      if (t.left < r.left - 0.5 || t.right > r.right + 0.5 || !reachable(t.right, el))
        clipped.push(el.textContent.trim().slice(0, 30) + ' text ' + Math.round(t.left) + '-' + Math.round(t.right) + ' cell ' + Math.round(r.left) + '-' + Math.round(r.right));
    }
  });
  var lines = {};
  var roots = WITHIN ? document.querySelectorAll(WITHIN) : [document.body];
  PHRASES.forEach(function (phrase) { lines[phrase] = []; Array.prototype.forEach.call(roots, function (root) {
    var walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), node;
    while ((node = walk.nextNode())) {
      if (node.parentElement.tagName === 'SCRIPT') continue;
      for (var i = node.data.indexOf(phrase); i >= 0; i = node.data.indexOf(phrase, i + 1)) {
        var range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + phrase.length);
        var tops = {}; Array.prototype.forEach.call(range.getClientRects(), function (rect) {
          if (rect.width > 0) tops[Math.round(rect.top)] = true; });
        lines[phrase].push(Object.keys(tops).length);
      }
    }
  }); });
  var out = {innerWidth: W, scrollWidth: d.scrollWidth, scrollHeight: d.scrollHeight, wide: wide.slice(0, 20),
             boxes: boxes, tables: tables, clipped: clipped.slice(0, 20), lines: lines, text: document.body.innerText};
  parent.postMessage(JSON.stringify(out), '*');
});
</script>"""
# Headless Chromium will not make a window narrower than 500 px, so the page is laid out in an
# iframe of the wanted width: its viewport is exactly a phone's.
_FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0;background:#fff;">
<iframe src="page.html" style="border:0;display:block;width:{width}px;height:{height}px;"></iframe>
<pre id="mailbot-measure"></pre>
<script>window.addEventListener('message', function (e) {{
  document.getElementById('mailbot-measure').textContent = e.data; }});</script>
</body></html>"""
MIN_WINDOW_WIDTH = 500
_RESULT = re.compile(r'<pre id="mailbot-measure"[^>]*>(.+?)</pre>', re.S)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="mailbot-chromium-") as profile:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout, check=False)


def _write_pages(folder: Path, page_html: str, width: int, height: int) -> Path:
    (folder / "page.html").write_text(page_html, encoding="utf-8")
    frame = folder / "frame.html"
    frame.write_text(_FRAME.format(width=width, height=height), encoding="utf-8")
    return frame


def measure(page_html: str, width: int, chromium: str, height: int = 900, timeout: float = 90,
            phrases: tuple[str, ...] = (), within: str = "") -> dict:
    """Lay the page out `width` CSS px wide; returns innerWidth, scrollWidth, scrollHeight, the
    elements wider than the viewport (`wide`), the scroll boxes, the tables (`head`: their first
    row's text, `right`, `scrolled`: inside a scroll box), the `clipped` table cells, `lines`: for
    each phrase the number of lines each of its occurrences (inside the elements the CSS selector
    `within` picks, or anywhere) is laid out on, and the rendered text."""
    with tempfile.TemporaryDirectory(prefix="mailbot-page-") as folder:
        frame = _write_pages(Path(folder), page_html.replace("</body>", _MEASURE % (json.dumps(list(phrases)), json.dumps(within)) + "</body>", 1), width, height)
        proc = _run(chromium, [f"--window-size={max(width, MIN_WINDOW_WIDTH)},{height}", "--dump-dom",
                               frame.as_uri()], timeout)
    found = _RESULT.search(proc.stdout)
    if not found:
        raise RuntimeError(f"chromium gave no measurement (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(html.unescape(found.group(1)))


def screenshot(page_html: str, width: int, out_png: Path, chromium: str, height: int | None = None,
               timeout: float = 90) -> Path:
    """A PNG of the whole page laid out `width` px wide (its full height unless `height` is given).

    Below MIN_WINDOW_WIDTH the image is that wide, the page at its left and white to its right.
    """
    if height is None:
        height = measure(page_html, width, chromium, timeout=timeout)["scrollHeight"]
    with tempfile.TemporaryDirectory(prefix="mailbot-page-") as folder:
        frame = _write_pages(Path(folder), page_html, width, height)
        out_png = Path(out_png).resolve()
        proc = _run(chromium, [f"--window-size={max(width, MIN_WINDOW_WIDTH)},{height}", f"--screenshot={out_png}",
                               frame.as_uri()], timeout)
    if not out_png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return out_png
