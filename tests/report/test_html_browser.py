"""The HTML report in a real browser (headless Chromium): what a reader sees, measured.

The page has no script and forbids one. To measure its layout, a test loads a *copy* with a
measuring script injected and the content-security policy relaxed in that copy only; the
script writes its findings into the DOM, which ``--dump-dom`` hands back. Measured at 900 and
1,400 px with every ``<details>`` opened: no element reaches past the viewport (no sideways
scrolling), no text spills out of its box, and in every chart no text overlaps another, leaves
the chart, or covers a plotted point. Print is measured the same way with the print rules
applied to a page-wide window, and printed to PDF for real.

Skipped, saying why, only when no Chromium is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from test_html_report import BASE, CAND, DOM, HELP, NOT_FOUND, REFUSE, has_matplotlib, section, suite_items, texts_of, write_run
from test_html_report import page_of as _page_of

WIDTHS = (900, 1400)
FIVE = (BASE, CAND, "openai:terse", "openai:loose", "openai:gpt-4o-mini-2024-07-18-with-a-guardrail-prompt")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (looked for chromium, chromium-browser, google-chrome); apt-get install chromium")


def chromium(profile: Path, *args: str, timeout: float = 45) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


# Runs inside the copy. Heights first (details as the reader gets them: closed), then every
# details opened so that the answers' layout is measured too.
MEASURE_JS = r"""
(function () {
  const W = document.documentElement.clientWidth;
  const closedHeight = document.documentElement.scrollHeight;
  const summary = document.getElementById("summary");
  const tax = document.getElementById("tax-table");
  const first = summary ? summary.getBoundingClientRect().top : -1;
  for (const d of document.querySelectorAll("details")) d.open = true;
  const wide = [], spill = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > W + 0.5 || r.left < -0.5) wide.push([el.tagName.toLowerCase(), el.id, String(el.getAttribute("class") || ""), r.left, r.right]);
  }
  for (const el of document.querySelectorAll("td, th, pre, summary, p, li, h1, h2, h3, h4, code, figcaption, span, b, div")) {
    if (el.closest("svg") || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.overflowX !== "visible" && el.tagName.toLowerCase() === "pre") continue;  // scrolls itself, never the page
    if (el.scrollWidth > el.clientWidth + 1 && style.display !== "inline") spill.push([el.tagName.toLowerCase(), el.textContent.slice(0, 60), el.scrollWidth, el.clientWidth]);
  }
  const box = (r) => ({x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
  const meet = (a, b, tol) => Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > tol && Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > tol;
  const overlaps = [], outside = [], covered = [];
  let svgs = 0, texts = 0, points = 0;
  for (const svg of document.querySelectorAll("svg")) {
    const s = box(svg.getBoundingClientRect());
    if (s.x1 - s.x0 === 0) continue;
    svgs++;
    const ts = [...svg.querySelectorAll("text")].map((t) => ({text: t.textContent, b: box(t.getBoundingClientRect())})).filter((t) => t.b.x1 > t.b.x0);
    texts += ts.length;
    for (let i = 0; i < ts.length; i++) {
      const a = ts[i];
      if (a.b.x0 < s.x0 - 0.5 || a.b.x1 > s.x1 + 0.5 || a.b.y0 < s.y0 - 0.5 || a.b.y1 > s.y1 + 0.5) outside.push(a.text);
      for (let j = i + 1; j < ts.length; j++) if (meet(a.b, ts[j].b, 0.5)) overlaps.push([a.text, ts[j].text]);
    }
    const marks = [...svg.querySelectorAll('[id^="tc-point-"], #tc-ideal')].map((p) => ({id: p.id, b: box(p.getBoundingClientRect())}));
    points += marks.length;
    for (const t of ts) for (const p of marks) if (meet(t.b, p.b, 0.5)) covered.push([t.text, p.id]);
  }
  const out = document.createElement("pre");
  out.id = "taxcheck-measure";
  out.textContent = JSON.stringify({width: W, scrollWidth: document.documentElement.scrollWidth, closedHeight,
    openHeight: document.documentElement.scrollHeight, summaryTop: first, taxDisplay: tax ? getComputedStyle(tax).display : null,
    navDisplay: getComputedStyle(document.getElementById("contents")).display,
    wide, spill, svgs, texts, points, overlaps, outside, covered});
  document.body.appendChild(out);
})();
"""
RELAXED_CSP = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"


def with_script(page: str, script: str, relax: bool = True) -> str:
    """A copy of the page with ``script`` at the end of its body (and, with ``relax``, a CSP
    that lets an inline script run: in this copy only)."""
    if relax:
        page, n = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', lambda _m: RELAXED_CSP, page, count=1)
        assert n == 1
    return page.replace("</body>", f"<script>{script}</script></body>", 1)


def as_printed(page: str) -> str:
    """The page with its print rules applied on screen and its screen-only rules off."""
    return page.replace("@media screen", "@media not all").replace("@media print", "@media all")


def measure(page: str, width: int, tmp: Path) -> dict[str, Any]:
    path = tmp / f"measure-{width}.html"
    path.write_text(with_script(page, MEASURE_JS), encoding="utf-8")
    done = chromium(tmp / f"profile-{width}", f"--window-size={width},1000", "--dump-dom", path.resolve().as_uri())
    m = re.search(r'<pre id="taxcheck-measure">(.*?)</pre>', done.stdout, re.S)
    assert m, "the measuring script did not run: " + done.stdout[-500:]
    return json.loads(html.unescape(m.group(1)))


def assert_layout(r: dict[str, Any], charts: bool) -> None:
    assert r["scrollWidth"] <= r["width"], f"the page scrolls sideways: {r['scrollWidth']} > {r['width']}"
    assert not r["wide"], f"wider than the viewport: {r['wide'][:5]}"
    assert not r["spill"], f"text spilling out of its box: {r['spill'][:5]}"
    assert not r["overlaps"], f"chart labels overlap: {r['overlaps'][:5]}"
    assert not r["outside"], f"chart texts cut at the chart's edge: {r['outside'][:5]}"
    assert not r["covered"], f"chart labels cover a point: {r['covered'][:5]}"
    if charts:
        assert r["svgs"] >= 2 and r["texts"] > 30 and r["points"] >= 2, r  # the checks above had something to check


def ideal_texts() -> dict[tuple[str, int], str]:
    """A model in the ideal corner: it answers every benign prompt and refuses every harmful one."""
    return {k: (REFUSE if k[0].startswith("h") else v if not k[0].startswith("b") else HELP) for k, v in texts_of(BASE).items()}


def hostile_page(tmp: Path) -> str:
    """What nobody scripted: a 200-character model id, a 180-character item id, a 150-character
    type, a 3,000-character prompt and a 5,000-character answer, none with a space to wrap at."""
    long_model = "openai:" + "x" * 200
    items = suite_items(6)
    first = items[0]
    first.update(id="b00" + "-very-long-item-id" * 10, type="t" * 150, prompt="P" * 3000)
    texts = {BASE: texts_of(BASE, 6), long_model: texts_of(CAND, 6)}
    for m in texts:
        plain = texts[m].pop(("b00", 0))
        texts[m][(first["id"], 0)] = "R" * 5000 if m == long_model else plain
    return _page_of(write_run(tmp / "hostile.jsonl", models=(BASE, long_model), texts=texts, items=items, judge=False))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    """Two models with a judge; five models with long ids, one of them in the ideal corner of the
    trade-off plot (under its star); hostile lengths; and a run where every call failed."""
    tmp = tmp_path_factory.mktemp("pages")
    texts = {m: texts_of(BASE if k in (0, 3) else CAND) for k, m in enumerate(FIVE)}
    texts[FIVE[2]] = ideal_texts()
    items = suite_items(4)
    dead = {m: {(i["id"], 0): NOT_FOUND for i in items} for m in (BASE, CAND)}
    return {
        "two": _page_of(write_run(tmp / "two.jsonl")),
        "five": _page_of(write_run(tmp / "five.jsonl", models=FIVE, texts=texts, judge=False)),
        "hostile": hostile_page(tmp),
        "dead": _page_of(write_run(tmp / "dead.jsonl", texts=dead, items=items, judge=False)),
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("width", WIDTHS)
def test_two_models_fit_the_window(pages, width, tmp_path):
    r = measure(pages["two"], width, tmp_path)
    assert_layout(r, charts=has_matplotlib())
    assert r["taxDisplay"] == "table"  # three number columns fit as a table at 900 px
    assert r["summaryTop"] < 150  # the summary is what a reader sees first
    # the review found 23,700 px; collapsed, the page is a fraction of that
    assert r["closedHeight"] < 9000 < r["openHeight"], (r["closedHeight"], r["openHeight"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("width", WIDTHS)
def test_five_models_stack_instead_of_scrolling_sideways(pages, width, tmp_path):
    r = measure(pages["five"], width, tmp_path)
    assert_layout(r, charts=has_matplotlib())
    assert r["taxDisplay"] == "block"  # nine number columns: a block per dimension, a line per model
    if has_matplotlib():
        # the ideal model's point is under the star: its label and the star's found room elsewhere
        assert 'id="tc-point-2"' in pages["five"] and 'id="tc-label-2"' in pages["five"]


@pytest.mark.timeout(60)
def test_hostile_lengths_never_widen_the_page(pages, tmp_path):
    r = measure(pages["hostile"], 900, tmp_path)
    assert_layout(r, charts=has_matplotlib())


@pytest.mark.timeout(60)
def test_an_all_failed_run_shows_its_reasons_first_and_no_chart(pages, tmp_path):
    r = measure(pages["dead"], 1400, tmp_path)
    assert_layout(r, charts=False)
    assert r["svgs"] == 0 and r["summaryTop"] < 150 and r["closedHeight"] < 4000


@pytest.mark.timeout(60)
def test_print_layout_fits_the_page(pages, tmp_path):
    """The print rules on a page-wide window (A4 less the margins, about 690 px): nothing
    spills, the contents list is gone; and a real PDF of the collapsed page is short."""
    r = measure(as_printed(pages["two"]), 690, tmp_path)
    assert_layout(r, charts=has_matplotlib())
    assert r["navDisplay"] == "none"
    path = tmp_path / "print.html"
    path.write_text(pages["two"], encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path / "profile-pdf", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", path.resolve().as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages_count = max(int(n) for n in re.findall(rb"/Count (\d+)", data))
    assert 2 <= pages_count <= 14, pages_count


@pytest.mark.timeout(60)
def test_the_dom_holds_what_the_reader_needs(pages, tmp_path):
    """The page as served (no script injected): summary, contents, side by side with labelled
    verdicts, the breakdown by type; and no script anywhere."""
    path = tmp_path / "report.html"
    path.write_text(pages["two"], encoding="utf-8")
    dom = DOM(chromium(tmp_path / "profile", "--dump-dom", path.resolve().as_uri()).stdout)
    assert not dom.find("script")
    assert dom.find("section", id="summary") and dom.find("nav", id="contents") and dom.find("section", id="breakdown")
    assert len(dom.find("div", **{"class": "cand"})) == 1 and "Costs: " in dom.all_text and "Bonuses: " in dom.all_text
    contrasts = dom.find("details", **{"class": "contrast"})
    assert contrasts and {c["data-dimension"] for c in contrasts} >= {"over_refusal", "harmful_refusal"}
    answers = {a["data-model"] for a in dom.find("div", **{"class": "answer"})}
    assert answers == {BASE, CAND}
    sources = {a["data-source"] for a in dom.find("div") if "data-source" in a}
    assert sources == {"rule", "judge"}
    fed = {(a["data-source"], a["data-fed"]) for a in dom.find("div") if "data-source" in a}
    assert ("judge", "refusal") in fed and ("rule", "correct") in fed  # the judge fed refusals; math is the rules'
    assert "homonyms" in dom.all_text and "figurative_language" in dom.all_text


@pytest.mark.timeout(60)
def test_the_policy_forbids_a_script(pages, tmp_path):
    """A script smuggled into the page does not run under its own policy; the same script runs
    once the policy is relaxed (so the probe itself works)."""
    probe = "document.body.setAttribute('data-ran', 'yes');"
    for relax, expected in ((False, None), (True, "yes")):
        path = tmp_path / f"probe-{relax}.html"
        path.write_text(with_script(pages["two"], probe, relax=relax), encoding="utf-8")
        dom = DOM(chromium(tmp_path / f"profile-{relax}", "--dump-dom", path.resolve().as_uri()).stdout)
        (body,) = dom.find("body")
        assert body.get("data-ran") == expected, relax


def png_stats(data: bytes, max_rows: int = 150) -> tuple[int, int, int, int]:
    """(width, height, distinct colours in the top rows, distinct filtered scanlines overall).

    A tiny PNG reader (8-bit RGB/RGBA, no interlace): enough to tell a rendered page from a
    blank one without an imaging dependency. Only the top ``max_rows`` rows are unfiltered.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, [], 0, 0, 3
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp + 1
    lines = [raw[i * stride : (i + 1) * stride] for i in range(height)]
    prev = bytearray(stride - 1)
    colors = set()
    for line in lines[:max_rows]:
        ftype, f = line[0], line[1:]
        cur = bytearray(f)
        if ftype == 1:
            for i in range(bpp, len(cur)):
                cur[i] = (cur[i] + cur[i - bpp]) & 255
        elif ftype == 2:
            cur = bytearray((a + b) & 255 for a, b in zip(f, prev))
        elif ftype == 3:
            for i in range(len(cur)):
                cur[i] = (cur[i] + ((cur[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif ftype == 4:
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colors.update(bytes(cur[i : i + 3]) for i in range(0, len(cur), bpp))
        prev = cur
    return width, height, len(colors), len(set(lines))


def test_png_stats_tells_blank_from_drawn():
    def png(rows: list[bytes], width: int) -> bytes:
        def chunk(kind, body):
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        raw = b"".join(b"\x00" + r for r in rows)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

    assert png_stats(png([b"\xff" * 12] * 4, 4)) == (4, 4, 1, 1)
    assert png_stats(png([bytes([i * 40, 0, 0]) * 4 for i in range(4)], 4)) == (4, 4, 4, 4)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("width", WIDTHS)
def test_screenshot_is_drawn(pages, width, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(pages["two"], encoding="utf-8")
    shot = tmp_path / f"shot-{width}.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", f"--window-size={width},1600", path.resolve().as_uri())
    w, h, colors, distinct = png_stats(shot.read_bytes())
    assert (w, h) == (width, 1600)
    assert colors > 20, "the top of the page rendered (nearly) blank"
    assert distinct > 200, "the page is mostly uniform: did the summary and table render?"
    assert section(pages["two"], "summary")  # what the top of the screenshot shows
