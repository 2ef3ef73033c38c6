"""End to end in Chromium: a page that shows a run follows its state without being touched (the run
picker said "queued" while the run trained, and "running" after it stopped)."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_dashboard import open_page, wait_idle
from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_run_picker_follows_the_runs_state_with_no_click(pg, tiny_dataset, fake_run, tmp_workspace):
    run = fake_run("r1", done_epochs=1, epochs=3, dataset=str(tiny_dataset))
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "waiting", "pid": None, "queued_at": time.time()}))
    port = free_port()
    log = open(tmp_workspace / "streamlit.log", "wb")
    proc = start_streamlit(tmp_workspace, port, log, extra_env={"VAE_LAB_STANDBY": "0", "VAE_LAB_READONLY": "1"})
    try:
        open_page(pg, f"http://127.0.0.1:{port}", "reconstructions", "Reconstructions")
        picker = pg.get_by_label("Run", exact=True).first  # the run picker's input holds its label
        assert picker.input_value() == "r1  (waiting)"
        (run / "status.json").write_text(json.dumps({**status, "state": "stopped", "message": "taken out"}))
        pg.wait_for_function(
            "() => document.querySelector('input[aria-label=\"Run\"]').value.includes('(stopped)')", timeout=60_000
        )  # no click: the page followed the run's state
        wait_idle(pg)
    finally:
        stop_streamlit(proc)
        log.close()
