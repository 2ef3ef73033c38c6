"""A fresh server's first visitor does not wait for imports (#24): the server module (app.py, as `streamlit run`
imports it) starts a thread that loads every module the pages import and the run index, and never TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pages import _warmup

ROOT = Path(__file__).resolve().parent.parent


def test_the_warm_up_list_is_read_from_the_pages_and_leaves_tensorflow_out(tmp_path):
    names = _warmup.page_imports()
    for module in ("vae.measures.analysis", "vae.views.plots", "vae.sweeps.export", "pandas", "pages._ui"):
        assert module in names
    assert not [n for n in names if n.startswith(("tensorflow", "keras", "vae.model.inference", "vae.training"))]
    (tmp_path / "new_page.py").write_text("import json\n\ndef f():\n    from vae.views import compare\n")
    assert _warmup.page_imports(tmp_path) == ["json", "vae.views", "vae.views.compare"]  # a new page's imports too


@pytest.mark.slow  # a new Python process that imports the pages' modules (5-10 s on 2 cores)
def test_the_server_module_warms_the_pages_imports_and_the_run_index(tmp_path):
    code = f"""
import json, sys, threading
sys.path.insert(0, {str(ROOT)!r})
import app  # the server module, as `streamlit run app.py` imports it
(t,) = [t for t in threading.enumerate() if t.name == "vae-lab-warmup"]
t.join(120)
from pages import _warmup
from vae.runs import run_index
print(json.dumps({{"state": _warmup.STATE, "mods": sorted(m for m in ("sklearn", "scipy", "plotly.express", "pandas",
    "vae.measures.analysis", "tensorflow", "keras") if m in sys.modules), "index": len(run_index._CACHE)}}))
"""
    env = {**os.environ, "VAE_LAB_HOME": str(tmp_path), "VAE_LAB_STANDBY": "0"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["state"]["done"] and out["state"]["failed"] == [] and out["state"]["modules"] > 20
    assert out["mods"] == ["pandas", "plotly.express", "scipy", "sklearn", "vae.measures.analysis"]  # no TensorFlow
    assert out["index"] == 1  # the run index was read into the process cache
