"""Nothing clipped at 1280 px: chips, buttons and plots fit their columns (real server, headless Chromium)."""

from __future__ import annotations

import pytest

from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

pytestmark = pytest.mark.e2e

# Any text cut with an ellipsis (chips, buttons, metric labels, select boxes), any figure or table wider
# than its column.
CLIPPED = """() => {
  const out = [];
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    if (getComputedStyle(el).textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1) {
      out.push(el.textContent.slice(0, 60));
    }
  }
  for (const el of document.querySelectorAll('.js-plotly-plot, [data-testid="stDataFrame"]')) {
    const r = el.getBoundingClientRect(), p = el.parentElement.getBoundingClientRect();
    if (r.right > p.right + 1 || r.left < p.left - 1) out.push('figure/table wider than its column');
  }
  return out;
}"""


@pytest.fixture
def home(tiny_dataset, fake_run, tmp_workspace):
    fake_run("seed-punctured-tiny-burgess-b0.001-g0-s0-20261129-030000", dataset=str(tiny_dataset), gamma=0.0)
    fake_run("seed-punctured-tiny-burgess-b0.001-g0.0001-s0-20261129-030100", dataset=str(tiny_dataset), gamma=1e-4)
    return tmp_workspace


def settle(page):
    page.wait_for_selector('[data-testid="stAppViewContainer"]')
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stElementContainer\"]').length > 3")


def test_compare_embedding_and_reconstructions_fit_1280_px(browser, home):
    port = free_port()
    proc = start_streamlit(home, port, extra_env={"VAE_LAB_STANDBY": "0"})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        for path, ready in (
            ("compare", "Which latent tracks which factor"),
            ("reconstructions", "Any sample"),
            ("embedding", "Principal axes"),
        ):
            page.goto(f"http://127.0.0.1:{port}/{path}")
            page.get_by_text(ready).first.wait_for(timeout=60_000)
            settle(page)
            if path == "embedding":  # all three split chips
                for split in ("validation", "hole"):
                    box = page.locator('[data-testid="stMultiSelect"] input[role="combobox"]').first
                    box.click()
                    box.press_sequentially(split)
                    page.get_by_role("option", name=split).first.wait_for()
                    page.keyboard.press("ArrowDown")
                    page.keyboard.press("Enter")
                    page.keyboard.press("Escape")
                    page.locator(f'[data-tag][aria-label="{split}"]').first.wait_for()
                    settle(page)
                assert page.locator('[data-testid="stMultiSelect"]').first.locator("[data-tag]").count() == 3
            if path != "reconstructions":  # the chips are drawn before they are checked
                page.locator("[data-tag] > span[title]").first.wait_for()
            clipped = page.evaluate(CLIPPED)
            assert clipped == [], (path, clipped)
    finally:
        context.close()
        stop_streamlit(proc)
