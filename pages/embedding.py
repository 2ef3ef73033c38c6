"""Embedding: the latent means of a snapshot in 3-D with the transects P1-P3 (the study's part-2 figure),
the PCA of those means against the latent axes, their covariance, and decoding / traversals."""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages._evaluation import evaluation_panel
from pages._ui import ensure_app_navigation, dataset_of, model_of, pick_run, rows_of, sort_runs, user_errors
from vae import analysis, run_index, runs
from vae.errors import UserError
from vae.plots import embedding_3d, explained_variance, heatmap, montage, stack_strips, traversal_codes

ensure_app_navigation()

st.title("Embedding")
run = pick_run(sort_runs(run_index.list_runs()))
if not run:
    st.stop()
if not runs.list_snapshots(run["path"]):
    st.info("This run has no epoch snapshot yet; the first one is written at the end of epoch 1.")
    st.stop()
run_dir, epochs = Path(run["path"]), runs.list_snapshots(run["path"])
try:
    ds = dataset_of(run["config"]["dataset"])
except UserError as e:
    st.error(str(e))
    st.stop()

epoch = st.select_slider("Epoch snapshot", epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
snap = runs.load_snapshot(run_dir, epoch)
d = snap["mu_train"].shape[1]
names = [f"μ{i + 1}" for i in range(d)]
c = st.columns([2.2, 1, 1, 1, 1.3])  # the Splits chips need the room at 1280 px
splits = c[0].multiselect("Splits", [s for s in ("train", "validation", "hole") if f"mu_{s}" in snap], ["train"])
dims = [c[k + 1].selectbox(f"Axis {k + 1}", range(d), index=min(k, d - 1), format_func=lambda i: names[i],
                           key=f"dim{k}") for k in range(3)]
colour_by = c[4].selectbox("Colour", ["none (study)", "split", *ds.factor_names])

splits = splits or ["train"]
mu = np.concatenate([snap[f"mu_{s}"] for s in splits])
ids = np.concatenate([snap[f"index_{s}"] for s in splits])
colour = None
if colour_by == "split":
    colour = np.concatenate([[s] * len(snap[f"mu_{s}"]) for s in splits])
elif colour_by in ds.factor_names:
    colour = np.asarray(ds.columns[colour_by])[rows_of(ds, ids)]
transects = {}
if "mu_transects" in snap:
    rows = rows_of(ds, snap["index_transects"])
    for name in sorted(set(ds.columns["transect"][rows].astype(str)) - {""}):
        sel = np.flatnonzero(ds.columns["transect"][rows].astype(str) == name)
        transects[name] = snap["mu_transects"][sel[np.argsort(ds.columns["point"][rows][sel])]]

pca = analysis.pca_alignment(snap["mu_train"])
pcs = (mu - snap["mu_train"].mean(0)) @ pca["components"].T
left, right = st.columns(2)
left.plotly_chart(embedding_3d(mu, dims, colour, colour_by, transects, names, f"Latent means, epoch {epoch}"))
right.plotly_chart(embedding_3d(pcs, dims, colour, colour_by,
                                {k: (v - snap["mu_train"].mean(0)) @ pca["components"].T for k, v in transects.items()},
                                [f"PC{i + 1}" for i in range(d)], "The same points in principal-axis coordinates"))

st.subheader("Principal axes of μ (train) against the latent axes")
m = st.columns(3)
m[0].metric("Axis-alignment score", f"{pca['score']:.3f}", help="1: every principal axis lies on a latent axis; 0: worst tilt")
m[1].metric("Variance in near-tied axes", f"{pca['degenerate_variance_fraction']:.0%}",
            help="Principal axes whose variances nearly tie have no well-defined direction")
m[2].metric("Active units (var > 0.01)", int((snap["mu_train"].var(0) > 0.01).sum()))
c1, c2 = st.columns(2)
c1.plotly_chart(explained_variance(pca["explained_variance_ratio"]))
c2.plotly_chart(heatmap(pca["abs_cos"], [f"PC{i + 1}" for i in range(d)], "|cos(principal axis, latent axis)|",
                        names, zmid=None, colorscale="Blues", zmin=0, zmax=1))
st.dataframe(pd.DataFrame({"principal axis": [f"PC{i + 1}" for i in range(d)],
                           "explained variance": pca["explained_variance_ratio"],
                           "nearest latent axis": [names[i] for i in pca["nearest_axis"]],
                           "angle to it (°)": pca["angles_deg"], "near-tied": pca["degenerate"]}), hide_index=True)
c1, c2 = st.columns(2)
c1.plotly_chart(heatmap(np.cov(snap["mu_train"], rowvar=False), names, "Covariance of μ"))
c2.plotly_chart(heatmap(np.corrcoef(snap["mu_train"], rowvar=False), names, "Correlation of μ", zmin=-1, zmax=1))

st.subheader("Decoding")
if st.toggle("Decode latent codes (loads the model and TensorFlow)", key="decode"):
    with user_errors():
        from vae import inference
        model, mean, std = model_of(run_dir), snap["mu_train"].mean(0), snap["mu_train"].std(0) + 1e-6
        lo, hi = snap["mu_train"].min(0), snap["mu_train"].max(0)
        cols = st.columns([1, 2])
        z = np.array([cols[0].slider(names[i], float(lo[i]), float(hi[i]), float(mean[i]), key=f"z{i}")
                      for i in range(d)])
        cols[1].image(inference.decode(model, z[None])[0], output_format="PNG", caption=f"decode({np.round(z, 2).tolist()})", width=220)
        along_latent = [montage(inference.decode(model, traversal_codes(mean, np.eye(d)[i], std[i])), 7) for i in range(d)]
        along_pc = [montage(inference.decode(model, traversal_codes(mean, pca["components"][k],
                                                                    np.sqrt(pca["explained_variance"][k]) + 1e-6)), 7)
                    for k in range(d)]
        c1, c2 = st.columns(2)
        c1.image(stack_strips(along_latent), output_format="PNG", caption="Along each latent axis (rows μ1…), ±2 sd")
        c2.image(stack_strips(along_pc), output_format="PNG", caption="Along each principal axis (rows PC1…), ±2 sd")

st.divider()
evaluation_panel(run, key="embedding")
