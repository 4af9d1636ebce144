"""The HTML report opens offline in headless Chromium with every chart drawn.

Two checks on the real browser: plotly drew an SVG for each of the six charts (the DOM after
scripts ran), and each chart's band of a screenshot is not blank. ``make unit`` installs
Chromium when it is missing (``make chromium``); without it the test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.ledger.conftest import TEST_OPTIONS
from tokenomy.analysis.html import CHART_HEIGHT_PX, CHART_IDS, HEADER_HEIGHT_PX, render_html
from tokenomy.analysis.importer import import_claude_code
from tokenomy.analysis.reports import usage_report
from tokenomy.analysis.turns import run_detail
from tokenomy.core.pricing import CostBreakdown
from tokenomy.core.records import CallRecord, RunRecord
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelTable
from tokenomy.ledger import Ledger

S1 = "cc:11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 11, 20, tzinfo=UTC)
WIDTH = 1400
HEIGHT = HEADER_HEIGHT_PX + CHART_HEIGHT_PX * len(CHART_IDS)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Chromium is not installed, so the HTML report cannot be checked in a browser; "
        "`make chromium` (or apt-get install -y chromium) installs it"
    )


def _browser(html: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args, html.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=tmp,
    )


def _png_rows(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Decode an 8-bit RGB(A) non-interlaced PNG: (width, height, rows, bytes per pixel)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6) and body[12] == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _ink(rows: list[bytes], bpp: int, top: int, bottom: int) -> float:
    """Share of pixels in rows [top, bottom) that are not (near) white."""
    dark = total = 0
    for row in rows[top:bottom:3]:
        for x in range(0, len(row), bpp * 3):
            total += 1
            if min(row[x], row[x + 1], row[x + 2]) < 235:
                dark += 1
    return dark / total if total else 0.0


def _check(page: Path, tmp: Path) -> str:
    dom = _browser(page, tmp, "--dump-dom")
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    html = dom.stdout.decode()
    for chart in CHART_IDS:
        section = re.search(rf'<section class="chart" id="{chart}">(.*?)</section>', html, re.S)
        assert section is not None, chart
        assert section.group(1).count('class="main-svg"') >= 1, f"plotly drew no SVG for {chart}"
    shot = tmp / "shot.png"
    r = _browser(page, tmp, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}")
    assert r.returncode == 0 and shot.exists(), r.stderr.decode()[-2000:]
    _, height, rows, bpp = _png_rows(shot.read_bytes())
    assert height >= HEIGHT - 5
    for i, chart in enumerate(CHART_IDS):
        top = HEADER_HEIGHT_PX + i * CHART_HEIGHT_PX
        ink = _ink(rows, bpp, top + 40, top + CHART_HEIGHT_PX - 40)
        assert ink > 0.005, f"the {chart} chart looks blank in the screenshot ({ink:.4f})"
    return html


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """The browser check does not depend on the ledger's backend: SQLite only."""
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", options=TEST_OPTIONS)
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.slow
def test_the_report_of_an_imported_session_draws_every_chart(
    ledger: Ledger, basic: Path, table: ModelTable, tmp_path: Path
) -> None:
    import_claude_code(ledger, [basic], table=table, now=NOW, workers=0)
    page = tmp_path / "report.html"
    html = render_html(
        run_detail(ledger, S1),
        usage_report(ledger, by="day"),
        table=table,
        generated_at=NOW,
    )
    assert "https://" not in html.split("<script", 1)[0]  # nothing to fetch before the charts
    page.write_text(html, encoding="utf-8")
    dom = _check(page, tmp_path)
    assert "Fix the login bug and add a test" in dom
    # Estimated from usage: after the compaction, turn D wrote 2,500 tokens again that turn C
    # had cached (the 12-minute pause before C cost no miss: its entries were 1h).
    assert "the conversation was compacted" in dom and "2,500" in dom
    assert "Explore: Find the login code" in dom  # the sub-agent roll-up


@pytest.mark.slow
def test_misses_come_from_the_doctor_when_recorded(
    ledger: Ledger, table: ModelTable, tmp_path: Path
) -> None:
    t0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    w = ledger.writer()
    w.record_run(RunRecord("r1", "triage", t0, source="library", ideal_usd=Decimal("0.004")))
    z = Decimal(0)
    for i in range(3):
        doctor = {
            "misses": [
                {
                    "cause": "volatile_content",
                    "tokens": 1200,
                    "lost_usd": "0.0031",
                    "detail": "system[0]: timestamp '09:00:01'",
                }
            ]
            if i == 2
            else []
        }
        w.record_call(
            CallRecord(
                f"c{i}",
                "r1",
                i + 1,
                t0 + timedelta(seconds=30 * i),
                "claude-sonnet-4-5",
                usage=Usage(input_tokens=100, cache_read_tokens=1000 * i, output_tokens=50),
                cost=CostBreakdown(
                    "claude-sonnet-4-5", Decimal("0.0003"), z, z, z, Decimal("0.00075")
                ),
                decisions={"doctor": doctor},
            )
        )
    w.flush()
    detail = run_detail(ledger, "r1")
    assert detail.cache_efficiency == Decimal("0.004") / Decimal("0.00315")
    page = tmp_path / "doctor.html"
    page.write_text(
        render_html(detail, usage_report(ledger, by="day"), table=table, generated_at=t0),
        encoding="utf-8",
    )
    dom = _check(page, tmp_path)
    assert "volatile_content" in dom and "from the doctor" in dom
