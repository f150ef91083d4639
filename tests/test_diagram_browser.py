"""The Architecture page's structure diagram, measured as Chromium draws it (issue #21 §5): at 1280×800 and
1024×700 the graphviz SVG fits its panel, no block is taller than the window, the text stays readable once
scaled, no arrow runs through a label, the block chips carry the book's names, and in Chinese the diagram
speaks Chinese.

One Streamlit server, shared with tests/test_e2e_browser.py (tests/conftest.py), and one tab for every case; the
figures measured are printed (`pytest -s`) and saved to tests/artifacts/diagram_sizes.json.
"""
from __future__ import annotations

import json
import re

import pytest

from test_e2e_browser import ARTIFACTS, chromium, idle, no_exception

VIEWPORTS = ((1280, 800), (1024, 700))
ARCHS = ("lenet", "vgg", "nin", "googlenet", "resnet", "densenet", "mobilenet_v2")
MIN_FONT_PX = 9.0
SIZES: dict = {}

# Everything the test reads from the page, in one evaluation: the panel, the SVG, every text's size on
# screen, every block's (cluster's) height, and the edge paths sampled along their length (screen coordinates)
# against every label's box.
MEASURE = """
() => {
  const panel = document.querySelector('.st-key-arch_diagram');
  const svg = panel && panel.querySelector('[data-testid="stGraphVizChart"] svg');
  if (!svg) return null;
  const r = (e) => { const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
  const texts = [...svg.querySelectorAll('g.node text, g.cluster text, g.edge text')].filter(t => t.textContent.trim());
  const fonts = texts.map(t => {
    const m = t.getScreenCTM();
    const size = parseFloat(t.getAttribute('font-size') || getComputedStyle(t).fontSize);
    return size * Math.hypot(m.a, m.b);
  });
  const boxes = texts.map(t => ({text: t.textContent, edge: t.closest('g.edge') ? t.closest('g.edge').id : null,
                                 ...r(t)}));
  const hits = [];
  for (const g of svg.querySelectorAll('g.edge')) {
    for (const p of g.querySelectorAll('path')) {
      const m = p.getScreenCTM();
      const len = p.getTotalLength();
      for (let s = 0; s <= len; s += 1) {
        const q = p.getPointAtLength(s);
        const x = m.a * q.x + m.c * q.y + m.e, y = m.b * q.x + m.d * q.y + m.f;
        for (const b of boxes) {
          if (b.edge === g.id) continue;
          if (x > b.x + 1 && x < b.x + b.w - 1 && y > b.y + 1 && y < b.y + b.h - 1) {
            hits.push(`${g.querySelector('title') ? g.querySelector('title').textContent : g.id} crosses "${b.text}"`);
          }
        }
      }
    }
  }
  return {panel: r(panel), svg: r(svg), fonts: fonts, minFont: Math.min(...fonts),
          blocks: [...svg.querySelectorAll('g.cluster')].map(c => ({title: c.querySelector('text') ?
                   c.querySelector('text').textContent : '', ...r(c)})),
          nodes: [...svg.querySelectorAll('g.node')].map(n => r(n)),
          text: texts.map(t => t.textContent).join('\\n'),
          hits: [...new Set(hits)],
          chips: [...document.querySelectorAll('.st-key-arch_block button')].map(b => b.innerText.trim())};
}
"""


@pytest.fixture(scope="module")
def server(plain_app):
    return plain_app


@pytest.fixture(scope="module")
def browser(plain_app):
    with chromium() as b:
        yield b
    (ARTIFACTS / "diagram_sizes.json").write_text(json.dumps(SIZES, indent=1, sort_keys=True))


def _measure(pg) -> dict:
    """MEASURE once d3-graphviz has laid out and drawn the SVG (after the element mounts) and it holds still."""
    pg.wait_for_selector('.st-key-arch_diagram [data-testid="stGraphVizChart"] svg g.node')
    last, m = None, None
    for _ in range(40):
        m = pg.evaluate(MEASURE)
        key = m and (round(m["svg"]["w"]), round(m["svg"]["h"]), round(m["panel"]["w"]), len(m["nodes"]))
        if key and key == last:
            break
        last = key
        pg.wait_for_timeout(250)
    return m


def _shot(pg, name: str) -> None:
    """The chips and the diagram (the page scrolls inside Streamlit's main block, so a full-page shot misses them)."""
    for key in ("arch_block", "arch_diagram"):
        box = pg.locator(f".st-key-{key}").first
        box.scroll_into_view_if_needed()
        box.screenshot(path=str(ARTIFACTS / f"{name}-{key.split('_')[1]}.png"))


@pytest.fixture(scope="module")
def page(browser):
    """One tab for the module: each case opens its link in it (a new tab starts a renderer process, ~1.5 CPU-s)."""
    pg = browser.new_page(viewport={"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
    pg.set_default_timeout(60_000)
    yield pg
    pg.close()


def _at_both_widths(pg, server, query: str, name: str) -> list[tuple[tuple[int, int], dict]]:
    """The Architecture page opened with `query` at 1280×800, then resized to 1024×700 (the same as opening it
    there: measured); the measurements at each, recorded in SIZES, with a screenshot of each."""
    pg.set_viewport_size({"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
    out = []
    pg.goto(f"{server}/?{query}")
    idle(pg, settle_ms=600)
    no_exception(pg, query)
    for w, h in VIEWPORTS:
        pg.set_viewport_size({"width": w, "height": h})
        idle(pg, settle_ms=300)
        m = _measure(pg)
        SIZES[f"{name}@{w}x{h}"] = {
            "svg_w": round(m["svg"]["w"]), "svg_h": round(m["svg"]["h"]), "panel_w": round(m["panel"]["w"]),
            "panel_h": round(m["panel"]["h"]), "min_font_px": round(m["minFont"], 1),
            "tallest_block_h": round(_tallest(m)), "crossings": len(m["hits"])}
        print(name, (w, h), SIZES[f"{name}@{w}x{h}"])
        _shot(pg, f"diagram-{name}-{w}")
        out.append(((w, h), m))
    return out


def _tallest(m: dict) -> float:
    return max([b["h"] for b in m["blocks"]] + [n["h"] for n in m["nodes"]])


def _fits_and_reads(m: dict, viewport: tuple[int, int], name: str) -> None:
    w, h = viewport
    where = (name, viewport)
    # the SVG is scaled to its panel: never wider, and the panel is the diagram (no scroll box around it)
    assert m["svg"]["w"] <= m["panel"]["w"] + 1, (where, m["svg"], m["panel"])
    assert m["svg"]["h"] <= m["panel"]["h"] + 1, (where, m["svg"], m["panel"])
    # no block (a cluster or a lone box) taller than the window; the whole diagram a few screens at most
    assert _tallest(m) <= 0.75 * h, (where, _tallest(m))
    assert m["svg"]["h"] <= 2.5 * h, (where, m["svg"]["h"])
    # readable once scaled
    assert m["minFont"] >= MIN_FONT_PX, (where, m["minFont"])
    # no arrow runs through a box's, a block's or another arrow's label
    assert not m["hits"], (where, m["hits"][:10])
    # the chips say the book's names, never a module index ("0", "8", "Residual 1.0")
    assert m["chips"], (where, "no block chips")
    for chip in m["chips"]:
        assert not re.fullmatch(r"[\d.\s–-]+", chip), (where, chip)
        assert not re.search(r"\b\d+\.\d+\b", chip), (where, chip)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_diagram_fits_its_panel_and_reads(server, page, arch):
    for viewport, m in _at_both_widths(page, server, f"arch={arch}", arch):
        _fits_and_reads(m, viewport, arch)


ENGLISH = re.compile(r"\b(conv|avgpool|avg pool|max ?pool|flatten|dense|concat|input|pool|stride|shortcut|"
                     r"depthwise|pointwise|expand|project|block|transition)\b", re.I)


@pytest.mark.parametrize("arch", ("lenet", "resnet", "densenet", "googlenet"))
def test_the_diagram_speaks_chinese(server, page, arch):
    """In Chinese the labels are d2l-zh's (卷积, 平均汇聚, 展平, 全连接, ...) and the chips too; the Chinese labels,
    wider than the English ones, fit and read as well."""
    for viewport, m in _at_both_widths(page, server, f"arch={arch}&lang=zh", f"{arch}-zh"):
        _fits_and_reads(m, viewport, f"{arch}-zh")
        assert m["text"].strip()
        found = sorted({x.lower() for x in ENGLISH.findall(m["text"])})
        assert not found, (found, m["text"][:600])
        assert any(re.search(r"[\u4e00-\u9fff]", c) for c in m["chips"]), m["chips"]
