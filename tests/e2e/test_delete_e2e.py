"""End to end in Chromium: confirming a dataset's delete and clicking the same spot again deletes
only that dataset (the confirmation does not reopen on the next row)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.test_dashboard import open_page, shot, wait_idle
from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# VAE_LAB_SHOTS: a folder to save screenshots in, for a person to look at (none when unset)
SHOTS = Path(os.environ["VAE_LAB_SHOTS"]) / "safety" if os.environ.get("VAE_LAB_SHOTS") else None


@pytest.fixture(scope="module")
def three_sets(tmp_path_factory):
    """A server whose data folder holds three small datasets."""
    from vae.data import datasets
    from vae.data import presets

    home = tmp_path_factory.mktemp("delete_home")
    for name in ("ds-a", "ds-b", "ds-c"):
        datasets.write_dataset(presets.preset_spec("seed-full", n=12, image_size=32), home / "datasets" / name)
    port = free_port()
    log = open(home / "streamlit.log", "wb")
    proc = start_streamlit(home, port, log, extra_env={"VAE_LAB_STANDBY": "0"})
    yield home, f"http://127.0.0.1:{port}"
    stop_streamlit(proc)
    log.close()


def test_double_click_on_yes_delete_removes_only_that_dataset(pg, three_sets):
    home, url = three_sets
    open_page(pg, url, "dataset", "Dataset")
    pg.get_by_role("heading", name="Datasets on disk").scroll_into_view_if_needed()
    pg.locator("[class*=st-key-ask_delete][class*=dataset-ds-a] button").click()
    wait_idle(pg)
    yes = pg.get_by_role("button", name="Yes, delete ds-a")
    yes.wait_for()
    assert "No run uses it" in pg.get_by_test_id("stAlert").first.inner_text()
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot(pg, SHOTS / "dataset_delete_confirmation.png")
    yes.scroll_into_view_if_needed()
    box = yes.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.dblclick(x, y)  # confirm, and click the same spot again at once
    wait_idle(pg)
    pg.get_by_text("Deleted ds-a").wait_for()
    pg.mouse.click(x, y)  # and once more after the page settled
    wait_idle(pg)
    if SHOTS is not None and SHOTS.exists():
        shot(pg, SHOTS / "dataset_after_double_click.png")
    names = sorted(p.name for p in (home / "datasets").iterdir() if not p.name.startswith("."))
    assert names == ["ds-b", "ds-c"]
    assert pg.get_by_role("button", name="Yes, delete ds-b").count() == 0
