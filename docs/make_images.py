"""Regenerate the summary images in docs/ from the sample messages.

Ingests every sample (tests/samples) into a fresh state, runs `mailbot summary --month 2022-10 --out`,
screenshots summary.html in headless Chromium at 375 px and 1280 px, and renders page 1 of the .xlsx
through LibreOffice (PDF) and pdftoppm. Needs chromium, fonts-noto-cjk, libreoffice-calc,
poppler-utils, and Pillow (to crop and shrink the PNGs).

usage: python docs/make_images.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "tests"))
from support.browser import find_chromium, measure, screenshot  # noqa: E402
from support.cli import ingest_json, run_cli  # noqa: E402
from support.configs import SAMPLES, write_config  # noqa: E402

NOW = "2022-11-02T09:00:00+08:00"  # after the last October sample (a late one, 1 November)
MAX_BYTES = 300_000


def ingest_samples(config: Path) -> None:
    for case in sorted(p for p in (SAMPLES / "cases").iterdir() if p.is_dir()):
        expect = json.loads((case / "expect.json").read_text(encoding="utf-8"))
        ingest_json(config, expect["mailbox"], case / "message.eml")
    for sequence in sorted(p for p in (SAMPLES / "sequences").iterdir() if p.is_dir()):
        expect = json.loads((sequence / "expect.json").read_text(encoding="utf-8"))
        for eml, message in zip(sorted(sequence.glob("*.eml")), expect["messages"]):
            ingest_json(config, message["mailbox"], eml)


def save_small(image: Image.Image, path: Path) -> None:
    """A palette PNG: screenshots of text and flat colours lose nothing visible at 256 colours."""
    small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {image.width}x{image.height}, {size // 1024} KiB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is over {MAX_BYTES // 1000} KB")


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    with tempfile.TemporaryDirectory(prefix="mailbot-docs-") as folder:
        tmp = Path(folder)
        config = write_config(tmp)
        run_cli(config, "db", "upgrade")
        ingest_samples(config)
        out = tmp / "summary"
        run_cli(config, "--now", NOW, "summary", "--month", "2022-10", "--out", str(out))
        html = (out / "summary.html").read_text(encoding="utf-8")
        for width in (375, 1280):
            height = measure(html, width, chromium)["scrollHeight"]
            png = screenshot(html, width, tmp / f"{width}.png", chromium, height=height)
            with Image.open(png) as image:
                save_small(image.crop((0, 0, width, height)), DOCS / f"summary-{width}px.png")
        xlsx = next(out.glob("*.xlsx"))
        subprocess.run(["libreoffice", f"-env:UserInstallation=file://{tmp / 'lo-profile'}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(tmp), str(xlsx)], check=True, capture_output=True)
        pdf = tmp / (xlsx.stem + ".pdf")
        subprocess.run(["pdftoppm", "-png", "-r", "90", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(tmp / "page")], check=True)
        with Image.open(tmp / "page.png") as image:
            save_small(image, DOCS / "summary-xlsx-page1.png")


if __name__ == "__main__":
    main()
