"""AppTest of the Sweeps page and the Train page's Seeds box (the driver process is replaced)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.sweep_fixtures import fake_finished_sweep
from vae.sweeps import sweep

ROOT = Path(__file__).resolve().parent.parent


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


@pytest.fixture
def launched(monkeypatch):
    """Replace the driver process: record which sweeps would have been started."""
    calls = []
    monkeypatch.setattr(sweep, "launch_driver", lambda d, address=None, workers=None: calls.append(Path(d)) or 1)
    return calls


def test_sweep_page_without_data_says_what_to_do(tmp_workspace):
    at = page("sweep").run()
    assert not at.exception
    assert any("generate one on the Dataset page" in i.value for i in at.info)


def test_build_a_grid_and_start_it(tiny_dataset, launched):
    at = page("sweep").run()
    at.text_input(key="sweep_values_gamma").set_value("0, 1e-3").run()
    at.number_input(key="sweep_seeds").set_value(2).run()
    assert any("4 runs" in m.value for m in at.markdown)
    at.button(key="sweep_start").click().run()
    assert not at.exception and not at.error
    (out,) = launched
    doc = sweep.read_sweep(out)
    assert doc["grid"] == {"gamma": [0.0, 1e-3]} and len(doc["runs"]) == 4
    at.button(key="sweep_start").click().run()  # the same name again: refused, nothing started
    assert any("already holds a sweep" in e.value for e in at.error) and len(launched) == 1
    at.text_input(key="sweep_name").set_value("bad").run()
    at.text_input(key="sweep_values_gamma").set_value("0, -1").run()
    at.button(key="sweep_start").click().run()
    assert any("gamma must be >= 0" in e.value for e in at.error) and len(launched) == 1


def test_finished_sweep_shows_distributions_the_gamma_answer_and_variance(tiny_dataset, tmp_workspace):
    fake_finished_sweep(tmp_workspace, tiny_dataset)
    at = page("sweep").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Done"] == "9/9" and metrics["State"] == "finished"
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    boxes = [t for t in fig["data"] if t["type"] == "box"]
    assert boxes and len(boxes[0]["customdata"]) == 9  # one dot per run, carrying its run name
    (band,) = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]  # chance, for factor alignment
    assert (band["y0"], band["y1"]) == pytest.approx((0.05, 0.85))
    tables = [df.value for df in at.dataframe]
    answers = next(t for t in tables if "answer" in t.columns)
    mig = answers[answers["metric"] == "MIG"].set_index("gamma")["answer"]
    assert mig[0.001].startswith("no evidence of a difference in MIG")
    assert mig[0.01].startswith("MIG higher by 0.")  # the fixture adds 0.3 with seed noise of 0.02
    assert any("Only 3 seeds" in w.value for w in at.warning)  # the fixture has 3 seeds: a plain warning
    text = "\n".join(m.value for m in at.markdown)
    assert "smallest detectable difference at 3 seeds" in text and "no effect" not in text.lower()
    low = answers[(answers["metric"] == "MIG") & (answers["gamma"] == 0.01)]["low"].item()
    assert 0.2 < low < 0.3
    shares = next(t for t in tables if "share_seed" in t.columns)
    assert set(shares["metric"]) >= {"MIG", "factor alignment"}
    assert any("spearman within settings" in t.columns for t in tables)


def test_stop_and_resume_buttons_reach_the_library(tiny_dataset, tmp_workspace, launched, monkeypatch):
    out = fake_finished_sweep(tmp_workspace, tiny_dataset)
    import os
    import time

    sweep.write_status(
        out, {"state": "running", "driver_pid": os.getpid(), "heartbeat": time.time(), "runs": {}, "workers": 2}
    )
    at = page("sweep").run()
    at.button(key="sweep_stop").click().run()
    assert (out / "stop").exists()
    sweep.write_status(out, {"state": "stopped", "runs": {}})
    (sweep.run_dir_of(out, sweep.read_sweep(out)["runs"][0]) / "evaluation.json").unlink()
    at = page("sweep").run()
    at.button(key="sweep_resume").click().run()
    assert launched == [out]


def test_train_page_seeds_start_a_sweep_over_seeds(tiny_dataset, launched):
    at = page("train").run()
    at.number_input(key="n_seeds").set_value(3).run()
    at.button[[b.label for b in at.button].index("Start")].click().run()
    assert not at.exception
    (out,) = launched
    doc = sweep.read_sweep(out)
    assert doc["seeds"] == [0, 1, 2] and doc["grid"] == {} and len(doc["runs"]) == 3
    assert any("over 3 seeds" in s.value for s in at.success)
