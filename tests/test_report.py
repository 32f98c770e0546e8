"""The HTML report and the Markdown summary.

Rendered for the synthetic demo and for real datasets (Online Retail: transactions only; Mall
Customers: a customers table without spend), checked for content (each section with the run's own
numbers), self-containment, determinism, size and speed, and opened in headless Chromium, which
must load every image without a console error; a full-page screenshot is taken.
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
import subprocess
import tempfile
import time
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
    assert src.startswith("data:image/png;base64,"), src[:40]
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data.startswith(PNG_MAGIC)
    return data


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
# and after load writes the result into the DOM for --dump-dom.
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
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  var out = document.createElement('pre');
  out.id = '__probe';
  out.textContent = JSON.stringify({images: imgs.length, broken: broken.length,
    broken_alt: broken.map(function (i) { return i.alt.slice(0, 60); }),
    errors: window.__errors, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium not found (make test installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
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


def test_demo_report_is_self_contained_small_fast_and_deterministic(demo, demo_html) -> None:
    page, seconds = demo_html
    _check_self_contained(page)
    assert len(page.encode("utf-8")) < 2.5 * MB
    assert seconds < 10
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
    page, seconds = _timed_render(big)
    assert len(page.encode("utf-8")) < 5 * MB
    assert seconds < 20
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
    page, seconds = retail_html
    assert seconds < 10
    assert len(page.encode("utf-8")) < 5 * MB
    _check_self_contained(page)
    _check_anchors(page)
    sections = _sections(page)
    overview = _text(sections["overview"])
    assert "541,909" in overview and "missing customer_id: 135,080" in overview
    assert "2011-12-09" in overview
    assert f"Chosen k = {retail.k}." in _text(sections["k"])
    glance = _text(sections["segments"])
    assert "revenue share" in glance
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
    page, seconds = mall_html
    assert seconds < 10
    _check_self_contained(page)
    sections = _sections(page)
    glance = sections["segments"]
    assert "revenue share" not in glance and "ranked by size" in glance
    assert "Value per customer" not in page
    for s in mall.profiles.segments:
        assert s.name in _text(glance)
    assert "Gender" in _text(sections["cards"])
    md = render_summary_md(mall)
    assert "Revenue share" not in md and mall.profiles.segments[0].name in md


# ------------------------------------------------------------------------------------ browser


def test_browser_probe_catches_broken_images_and_console_errors(tmp_path: Path) -> None:
    page = ("<!doctype html><html><head><meta charset='utf-8'></head><body>"
            "<img src='data:image/png;base64,AAAA' alt='broken'>"
            "<script>console.error('boom')</script></body></html>")
    found = browser_check(page, tmp_path, "control")
    assert found["broken"] == 1
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
