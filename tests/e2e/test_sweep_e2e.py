"""One pass of the Sweeps page in Chromium against a real `streamlit run`: build a grid, read the answer,
and a click on a dot opens that run on the Embedding page."""

from __future__ import annotations

import os

import pytest

from tests.streamlit_server import free_port, start_streamlit, stop_streamlit
from tests.sweep_fixtures import fake_finished_sweep

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SHOTS = os.environ.get("VAE_LAB_SHOTS")  # a folder to save screenshots in (for a person to look at)


@pytest.fixture
def sweep_server(tiny_dataset, tmp_workspace):
    fake_finished_sweep(tmp_workspace, tiny_dataset)
    port = free_port()
    log = open(tmp_workspace / "streamlit.log", "wb")
    proc = start_streamlit(tmp_workspace, port, log)
    yield f"http://127.0.0.1:{port}"
    stop_streamlit(proc)
    log.close()


def _shot(pg, name):
    if SHOTS:
        pg.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_sweep_page_answer_and_a_dot_opens_its_run(browser, sweep_server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        pg.goto(sweep_server + "/sweep")
        pg.get_by_text("no evidence of a difference").first.wait_for()
        pg.get_by_text("9/9").first.wait_for()
        pg.get_by_text("New sweep").click()
        pg.get_by_text("Swept settings").wait_for()
        _shot(pg, "sweep_answer.png")
        dots = pg.locator(".js-plotly-plot .boxlayer path.point")
        dots.first.wait_for()
        assert dots.count() == 9
        dots.nth(8).click(force=True)
        pg.wait_for_url("**/embedding")
        pg.get_by_text("no epoch snapshot yet").wait_for()  # the fixture's runs have no snapshots
        picker = pg.locator('[data-testid="stSelectbox"]').first
        _shot(pg, "sweep_dot_opens_embedding.png")
        assert "gsweep/r00" in picker.inner_text() + (
            picker.locator("input").first.input_value() if picker.locator("input").count() else ""
        )
    finally:
        context.close()
