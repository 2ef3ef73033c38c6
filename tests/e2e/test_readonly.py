"""End to end in Chromium: a read-only viewer shows the runs with no way to change them, and the Train
page shows the queue in order. Screenshots go to $VAE_LAB_SHOTS/safety/ when that folder exists."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_dashboard import open_page, shot, wait_idle
from tests.streamlit_server import free_port, start_streamlit, stop_streamlit
from vae.base.fileio import atomic_write_json

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# VAE_LAB_SHOTS: a folder to save screenshots in, for a person to look at (none when unset)
SHOTS = Path(os.environ["VAE_LAB_SHOTS"]) / "safety" if os.environ.get("VAE_LAB_SHOTS") else None


def save(pg, name):
    if SHOTS is not None and SHOTS.exists():
        if pg.locator(".js-plotly-plot").count():
            pg.locator(".js-plotly-plot").first.wait_for()
        pg.wait_for_timeout(3000)  # plotly and the tables' canvases draw after the script run
        shot(pg, SHOTS / name)


@pytest.fixture
def lab_with_a_training_run(tiny_dataset, fake_run, tmp_workspace):
    """A finished run and one 'training' (a live process, heartbeat kept fresh) on a real dataset."""
    fake_run("finished-run", epochs=3, dataset=str(tiny_dataset))
    trainer = subprocess.Popen(["sleep", "3600"], start_new_session=True)  # outlives the test (a loaded machine's too)
    live = fake_run(
        "training-run", state="running", done_epochs=2, epochs=6, pid=trainer.pid, dataset=str(tiny_dataset)
    )
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(1.0):
            st = json.loads((live / "status.json").read_text())
            # atomic, as the trainer writes it: a server reading a half-written file saw no running run
            atomic_write_json(live / "status.json", {**st, "heartbeat": time.time()})

    thread = threading.Thread(target=heartbeat, daemon=True)
    thread.start()
    yield tmp_workspace, live
    stop.set()
    thread.join()
    trainer.kill()
    trainer.wait()


OUTSIDE_STATUS_WIDGET = 'xpath=//*[not(ancestor-or-self::*[@data-testid="stStatusWidget"])]'


def buttons(pg, label):
    """The page's buttons called `label`, except Streamlit's own status widget: while a script run is in
    progress (a live fragment's rerun each second, slow on a loaded machine) it shows a "Stop" button too."""
    return pg.get_by_role("button", name=label, exact=True).and_(pg.locator(OUTSIDE_STATUS_WIDGET))


def files_of(home: Path) -> list[str]:
    """Every path under home but the server's log and the fake trainer's own atomic-write temp files: its heartbeat
    (the fixture, standing in for a trainer) rewrites status.json through a `.status.json.*.tmp` file each second,
    which a listing can catch mid-write (1 of 10 repeats of the e2e lane failed so); the viewer's writes are not
    those, and a viewer's stray file would stay."""
    return sorted(
        p.relative_to(home).as_posix()
        for p in home.rglob("*")
        if "streamlit.log" not in p.name and not (p.name.startswith(".status.json.") and p.name.endswith(".tmp"))
    )


def _server(home: Path, **env):
    port = free_port()
    log = open(home / "streamlit.log", "wb")
    proc = start_streamlit(home, port, log, extra_env={"VAE_LAB_STANDBY": "0", **env})
    return proc, log, f"http://127.0.0.1:{port}"


def test_read_only_viewer_shows_the_runs_with_no_way_to_change_them(pg, lab_with_a_training_run):
    home, live = lab_with_a_training_run
    before = files_of(home)
    proc, log, url = _server(home, VAE_LAB_READONLY="1")
    try:
        open_page(pg, url, "train", "Train")
        pg.get_by_text("Read-only viewer").first.wait_for()
        pg.get_by_test_id("stProgress").filter(has_text="running").first.wait_for()
        for label in ("Start", "Stop", "Resume", "Remove from queue"):
            assert buttons(pg, label).count() == 0, label
        assert pg.locator("input[aria-label=Run]").input_value() == "training-run  (running)"
        save(pg, "readonly_train.png")
        open_page(pg, url, "dataset", "Dataset")
        for label in ("Generate", "Delete", "Import"):
            assert buttons(pg, label).count() == 0, label
        save(pg, "readonly_dataset.png")
        open_page(pg, url, "", "VAE Disentanglement Lab")
        assert buttons(pg, "Quick start").count() == 0
    finally:
        stop_streamlit(proc)
        log.close()
    after = files_of(home)
    assert after == before  # the viewer wrote nothing (no standby, no lock file, no run folder)


def test_train_page_shows_the_queue_in_order(pg, lab_with_a_training_run, fake_run, tiny_dataset):
    home, live = lab_with_a_training_run
    now = time.time()
    for k, name in enumerate(("queued-first", "queued-second")):
        run = fake_run(name, done_epochs=0, epochs=4, dataset=str(tiny_dataset))
        st = json.loads((run / "status.json").read_text())
        (run / "status.json").write_text(
            json.dumps(
                {**st, "state": "waiting", "pid": None, "queued_at": now + k, "message": "waiting for a free trainer"}
            )
        )
    proc, log, url = _server(home)
    try:
        open_page(pg, url, "train", "Train")
        pg.get_by_role("heading", name="Queue").wait_for()
        table = pg.get_by_test_id("stDataFrame").filter(has_text="position").first
        table.wait_for()
        save(pg, "train_queue.png")
        buttons(pg, "Stop").first.wait_for()
        assert buttons(pg, "Stop").count() == 1  # the training run's
        wait_idle(pg)
    finally:
        stop_streamlit(proc)
        log.close()
