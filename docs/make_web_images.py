"""Regenerate the web console's images in docs/ (README, "The web console").

Ingests the single sample messages (tests/samples) into a fresh state, adds a clerk, serves the
console with waitress on loopback and, in Debian's Chromium driven by Playwright, logs in and takes
the month overview of October 2022 at 375 px (a phone; the top of the page) and 1280 px (a desktop).
Needs chromium, fonts-noto-cjk and the playwright package (no browser download).

usage: python docs/make_web_images.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))
from support.configs import write_config  # noqa: E402

from support.web import Console, add_users, chromium, ingest_samples, login, served  # noqa: E402

SHOTS = (("web-375px.png", 375, 1400), ("web-1280px.png", 1280, 1000))
MAX_BYTES = 300_000


def save(png: bytes, out: Path) -> None:
    out.write_bytes(png)
    if out.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{out.name} is {out.stat().st_size} bytes, over {MAX_BYTES}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mailbot-web-images-") as folder:
        console = Console(write_config(Path(folder)))
        ingest_samples(console.config, console.sessions)
        add_users(console.sessions)
        try:
            with served(console.app) as base, chromium() as browser:
                for name, width, height in SHOTS:
                    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
                    login(page, base, "clerk")
                    page.goto(f"{base}/?month=2022-10")
                    save(page.screenshot(full_page=False), DOCS / name)
                    print(f"wrote docs/{name} ({width} px)")
                    page.close()
        finally:
            console.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
