"""Reconstructions: the study's 2 x 10 grid of validation input|reconstruction pairs per epoch snapshot,
any sample through the model, and for starfish the transect strips and the hole.

Results computed with the model (the single sample, the transect block) are kept per run in the
session, so both stay on screen and switching runs does not recompute them.
"""

from pathlib import Path

import numpy as np
import streamlit as st

from pages._ui import (
    copy_settings_button,
    dataset_of,
    ensure_app_navigation,
    model_of,
    pick_run,
    rows_of,
    sort_runs,
    user_errors,
)
from vae.base.errors import UserError
from vae.runs import folder
from vae.runs import run_index
from vae.views import transects
from vae.views.labels import covered_ring
from vae.views.plots import pairs_grid

ensure_app_navigation()
ss = st.session_state

st.title("Reconstructions")
run = pick_run(sort_runs(run_index.list_runs()))
if not run:
    st.stop()
if run["state"] == folder.DAMAGED:
    st.error(run["message"], icon=":material/error:")
    st.stop()
copy_settings_button(run, key="recon")
run_dir, cfg = Path(run["path"]), run["config"]
epochs = folder.list_snapshots(run_dir)
if not epochs:
    st.info("This run has no epoch snapshot yet; the first one is written at the end of epoch 1.")
    st.stop()
try:
    ds = dataset_of(cfg["dataset"])
except UserError as e:
    st.error(str(e))
    st.stop()
model_stamp = (run_dir / "model.keras").stat().st_mtime if (run_dir / "model.keras").exists() else 0.0
kept = ss.setdefault("_recon_kept", {})  # (run, model.keras time, what) -> result


def pick_random(n: int, split: str) -> None:
    ss["sample_k"] = int(np.random.default_rng().integers(n))
    ss["sample_random"] = (split, ss["sample_k"])


def keep(what: str, value) -> None:
    """Keep a model result for this run (replacing one from an older model.keras of the run)."""
    for old in [key for key in kept if key[0] == run["name"] and key[2] == what]:
        del kept[old]
    kept[(run["name"], model_stamp, what)] = value


left, right = st.columns([1, 1])
with left:
    epoch = st.select_slider("Epoch snapshot", epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
    try:
        snap = folder.load_snapshot(run_dir, epoch)
        if snap["recon"].shape[1:] != ds.images.shape[1:]:
            raise UserError(
                f"the snapshot's reconstructions are {snap['recon'].shape[1:]} pixels, the dataset's "
                f"images {ds.images.shape[1:]}: the snapshot is damaged or of another dataset"
            )
        grid = pairs_grid(ds.images[rows_of(ds, snap["recon_index"])], snap["recon"], columns=2)
    except UserError as e:  # a damaged snapshot, or one of another dataset
        st.error(str(e), icon=":material/error:")
        st.stop()
    st.image(
        grid,
        output_format="PNG",
        caption=f"First {len(snap['recon'])} validation images: input | reconstruction, epoch {epoch}",
        width="stretch",
    )
with right:
    st.subheader("Any sample (uses the best model)")
    split = st.selectbox("Split", ds.splits, index=ds.splits.index("validation") if "validation" in ds.splits else 0)
    ids = ds.indices(split)
    if ss.get("sample_k", 0) > len(ids) - 1:
        ss["sample_k"] = 0
    k = st.number_input(f"Image (0–{len(ids) - 1})", 0, max(len(ids) - 1, 0), key="sample_k")
    c = st.columns(2)  # buttons on their own row: full labels at 1280 px
    c[0].button("Random", icon=":material/casino:", on_click=pick_random, args=(len(ids), split), width="stretch")
    run_model = c[1].button("Reconstruct", icon=":material/auto_fix_high:", width="stretch")
    if ss.get("sample_random") is not None:
        st.caption("Random picked image {1} of {0}.".format(*ss["sample_random"]))
    if run_model:
        with user_errors():
            from vae.model import inference

            image = ds.images[ids[k]][None]
            pair = pairs_grid(image, inference.reconstruct(model_of(run_dir), image), columns=1)
            keep("sample", (split, int(k), pair))
    if (run["name"], model_stamp, "sample") in kept:
        s_split, s_k, s_img = kept[(run["name"], model_stamp, "sample")]
        st.image(s_img, width=260, output_format="PNG", caption=f"{s_split} #{s_k}: input | reconstruction")

if ds.meta.get("family") == "starfish" and "transects" in ds.splits:
    hole = transects.hole_of(ds)
    st.subheader("Transects and the hole" if hole["punctured"] else "Transects")
    st.caption(
        "Ground truth above reconstruction, P1 / P2 / P3 from top; uses the best model of the run. "
        + (
            "Yellow boxes: the points in the hole, images this dataset left out of training (the study's figure)."
            if hole["punctured"]
            else "This dataset has no hole: the study's hole region is trained on here, so no point is marked."
        )
    )
    block_key = (run["name"], model_stamp, "transects")
    if st.button("Reconstruct transects" + (" and hole" if hole["punctured"] else ""), icon=":material/timeline:"):
        with user_errors():
            from vae.model import inference

            model = model_of(run_dir)
            keep(
                "transects",
                transects.transect_block(
                    ds, lambda x: inference.reconstruct(model, x), lambda x: inference.recon_loss_per_image(model, x)
                ),
            )
    block = kept.get(block_key)
    if block and block["image"] is not None:
        st.image(block["image"], output_format="PNG", caption=" / ".join(block["names"]) + " (top to bottom)")
        if not block["punctured"] and any(block["in_region"].values()):
            st.caption(
                "In the study's hole region (trained on here): "
                + "; ".join(f"{n} points {', '.join(map(str, p))}" for n, p in block["in_region"].items() if p)
            )
        if block["punctured"] and "hole_loss" not in block:
            st.caption(
                "No hole comparison: no validation image lies in the covered ring (a larger dataset has "
                "some). " + covered_ring(block["hole"]["radius"])
            )
        if "hole_loss" in block:
            c1, c2, c3 = st.columns(3)
            c1.metric(
                f"Hole, {block['n_hole']} images",
                f"{block['hole_loss']:.4f}",
                help="Mean reconstruction loss (binary cross-entropy per pixel) of the hole images",
            )
            c2.metric(
                f"Covered ring, {block['n_covered']} images",
                f"{block['covered_loss']:.4f}",
                help=covered_ring(block["hole"]["radius"]),
            )
            c3.metric("Ratio hole / covered ring", f"{block['hole_loss'] / block['covered_loss']:.2f}")
            st.caption(
                "Mean reconstruction loss per image (binary cross-entropy per pixel). "
                + covered_ring(block["hole"]["radius"])
            )
            inputs, recons = block["hole_pairs"]
            st.image(
                pairs_grid(inputs, recons, columns=6),
                output_format="PNG",
                caption="Hole images: input | reconstruction, with their losses: "
                + ", ".join(f"{v:.3f}" for v in block["hole_losses"]),
            )
