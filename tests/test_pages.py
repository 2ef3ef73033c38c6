"""AppTest for every page: widgets are there, actions reach the library, charts hold the run folder's data."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def chart_traces(at: AppTest) -> list[dict]:
    """Every trace of every plotly chart on the page, as plotly JSON dicts."""
    traces = []
    for el in at.get("plotly_chart"):
        traces += json.loads(el.proto.spec)["data"]
    return traces


def no_tensorflow():
    return "tensorflow" not in sys.modules and "keras" not in sys.modules


# ------------------------------------------------------------------ compare

def test_compare_tabulates_every_run_of_a_dataset(fake_run):
    fake_run("r1", beta=0.0, gamma=0.0)
    fake_run("r2", beta=0.01, gamma=1e-4, entanglement="covariance")
    at = page("compare").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["r1", "r2"]
    assert set(table["beta"]) == {0.0, 0.01}
    assert table["alignment_score"].notna().all()
    assert len(at.get("plotly_chart")) == 1


def test_compare_with_no_runs_says_so(tmp_workspace):
    at = page("compare").run()
    assert not at.exception and "No runs yet" in at.info[0].value
