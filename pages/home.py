"""Home: what the study asked, how to use the lab, what is on disk, and a one-click Quick start."""

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages._ui import ensure_app_navigation, show_table, user_errors, warm_trainer, writable
from vae.base.paths import datasets_root, runs_root
from vae.base.safety import human_bytes
from vae.data import datasets
from vae.data.presets import preset_spec
from vae.jobs import launcher
from vae.runs import run_index
from vae.runs.config import TrainConfig

ensure_app_navigation()
warm_trainer()

QUICK_PRESET, QUICK_SIZE = "seed-full", 64

st.title("VAE Disentanglement Lab")
st.markdown(
    """
A re-run, in the open, of a small study: a variational autoencoder is trained on **"starfish"** images,
closed curves $r(\\theta) = b\\cos(5\\theta) + a$ drawn for parameters $(a, b)$, with a **hole** punched in
the $(a, b)$ plane so that some shapes are never seen in training. The question: does an extra
**entanglement** term $\\gamma\\cdot\\frac{2}{d(d-1)}\\sum_{i<j}\\overline{|\\mu_i\\mu_j|}$ (the mean over
the pairs of latents of the batch mean of $|\\mu_i\\mu_j|$) in the loss turn the data's principal directions into
the latent axes, i.e. *disentangle* size $a$ from shape $b$? (The study found a curved 2-D sheet with a hole
in a 3-D latent space, and concluded that the loss did not disentangle.)

**How to use it.** *Dataset*: generate starfish (or sprites) images, or import your own.
*Train*: set $\\beta$ and $\\gamma$ and start a run; the losses update live. *Reconstructions*, *Embedding*:
look at what a run learned, epoch by epoch, and how its latent axes line up with the data's principal axes.
*Compare*: all runs of a dataset side by side.
"""
)

if writable() and st.button(
    "Quick start",
    type="primary",
    icon=":material/rocket_launch:",
    help=f"Generate the {QUICK_PRESET} dataset at {QUICK_SIZE}x{QUICK_SIZE} (if missing) and start a default run",
):
    with user_errors():
        target = datasets_root(create=True) / f"{QUICK_PRESET}-{QUICK_SIZE}"
        if not (target / "dataset.json").exists():
            bar = st.progress(0.0, text="Generating the dataset…")
            datasets.write_dataset(
                preset_spec(QUICK_PRESET, image_size=QUICK_SIZE),
                target,
                progress=lambda done, total: bar.progress(
                    done / max(total, 1), text=f"Generating images {done}/{total}"
                ),
            )
        run = launcher.start_run(
            TrainConfig(dataset=str(target), image_size=QUICK_SIZE).validate(), runs_root=str(runs_root(create=True))
        )
        st.session_state["selected_run"] = run.name
        try:
            st.switch_page("pages/train.py")
        except StreamlitAPIException:  # the page runs alone (tests): say where to look instead
            st.success(f"Started run {run.name}: watch it on the Train page.")

with st.container():
    st.subheader("Datasets")
    sets = datasets.list_datasets(datasets_root()) if datasets_root().exists() else []
    if sets:
        show_table(
            pd.DataFrame(
                [
                    {
                        "name": d["name"],
                        "family": d.get("family"),
                        "preset": d.get("preset"),
                        "images": sum((d.get("counts") or {}).values()),
                        "size": f"{d.get('image_size')}px" if not d.get("error") else "damaged",
                        "on disk": human_bytes(d.get("bytes", 0)),
                    }
                    for d in sets
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("None yet: press Quick start, or generate one on the Dataset page.")
with st.container():  # full width: run names (dataset-method-network-β-γ-seed-time) are long
    st.subheader("Runs")
    runs = run_index.list_runs()
    if runs:
        show_table(
            pd.DataFrame(
                [
                    {
                        "name": r["name"],
                        "state": r["state"],
                        "method": r["config"].get("method") or "beta-vae",
                        "β": r["config"].get("beta"),
                        "γ": r["config"].get("gamma"),
                        "seed": r["config"].get("seed"),
                        "dataset": str(r["config"].get("dataset", "")).rsplit("/", 1)[-1],
                    }
                    for r in runs
                ]
            ),
            hide_index=True,
            column_config={"name": st.column_config.TextColumn("name", width="large")},
        )
    else:
        st.caption("None yet.")
