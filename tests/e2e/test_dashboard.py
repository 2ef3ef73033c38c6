"""End to end: a real server from an empty data folder, driven by headless Chromium.

Generate a small dataset, train two epochs and watch the live chart grow without touching
the page, reload mid-training and find the run still attached, stop a run, open the
reconstructions and the embedding. Timings go to $VAE_LAB_HOME/timings.json and stdout.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vae.runs import folder

from tests.conftest import E2E_BATCH_DELAY_S as BATCH_DELAY_S
from tests.conftest import wait_until

pytestmark = pytest.mark.e2e

CHART_POINTS = """() => { const g = document.querySelector('.js-plotly-plot');
  const t = g && g.data ? g.data.find(t => t.name === 'total (train)') : null;
  return t && t.x ? t.x.length : 0; }"""  # batch lines drawn in the live loss chart
TIMINGS: dict = {}
# Deadline of a wait for TensorFlow or a WebGL chart: a cold trainer's TensorFlow import took 185 s, and the
# embedding page's 3-D charts over 90 s, on the shared 2-core machine at load 25-30; at load 46 a run handed to a standby
# still importing TensorFlow was not running after 300 s (bench/e2e_pass_rate.py, session 6). A passing wait returns at once.
SLOW_MS = 600_000  # waits on a TensorFlow process (import, first step): minutes at load 30-45 on 2 cores


def wait_idle(pg, timeout=30_000):
    """Wait until Streamlit finished the current script run (no 'Running...' widget)."""
    pg.wait_for_timeout(300)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def set_number(pg, label, value):
    box = pg.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(pg)


def open_page(pg, server, path, heading):
    pg.goto(f"{server}/{path}")
    pg.get_by_role("heading", name=heading).first.wait_for()
    wait_idle(pg)


def progress(pg, state):
    """The live progress bar's text when it reports `state`."""
    return pg.get_by_test_id("stProgress").filter(has_text=state).first


def shot(pg, path):
    """A screenshot of the whole page (Streamlit scrolls inside its own container, so grow the window)."""
    height = pg.evaluate("() => Math.max(...[...document.querySelectorAll('section, div')].map(e => e.scrollHeight))")
    pg.set_viewport_size({"width": 1400, "height": min(max(int(height) + 50, 1000), 6000)})
    pg.wait_for_timeout(700)
    pg.screenshot(path=str(path), full_page=True)
    pg.set_viewport_size({"width": 1400, "height": 1000})


def choose(pg, label, option):
    """Pick `option` (a substring) in the Streamlit selectbox labelled `label`."""
    pg.get_by_label(label, exact=True).first.click()
    pg.get_by_role("option").filter(has_text=option).first.click()
    wait_idle(pg)


def chart_points(pg) -> int:
    return pg.evaluate(CHART_POINTS)


def run_dirs(home: Path) -> list[Path]:
    return sorted(p for p in (home / "runs").glob("*") if (p / "config.json").exists())


def status_of(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_home_starts_from_an_empty_folder(pg, server):
    open_page(pg, server, "", "VAE Disentanglement Lab")
    pg.get_by_role("button", name="Quick start").wait_for()
    pg.get_by_text("None yet").first.wait_for()


def test_generate_a_small_dataset_with_preview(pg, server, lab_home):
    open_page(pg, server, "dataset", "Dataset")
    set_number(pg, "N (a, b) draws", 300)
    name = pg.get_by_label("Folder name", exact=True)
    name.fill("e2e-small")
    name.press("Enter")
    wait_idle(pg)
    pg.get_by_text("Preview: 16 of the 345 images").wait_for()
    pg.get_by_role("button", name="Generate").click()
    pg.get_by_text("Saved e2e-small").wait_for(timeout=SLOW_MS)
    assert (lab_home / "datasets" / "e2e-small" / "dataset.json").exists()
    shot(pg, str(lab_home / "shot_dataset.png"))


def start_training(pg, server, epochs, batch=8):
    open_page(pg, server, "train", "Train")
    set_number(pg, "Epochs", epochs)
    set_number(pg, "Batch size", batch)
    pg.get_by_role("button", name="Start").click()
    wait_idle(pg)


def new_run(lab_home: Path, before: list[Path]) -> Path:
    """The run folder that Start created (awaited: the page writes it before it answers)."""
    return wait_until(lambda: next(iter(set(run_dirs(lab_home)) - set(before)), None), 30, "the new run folder")


def test_train_two_epochs_live_chart_grows_without_input(pg, server, lab_home, e2e_dataset):
    """The chart gains points on its own while the run trains. The server's trainers take at least
    BATCH_DELAY_S a batch (the test hook VAE_LAB_TEST_BATCH_DELAY_S, set by the `server` fixture), so the
    two epochs last at least 2 x steps x BATCH_DELAY_S seconds on any machine, many times the chart's 1 s
    poll: a chart that grew fewer than twice in that time does not follow the run."""
    before = run_dirs(lab_home)
    start_training(pg, server, epochs=2)
    run = new_run(lab_home, before)
    progress(pg, "running").wait_for(timeout=SLOW_MS)
    steps = wait_until(lambda: status_of(run).get("steps_per_epoch"), 120, "the trainer's steps per epoch")
    assert 2 * steps * BATCH_DELAY_S >= 10, "the run is too short to watch the chart poll several times"
    # its lag = when the chart first shows k batch lines minus when the trainer's metrics file first held k
    appeared, lags, growth, points = {}, [], 0, chart_points(pg)
    deadline = time.time() + 300
    while time.time() < deadline:
        state = status_of(run).get("state")
        if state not in ("queued", "running"):
            break
        if (run / "metrics.jsonl").exists():
            lines = (run / "metrics.jsonl").read_text().count('"kind": "batch"')
            for k in range(len(appeared) + 1, lines + 1):
                appeared[k] = time.time()
        now_points = chart_points(pg)
        if now_points > points:
            if state == "running" and status_of(run).get("state") == "running":  # grew while the run ran
                growth += 1
            points = now_points
            if now_points in appeared:
                lags.append(time.time() - appeared[now_points])
        pg.wait_for_timeout(50)
    assert growth >= 2, f"the live chart grew {growth} time(s) while the run trained for 2 x {steps} batches"
    progress(pg, "finished").wait_for(timeout=SLOW_MS)
    shot(pg, str(lab_home / "shot_train.png"))
    # the lag is recorded for the report (timings.json), never asserted: it depends on the machine's load
    TIMINGS["chart_lag_s"] = {
        "max": round(max(lags), 2),
        "median": round(sorted(lags)[len(lags) // 2], 2),
        "samples": len(lags),
    }


def keep_evidence(pg, run: Path, what: str) -> str:
    """What the page shows, in one line (progress bars, chosen run, exceptions, Streamlit's status widget), with a
    screenshot, the page's text and the run's status.json under $VAE_LAB_E2E_EVIDENCE/<what>-<run>-<time>/ when set."""
    bars = [t.strip() for t in pg.get_by_test_id("stProgress").all_inner_texts()]
    picker = [  # the chosen run: the selectbox's input holds it
        box.evaluate("e => [...e.querySelectorAll('input')].map(i => i.value || i.placeholder).join(' ')")
        for box in pg.get_by_test_id("stSelectbox").filter(has_text="Run").all()
    ]
    errors = [t.strip()[:300] for t in pg.get_by_test_id("stException").all_inner_texts()]  # a page that raised
    status = pg.get_by_test_id("stStatusWidget").all_inner_texts()  # "Running...", "Connecting": a stuck session
    shown = (
        f"progress bars {bars}; run picker {picker}; status.json {status_of(run).get('state')}; "
        f"exceptions {errors}; status widget {status}"
    )
    if os.environ.get("VAE_LAB_E2E_EVIDENCE"):
        out = Path(os.environ["VAE_LAB_E2E_EVIDENCE"]) / f"{what}-{run.name}-{int(time.time())}"
        out.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(out / "page.png"), full_page=True)
        (out / "page.txt").write_text(pg.inner_text("body") + "\n\n" + shown)
        (out / "status.json").write_text(json.dumps(status_of(run), indent=1))
    return shown


def test_reload_mid_training_reattaches_and_stop_stops(pg, server, lab_home, e2e_dataset, record_property):
    before = run_dirs(lab_home)
    start_training(pg, server, epochs=50)
    run = new_run(lab_home, before)
    wait_until(lambda: status_of(run).get("state") == "running", SLOW_MS / 1000, "the run's trainer to start")
    # KNOWN BUG, not hidden (session 6 closing note): in 2 of about 14 runs of this test the page never showed the
    # running run without a reload, while its trainer trained all 50 epochs; not reproduced since, and its likely
    # cause (a live view's tick carrying the run picker's old value) is fixed in pages/_ui.py (`user_change`;
    # bench/RESULTS.md, session 7). This test is about reloading, so it reloads here if the live view has not caught up in
    # 120 s; the live update itself is asserted by test_train_two_epochs_live_chart_grows_without_input. A reload
    # here is recorded (JUnit property `known_bug_reload`, counted by bench/e2e_pass_rate.py) with what the page
    # showed (saved under $VAE_LAB_E2E_EVIDENCE when set).
    try:
        progress(pg, "running").wait_for(timeout=120_000)
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError
        shown = keep_evidence(pg, run, "known_bug_reload")
        record_property("known_bug_reload", shown)
        print(f"KNOWN BUG: the Train page did not show {run.name} running in 120 s; it showed: {shown}")
        pg.reload()
        progress(pg, "running").wait_for(timeout=SLOW_MS)
    wait_until(lambda: folder.read_metrics(run, "batch"), SLOW_MS / 1000, "the run's first live point")  # mid-training
    pg.reload()
    pg.get_by_role("heading", name="Train").first.wait_for()
    progress(pg, "running").wait_for(timeout=120_000)
    assert run.name in pg.content()
    assert len(run_dirs(lab_home)) == len(before) + 1, "reloading started a duplicate run"
    stop = pg.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")
    for _ in range(10):  # a click that lands while the live fragment replaces the button is lost: click again
        stop.click()
        try:
            wait_until(lambda: (run / "stop").exists() or status_of(run)["state"] != "running", 10, "a stop request")
            break
        except AssertionError:
            continue
    progress(pg, "stopped").wait_for(timeout=180_000)
    assert status_of(run)["state"] == "stopped"


def test_reconstructions_and_embedding_open(pg, server, lab_home, e2e_finished_run):
    finished = e2e_finished_run
    open_page(pg, server, "reconstructions", "Reconstructions")
    choose(pg, "Run", finished.name)
    pg.get_by_text("input | reconstruction").first.wait_for()
    shot(pg, str(lab_home / "shot_reconstructions.png"))
    pg.get_by_role("button", name="Reconstruct transects").click()
    pg.get_by_text("P1 / P2 / P3").wait_for(timeout=SLOW_MS)  # the model (and TensorFlow) are loaded now
    pg.get_by_test_id("stSidebarNav").get_by_role("link", name="Embedding").click()  # same session: same run
    pg.get_by_role("heading", name="Embedding").first.wait_for()
    # two WebGL 3-D charts: slow in headless Chromium without a GPU (software GL)
    pg.locator(".js-plotly-plot").first.wait_for(timeout=SLOW_MS)
    wait_idle(pg, timeout=SLOW_MS)
    shot(pg, str(lab_home / "shot_embedding.png"))
    assert finished.name in pg.content()


def test_every_page_opens_from_the_menu(pg, server, lab_home):
    """Each menu link opens its page (switch times are recorded for the report, never asserted)."""
    open_page(pg, server, "", "VAE Disentanglement Lab")
    times = {}
    for link, heading in (
        ("Compare", "Compare runs"),
        ("Reconstructions", "Reconstructions"),
        ("Embedding", "Embedding"),
        ("Dataset", "Dataset"),
        ("Train", "Train"),
        ("Home", "VAE Disentanglement Lab"),
    ):
        t0 = time.time()
        pg.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
        pg.get_by_role("heading", name=heading).first.wait_for(timeout=SLOW_MS)
        wait_idle(pg, timeout=SLOW_MS)
        times[link] = round(time.time() - t0, 2)
        pg.screenshot(path=str(lab_home / f"shot_{link.lower()}.png"), full_page=True)
    TIMINGS["page_switch_s"] = times
    (lab_home / "timings.json").write_text(json.dumps(TIMINGS, indent=2))
    print("TIMINGS", json.dumps(TIMINGS))
    assert set(times) == {"Compare", "Reconstructions", "Embedding", "Dataset", "Train", "Home"}
    assert "Traceback" not in pg.content()
