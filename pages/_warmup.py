"""A fresh server's first visitor should not wait for imports: `warm()` loads, in a background thread started
by app.py when the server starts, every module the pages import (numpy, pandas, plotly, SciPy, scikit-learn
through vae.measures.analysis, ...; read from the pages' own import lines, so a new import is warmed too),
and reads the run index once (its process cache), so that the first visit of any page pays only its own work.

TensorFlow is never loaded here (the pages load it only when they decode: `vae.model.inference`), so the
server's memory stays as it was; nor is anything written. A module that fails to import is skipped: the page
that needs it shows its own error when it runs.
"""

from __future__ import annotations

import ast
import importlib
import threading
import time
from pathlib import Path

PAGES = Path(__file__).resolve().parent
# never warmed: TensorFlow and Keras, and the modules that load them (docs/layout.md's "imports TensorFlow?")
HEAVY = ("tensorflow", "keras", "vae.model.inference", "vae.model.networks", "vae.model.seed_group", "vae.training")
EXTRA = (
    "pyarrow",  # st.dataframe converts through it
    "plotly.express",
    "plotly.io",
    "streamlit.elements.plotly_chart",
    "streamlit.elements.arrow",
)
STATE: dict = {"done": False, "seconds": None, "modules": 0, "failed": []}


def page_imports(pages: Path = PAGES) -> list[str]:
    """Every module named by an import line in pages/*.py (top level and inside functions), in file order,
    less HEAVY ones."""
    names: list[str] = []
    for path in sorted(pages.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from vae.x import mod`
            else:
                continue
            names += [n for n in found if n not in names and not n.startswith(HEAVY) and not n.startswith("__future__")]
    return names


def warm(modules: list[str] | None = None) -> dict:
    """Import `modules` (default: the pages' imports and EXTRA), then read the run index; returns STATE."""
    t0 = time.perf_counter()
    for name in [*(page_imports() if modules is None else modules), *EXTRA]:
        try:
            importlib.import_module(name)
            STATE["modules"] += 1
        except ImportError:
            pass  # `from vae.x import function` names a function, not a module
        except Exception as e:  # noqa: BLE001 - a broken module shows its error on its page, not here
            STATE["failed"].append(f"{name}: {type(e).__name__}")
    try:  # plotly and pyarrow load much of themselves on first use: draw one small figure and one table
        _first_use()
    except Exception as e:  # noqa: BLE001
        STATE["failed"].append(f"first use: {type(e).__name__}")
    try:
        from vae.runs import run_index

        run_index.list_runs()  # the index file into the process cache (builds it when missing)
    except Exception as e:  # noqa: BLE001 - no runs folder yet, a read-only home: the page says so itself
        STATE["failed"].append(f"run index: {type(e).__name__}")
    STATE.update(done=True, seconds=round(time.perf_counter() - t0, 2))
    return STATE


def _first_use() -> None:
    """What the pages' first figure and first table load beyond their imports (plotly's graph objects
    and pyarrow's pandas conversion load their parts lazily)."""
    import pandas as pd
    import plotly.express as px
    import plotly.graph_objects as go
    import pyarrow as pa

    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0], mode="lines+markers", line=dict(dash="dash")))
    fig.add_trace(go.Bar(x=[0], y=[1]))
    fig.update_layout(title="t", xaxis_title="x", yaxis_title="y", legend=dict(orientation="h"), margin=dict(l=1))
    fig.add_hrect(y0=0, y1=1)
    fig.to_json()
    px.scatter({"a": [0, 1], "b": [1, 0], "c": ["u", "v"]}, x="a", y="b", color="c", facet_col="c").to_json()
    pa.Table.from_pandas(pd.DataFrame({"a": [1.0], "b": ["x"], "c": [None]}))
    # Streamlit checks once per process, at the first element a page sends, whether it runs in a REPL:
    # inspect.stack() over every loaded module, 0.3-0.7 s of the first visit on 2 cores. Done here instead
    # (it only logs a hint when Streamlit runs outside `streamlit run`).
    from streamlit import delta_generator

    getattr(delta_generator, "_maybe_print_use_warning", lambda: None)()


def start() -> threading.Thread:
    """warm() in a daemon thread (the server does not wait for it, and does not keep running for it)."""
    thread = threading.Thread(target=warm, name="vae-lab-warmup", daemon=True)
    thread.start()
    return thread
