"""Reconstructions: the study's 2 x 10 grid of validation input|reconstruction pairs per epoch snapshot,
any sample through the model, and for starfish the transect strips and the hole."""
from pathlib import Path

import numpy as np
import streamlit as st

from pages._ui import ensure_app_navigation, dataset_of, model_of, pick_run, rows_of, sort_runs, user_errors
from vae import analysis, run_index, runs
from vae.errors import UserError
from vae.plots import pairs_grid, stack_strips, transect_strip

ensure_app_navigation()

st.title("Reconstructions")
run = pick_run(sort_runs(run_index.list_runs()))
if not run:
    st.stop()
run_dir, cfg = Path(run["path"]), run["config"]
epochs = runs.list_snapshots(run_dir)
if not epochs:
    st.info("This run has no epoch snapshot yet; the first one is written at the end of epoch 1.")
    st.stop()
try:
    ds = dataset_of(cfg["dataset"])
except UserError as e:
    st.error(str(e))
    st.stop()

left, right = st.columns([1, 1])
with left:
    epoch = st.select_slider("Epoch snapshot", epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
    snap = runs.load_snapshot(run_dir, epoch)
    grid = pairs_grid(ds.images[rows_of(ds, snap["recon_index"])], snap["recon"], columns=2)
    st.image(grid, output_format="PNG", caption=f"First {len(snap['recon'])} validation images: input | reconstruction, epoch {epoch}",
             width="stretch")
with right:
    st.subheader("Any sample (uses the model)")
    split = st.selectbox("Split", ds.splits, index=ds.splits.index("validation") if "validation" in ds.splits else 0)
    ids = ds.indices(split)
    k = st.number_input(f"Image (0–{len(ids) - 1})", 0, max(len(ids) - 1, 0), key="sample_k")
    if st.button("Random", icon=":material/casino:"):
        k = int(np.random.default_rng().integers(len(ids)))
    if st.button("Reconstruct", icon=":material/auto_fix_high:"):
        with user_errors():
            from vae import inference
            image = ds.images[ids[k]][None]
            st.image(pairs_grid(image, inference.reconstruct(model_of(run_dir), image), columns=1), width=260, output_format="PNG",
                     caption=f"{split} #{k}: input | reconstruction")

if ds.meta.get("family") == "starfish" and "transects" in ds.splits:
    st.subheader("Transects and the hole")
    st.caption("Ground truth above reconstruction; hole points in a yellow box (the study's figure). "
               "Uses the best model of the run.")
    if st.button("Reconstruct transects and hole", icon=":material/timeline:"):
        with user_errors():
            from vae import inference
            model, cols = model_of(run_dir), ds.columns
            spec = ds.meta.get("spec") or {}
            centre, radius = spec.get("hole_center", analysis.HOLE_CENTRE), spec.get("hole_radius", analysis.HOLE_RADIUS)
            strips = []
            for name in sorted(set(cols["transect"][ds.indices("transects")].astype(str)) - {""}):
                rows = np.flatnonzero(cols["transect"].astype(str) == name)
                rows = rows[np.argsort(cols["point"][rows])]
                inside = np.hypot(cols["a"][rows] - centre[0], cols["b"][rows] - centre[1]) <= radius
                strips.append(transect_strip(ds.images[rows], inference.reconstruct(model, ds.images[rows]), inside))
            st.image(stack_strips(strips), output_format="PNG", caption=" / ".join(f"P{i + 1}" for i in range(len(strips))))
            val = ds.indices("validation")
            covered = val[analysis.covered_region_mask(cols["a"][val], cols["b"][val], centre, radius)]
            hole_rows = ds.indices("hole")
            if len(hole_rows) and len(covered):
                loss_hole = inference.recon_loss_per_image(model, ds.images[hole_rows])
                loss_cov = inference.recon_loss_per_image(model, ds.images[covered])
                c1, c2, c3 = st.columns(3)
                c1.metric("Hole: mean recon loss", f"{loss_hole.mean():.4f}", f"{len(hole_rows)} images")
                c2.metric("Covered ring: mean recon loss", f"{loss_cov.mean():.4f}", f"{len(covered)} images")
                c3.metric("Ratio hole / covered", f"{loss_hole.mean() / loss_cov.mean():.2f}")
                show = hole_rows[:12]
                st.image(pairs_grid(ds.images[show], inference.reconstruct(model, ds.images[show]), columns=6), output_format="PNG",
                         caption="Hole images: input | reconstruction, with their losses: "
                                 + ", ".join(f"{v:.3f}" for v in loss_hole[:12]))
