"""The HTML report and the Markdown summary.

Rendered for the synthetic demo and for real datasets (Online Retail: transactions only; Mall
Customers: a customers table without spend), checked for content (each section with the run's own
numbers), self-containment, determinism, size and speed. Every embedded PNG is decoded in full in
Python, and the page is opened in headless Chromium, which must draw every image completely
without a console error; a full-page screenshot is taken. A missing browser or data folder fails
these tests, never skips them.
Set ``CUSTSEG_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from custseg.pipeline import run_segmentation
from custseg.report.plots import segment_colour
from custseg.report.render import render_report, render_summary_md
from custseg.synth import generate

MB = 1_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------ fixtures


def _timed_render(result) -> tuple[str, float]:
    t0 = time.perf_counter()
    text = render_report(result)
    return text, time.perf_counter() - t0


@pytest.fixture(scope="module")
def demo():
    data = generate(n_customers=2000, seed=0)
    return run_segmentation(data.customers, data.transactions)


@pytest.fixture(scope="module")
def demo_html(demo) -> tuple[str, float]:
    return _timed_render(demo)


@pytest.fixture(scope="module")
def retail(real_data: Path):
    return run_segmentation(transactions=real_data / "online_retail.csv.gz")


@pytest.fixture(scope="module")
def retail_html(retail) -> tuple[str, float]:
    return _timed_render(retail)


@pytest.fixture(scope="module")
def mall(real_data: Path):
    return run_segmentation(customers=real_data / "Mall_Customers.csv")


@pytest.fixture(scope="module")
def mall_html(mall) -> tuple[str, float]:
    return _timed_render(mall)


# ------------------------------------------------------------------------------------ helpers


def _text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    fragment = re.sub(r"<(style|script)\b.*?</\1>", " ", fragment, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([\w-]+)">(.*?)</section>', page, flags=re.S))


def _cards(page: str) -> dict[int, tuple[str, str]]:
    """segment id -> (card colour, card HTML)."""
    found = re.findall(r'<article class="card" style="--c: (#[0-9A-Fa-f]{6})" '
                       r'id="segment-(\d+)">(.*?)</article>', page, flags=re.S)
    return {int(sid): (colour, body) for colour, sid, body in found}


def _images(fragment: str) -> list[dict[str, str]]:
    out = []
    for tag in re.findall(r"<img\b[^>]*>", fragment):
        attrs = {k: html.unescape(v) for k, v in re.findall(r'(\w+)="([^"]*)"', tag)}
        out.append(attrs)
    return out


def _png(src: str) -> bytes:
    """The PNG behind a data URI, checked to decode in full (see :func:`_decode_png`)."""
    assert src.startswith("data:image/png;base64,"), src[:40]
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    _decode_png(data)
    return data


def _decode_png(data: bytes) -> tuple[int, int]:
    """Decode a PNG completely: every chunk whole and its CRC right, IHDR first and IEND last,
    the IDAT stream inflating to exactly ``height * (1 + stride)`` bytes; then Pillow decodes
    every pixel (a truncated file raises) and the image is not one flat colour. Returns
    (width, height). A header alone is not enough: browsers and ``Image.open`` read the size
    from IHDR and would accept a file cut short after it."""
    from PIL import Image

    assert data.startswith(PNG_MAGIC)
    pos, chunks, idat = len(PNG_MAGIC), [], b""
    while pos < len(data):
        assert pos + 8 <= len(data), f"chunk header cut off at byte {pos} of {len(data)}"
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        assert len(body) == length and pos + 12 + length <= len(data), \
            f"{kind!r} chunk cut off at byte {len(data)}"
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        elif kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
    assert interlace == 0  # matplotlib writes non-interlaced PNGs
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    stride = (width * channels * depth + 7) // 8
    assert len(zlib.decompress(idat)) == height * (1 + stride)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (width, height)
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 1, "a blank image"
    return width, height


def _has_colour(png: bytes, colour: str, min_pixels: int = 50) -> bool:
    from PIL import Image

    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return int((pixels == rgb).all(axis=1).sum()) >= min_pixels


def _check_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, flags=re.I)
    assert "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page
    for img in _images(page):
        _png(img["src"])
        assert len(img.get("alt", "")) > 30, img.get("alt")


def _check_anchors(page: str) -> None:
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    targets = set(re.findall(r'href="#([^"]+)"', page))
    assert targets and targets <= ids, targets - ids


# ------------------------------------------------------------------------------------ browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]

# Injected only into the test's copy of the report (the shipped report has no script, and its
# Content-Security-Policy forbids any): records failed loads, CSP violations and console errors,
# draws every image on a canvas to see that it decoded, and after load writes the result into the
# DOM for --dump-dom.
_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? 'failed to load ' + t.tagName : 'error: ' + e.message);
}, true);
document.addEventListener('securitypolicyviolation', function (e) {
  window.__errors.push('CSP: ' + e.violatedDirective + ' ' + e.blockedURI);
});
var __ce = console.error;
console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
  return __ce.apply(console, arguments);
};
function __decoded(img) {
  // draw the image as it decoded: every pixel must be painted (a PNG cut short after its
  // header has a size but paints nothing, or only its first rows) and some not white
  if (!img.complete || img.naturalWidth === 0) return false;
  var w = Math.min(img.naturalWidth, 400);
  var h = Math.max(1, Math.round(img.naturalHeight * w / img.naturalWidth));
  var c = document.createElement('canvas');
  c.width = w; c.height = h;
  var ctx = c.getContext('2d');
  try { ctx.drawImage(img, 0, 0, w, h); } catch (e) { return false; }
  var px = ctx.getImageData(0, 0, w, h).data, bare = 0, ink = 0;
  for (var i = 0; i < px.length; i += 4) {
    if (px[i + 3] < 255) bare++;
    else if (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250) ink++;
  }
  return bare === 0 && ink > 0;
}
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !__decoded(i); });
  var out = document.createElement('pre');
  out.id = '__probe';
  out.textContent = JSON.stringify({images: imgs.length, broken: broken.length,
    broken_alt: broken.map(function (i) { return i.alt.slice(0, 60); }),
    errors: window.__errors, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    """The Chromium executable; a missing browser fails the test (never skips it): ``make test``
    installs Debian's chromium, so every machine runs the same browser checks as CI."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium not found on PATH: run `make browser` (or `make test`, which "
                    "installs Debian's chromium), or install chromium yourself")
    return exe


def _run_chromium(args: list[str]) -> subprocess.CompletedProcess:
    exe = _chromium()
    with tempfile.TemporaryDirectory(prefix="custseg-chromium-") as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)


def browser_check(page: str, workdir: Path, name: str) -> dict:
    """Open ``page`` in headless Chromium: returns the probe's findings (image count, broken
    images, errors, page height) and the path of a full-page screenshot."""
    probe_file = workdir / f"{name}-probe.html"
    probe_file.write_text(page.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    done = _run_chromium(["--window-size=1280,900", "--dump-dom", probe_file.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    m = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, flags=re.S)
    assert m, "the probe did not report: the page did not finish loading"
    found = json.loads(html.unescape(m.group(1)))

    report_file = workdir / f"{name}.html"
    report_file.write_text(page, encoding="utf-8")
    shot = workdir / f"{name}.png"
    height = max(900, min(int(found["height"]), 12_000))  # tall, within GPU-less limits
    done = _run_chromium([f"--window-size=1280,{height}", f"--screenshot={shot}",
                          report_file.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    found["screenshot"] = shot
    keep = os.environ.get("CUSTSEG_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return found


def _check_screenshot(path: Path) -> None:
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 50_000
    with Image.open(path) as im:
        assert im.size[0] == 1280 and im.size[1] >= 900
        small = np.asarray(im.convert("RGB").resize((160, im.size[1] // 8))).reshape(-1, 3)
        assert len(np.unique(small, axis=0)) > 200  # charts and text, not a blank page


# ------------------------------------------------------------------------------------ demo


def test_demo_sections_show_the_run(demo, demo_html) -> None:
    page, _ = demo_html
    sections = _sections(page)
    assert {"overview", "k", "map", "segments", "cards"} <= set(sections)
    _check_anchors(page)
    sel = demo.selection
    # the report opens on results: the executive summary, then the segments; how k was chosen
    # and the data's transforms and ledger come last
    order = sorted(sections, key=lambda sid: page.index(f'<section id="{sid}">'))
    assert order[:5] == ["segments", "cards", "map", "k", "overview"], order
    k_words = _text(sections["k"])
    for word in ("elbow", "silhouette", "Calinski-Harabasz", "Davies-Bouldin", "stability"):
        assert word in k_words, word

    overview = _text(sections["overview"])
    for source in demo.summary()["rows"].values():
        assert f"{source['read']:,}" in overview and f"{source['used']:,}" in overview
        for reason, n in source["excluded"].items():
            assert f"{reason}: {n:,}" in overview
    assert demo.as_of.isoformat() in overview
    assert "Recency (days)" in overview and "log(1 + x)" in overview
    assert "Category shares (8)" in overview and "seed" in overview and "scikit-learn" in overview

    k_text = _text(sections["k"])
    assert f"Chosen k = {demo.k}." in k_text
    assert sel.reason in k_text and sel.rule in k_text
    chosen = re.search(r'<tr class="chosen">(.*?)</tr>', sections["k"], flags=re.S)
    assert chosen and _text(chosen.group(1)).startswith(str(demo.k))
    assert f"{sel.score_for(demo.k).silhouette:.3f}" in _text(chosen.group(1))
    assert len(re.findall(r"<tr", sections["k"])) == len(sel.scores) + 1
    # the structure verdict, with what it means, before the first section; and in summary.json
    verdict, meaning = sel.structure_message.split(":", 1)
    meaning = meaning.strip()
    assert (f"Cluster structure {verdict}. {meaning[0].upper()}{meaning[1:]}."
            in _text(page.split('id="overview"')[0]))
    summary = demo.summary()
    assert summary["structure"] == sel.structure in {"strong", "moderate", "weak"}
    assert summary["no_strong_structure"] == (sel.structure == "weak")
    assert summary["k_selection"]["structure_evidence"]["k"] == demo.k

    assert "All 2,000 customers" in _text(sections["map"])

    glance = _text(sections["segments"])
    for s in demo.profiles.segments:
        assert s.name in glance and f"{s.size:,}" in glance
        assert f"{s.revenue_share * 100:.1f}%" in glance

    cards = _cards(page)
    assert sorted(cards) == [s.segment_id for s in demo.profiles.segments]
    for i, s in enumerate(demo.profiles.segments):
        colour, body = cards[s.segment_id]
        assert colour == segment_colour(i)
        text = _text(body)
        assert s.name in text and f"{s.size:,}" in text
        assert s.evidence[0] in text and s.recommendations[0]["action"] in text
        assert s.insights[0] in text
        assert "Mix against all customers" in text and "Occupation" in text
        assert len(_images(body)) == 2  # distinguishing features and distributions


def test_demo_plots_use_segment_colours(demo, demo_html) -> None:
    page, _ = demo_html
    cards = _cards(page)
    for i, s in enumerate(demo.profiles.segments):
        colour = segment_colour(i)
        distinguishing, distributions = _images(cards[s.segment_id][1])
        assert s.name in distinguishing["alt"] and s.name in distributions["alt"]
        assert _has_colour(_png(distinguishing["src"]), colour)
        assert _has_colour(_png(distributions["src"]), colour)
    map_img = _images(_sections(page)["map"])[0]
    for i in range(len(demo.profiles.segments)):
        assert _has_colour(_png(map_img["src"]), segment_colour(i))


def test_demo_report_is_self_contained_small_and_deterministic(demo, demo_html) -> None:
    page, _ = demo_html
    _check_self_contained(page)
    assert len(page.encode("utf-8")) < 2.5 * MB
    assert render_report(demo) == page  # byte-identical: no timestamps, no timings, seeded


def test_summary_md(demo) -> None:
    md = render_summary_md(demo)
    assert md.startswith(f"# Customer segments: {demo.k} segments of 2,000 customers")
    assert demo.selection.reason in md
    assert "| # | Segment | Customers | Share | Revenue share | Value per customer |" in md
    for s in demo.profiles.segments:
        assert f"| {s.segment_id} | {s.name} | {s.size:,} |" in md
        assert f"## {s.segment_id}. {s.name}" in md
    assert len(md) < 8_000
    assert render_summary_md(demo) == md


def test_large_run_is_sampled_and_text_is_escaped(demo) -> None:
    """A run 100× the demo (customers repeated) keeps the same size: every per-customer plot is
    a fixed-size sample, and the captions say so. Names are escaped, never markup."""
    big = copy.copy(demo)
    reps = 100
    frame = demo.features.frame
    tiled = frame.iloc[np.tile(np.arange(len(frame)), reps)]
    big.features = replace(demo.features, frame=tiled)
    big.labels = np.tile(demo.labels, reps)
    big.segment_map = replace(demo.segment_map, n_customers=len(tiled))
    big.silhouette = replace(demo.silhouette, n_customers=len(tiled))
    big.profiles = copy.deepcopy(demo.profiles)
    big.profiles.segments[0].name = "<script>alert('x')</script> & Co"
    page, _ = _timed_render(big)
    assert len(page.encode("utf-8")) < 5 * MB
    _check_self_contained(page)
    assert "alert(" not in page.replace("alert(&#39;x&#39;)", "")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in page
    assert f"Sampled {demo.segment_map.sample_size:,} of {len(tiled):,} customers" in page
    assert f"of {len(tiled):,} customers overall" in page
    assert "sampled 5,000 of" in page
    md = render_summary_md(big)
    assert "<script>alert('x')</script> & Co" in md  # Markdown is plain text for a ticket


# ------------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_online_retail_report(retail, retail_html) -> None:
    page, _ = retail_html
    assert len(page.encode("utf-8")) < 5 * MB
    _check_self_contained(page)
    _check_anchors(page)
    sections = _sections(page)
    overview = _text(sections["overview"])
    assert "541,909" in overview and "missing customer_id: 135,080" in overview
    assert "2011-12-09" in overview
    assert f"Chosen k = {retail.k}." in _text(sections["k"])
    glance = _text(sections["segments"])
    assert "value share" in glance
    for s in retail.profiles.segments:
        assert s.name in glance and f"{s.size:,}" in glance
    assert "Mix against all customers" not in page  # no categories, channels or demographics
    cards = _cards(page)
    assert len(cards) == retail.k
    sil = retail.silhouette
    if sil.sample_size < sil.n_customers:
        assert f"sample of {sil.sample_size:,} of {sil.n_customers:,} customers" in page


@pytest.mark.realdata
def test_customers_only_report_without_spend(mall, mall_html) -> None:
    page, _ = mall_html
    _check_self_contained(page)
    sections = _sections(page)
    glance = sections["segments"]
    assert "value share" not in glance and "ranked by size" in glance
    assert "Value per customer" not in page
    for s in mall.profiles.segments:
        assert s.name in _text(glance)
    assert "Gender" in _text(sections["cards"])
    assert "Income (k$)" in _text(sections["cards"])  # the unit of the column name is kept
    md = render_summary_md(mall)
    assert "Revenue share" not in md and mall.profiles.segments[0].name in md


# ------------------------------------------------------------------------------------ browser


def _control_png() -> bytes:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (320, 200), "white")
    ImageDraw.Draw(im).rectangle((20, 20, 300, 180), fill=(31, 119, 180))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_png_decoding_catches_a_truncated_image() -> None:
    png = _control_png()
    assert _decode_png(png) == (320, 200)
    for cut in (200, len(png) - 20):  # a header and a little; all but the last chunk's end
        with pytest.raises(AssertionError):
            _decode_png(png[:cut])


def test_browser_probe_catches_broken_images_and_console_errors(tmp_path: Path) -> None:
    png = _control_png()
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    cut = "data:image/png;base64," + base64.b64encode(png[:200]).decode("ascii")
    page = ("<!doctype html><html><head><meta charset='utf-8'></head><body>"
            "<img src='data:image/png;base64,AAAA' alt='broken'>"
            f"<img src='{uri}' alt='whole'><img src='{cut}' alt='truncated'>"
            "<script>console.error('boom')</script></body></html>")
    found = browser_check(page, tmp_path, "control")
    assert found["images"] == 3
    assert found["broken"] == 2 and sorted(found["broken_alt"]) == ["broken", "truncated"]
    assert any("boom" in e for e in found["errors"])


@pytest.mark.parametrize("which", ["demo", pytest.param("retail", marks=pytest.mark.realdata),
                                   pytest.param("mall", marks=pytest.mark.realdata)])
def test_report_in_headless_chromium(which: str, request, tmp_path: Path) -> None:
    page, _ = request.getfixturevalue(f"{which}_html")
    found = browser_check(page, tmp_path, f"report-{which}")
    assert found["images"] == len(_images(page)) > 0
    assert found["broken"] == 0, found["broken_alt"]
    assert found["errors"] == []
    _check_screenshot(found["screenshot"])
