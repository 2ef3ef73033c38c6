"""Embedding: the latent means of a snapshot in 3-D with the transects P1-P3 (the study's part-2 figure),
drawn to scale with the factors' directions and the principal axes as arrows; the factor alignment beside
the PCA alignment (each naming the codes it used); the epochs as a film; decoding / traversals."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages._evaluation import evaluation_panel
from pages._ui import (
    copy_settings_button,
    dataset_of,
    ensure_app_navigation,
    model_of,
    pick_run,
    rows_of,
    show_table,
    sort_runs,
    user_errors,
)
from vae.base.errors import UserError
from vae.measures import analysis
from vae.runs import folder
from vae.runs import run_index
from vae.views.plots import (
    alignment_arrows,
    embedding_3d,
    embedding_film,
    entanglement_profile_plot,
    explained_variance,
    heatmap,
    hole_profile,
    montage,
    own_axis_angles,
    scale_note,
    stack_strips,
    traversal_codes,
)

ensure_app_navigation()


@st.cache_data(max_entries=8, show_spinner=False)
def _alignments(
    run_path: str, epoch: int, mtime: float, factor_names: tuple, dataset_path: str, entanglement_mode: str = "seed"
):
    """Factor alignment (with the local version) and PCA alignment of one snapshot's training codes, and
    the hole as a zero-shot test (punctured datasets)."""
    snap = folder.load_snapshot(run_path, epoch)
    codes = snap["mu_train"]
    ds = dataset_of(dataset_path) if factor_names else None

    def columns(names, split):
        return np.column_stack(
            [np.asarray(ds.columns[f], dtype=np.float64)[rows_of(ds, snap[f"index_{split}"])] for f in names]
        )

    factors = columns(factor_names, "train") if factor_names and codes.shape[1] >= 2 else None
    fa, pca = analysis.snapshot_alignments(codes, factors)
    hole = None
    if {"a", "b"} <= set(factor_names) and "mu_hole" in snap and "mu_validation" in snap:
        hole = analysis.hole_test(
            codes,
            columns(("a", "b"), "train"),
            snap["mu_hole"],
            columns(("a", "b"), "hole"),
            snap["mu_validation"],
            columns(("a", "b"), "validation"),
            ds.meta.get("spec"),
        )
    profile = analysis.entanglement_profile(codes, mode=entanglement_mode) if codes.shape[1] >= 2 else None
    return fa, pca, factors, hole, profile


st.title("Embedding")
run = pick_run(sort_runs(run_index.list_runs()))
if not run:
    st.stop()
if run["state"] == folder.DAMAGED:
    st.error(run["message"], icon=":material/error:")
    st.stop()
copy_settings_button(run, key="embedding")
if not folder.list_snapshots(run["path"]):
    st.info("This run has no epoch snapshot yet; the first one is written at the end of epoch 1.")
    st.stop()
run_dir, epochs = Path(run["path"]), folder.list_snapshots(run["path"])
try:
    ds = dataset_of(run["config"]["dataset"])
except UserError as e:
    st.error(str(e))
    st.stop()

epoch = st.select_slider("Epoch snapshot", epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
try:
    snap = folder.load_snapshot(run_dir, epoch)
    rows_of(ds, np.concatenate([snap[k] for k in snap if k.startswith("index_")]))  # ids of this dataset
except UserError as e:  # a damaged snapshot, or one of another dataset
    st.error(str(e), icon=":material/error:")
    st.stop()
try:
    _evaluated = folder.read_evaluation(run_dir) or {}
except UserError:  # a damaged evaluation.json: the evaluation panel below says why
    _evaluated = {}
if _evaluated.get("evaluated_epoch") is not None:
    st.caption(
        f"evaluation.json evaluated epoch {_evaluated['evaluated_epoch']} "
        f"(best by {_evaluated.get('checkpoint_rule', 'validation loss')}); this page shows epoch {epoch}."
    )
d = snap["mu_train"].shape[1]
names = [f"μ{i + 1}" for i in range(d)]
c = st.columns([2.2, 1, 1, 1, 1.3])  # the Splits chips need the room at 1280 px
splits = c[0].multiselect("Splits", [s for s in ("train", "validation", "hole") if f"mu_{s}" in snap], ["train"])
dims = [
    c[k + 1].selectbox(f"Axis {k + 1}", range(d), index=min(k, d - 1), format_func=lambda i: names[i], key=f"dim{k}")
    for k in range(3)
]
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

snap_path = folder.snapshot_path(run_dir, epoch)
ent_mode = run["config"].get("entanglement", "seed")
fa, pca, factors, hole, ent_profile = _alignments(
    str(run_dir), epoch, snap_path.stat().st_mtime, tuple(ds.factor_names), str(run["config"]["dataset"]), ent_mode
)
n_codes = len(snap["mu_train"])
codes_label = f"training codes of epoch {epoch} (N = {n_codes})"
centre = snap["mu_train"].mean(0)
pcs = (mu - centre) @ pca["components"].T
pc_names = [f"PC{i + 1}" for i in range(d)]
show_arrows = st.toggle(
    "Arrows: factor directions (solid) and principal axes (dashed; dotted when undefined)", value=True, key="arrows"
)
left, right = st.columns(2)
left.plotly_chart(
    embedding_3d(
        mu,
        dims,
        colour,
        colour_by,
        transects,
        names,
        f"Latent means, epoch {epoch}",
        height=520,
        arrows=alignment_arrows(snap["mu_train"], factors, fa, pca, ds.factor_names) if show_arrows else None,
    ),
    use_container_width=True,
)
left.caption(scale_note(mu, dims, names))
right.plotly_chart(
    embedding_3d(
        pcs,
        dims,
        colour,
        colour_by,
        {k: (v - centre) @ pca["components"].T for k, v in transects.items()},
        pc_names,
        "The same points in principal-axis coordinates",
        height=520,
    ),
    use_container_width=True,
)
right.caption(scale_note(pcs, dims, pc_names))

if len(epochs) > 1 and st.toggle("Play the epochs as a film (loads every snapshot)", key="film"):
    step = max(1, len(snap["mu_train"]) // 1500)
    frames = [(e, folder.load_snapshot(run_dir, e)["mu_train"][::step]) for e in epochs]
    st.plotly_chart(
        embedding_film(
            frames,
            dims,
            names,
            f"Training codes, epochs {epochs[0]}–{epochs[-1]} (1 in {step} codes, fixed scale)",
            height=560,
        ),
        use_container_width=True,
    )

st.subheader("Do the factors lie on the latent axes?")
st.caption(
    f"Every number in this section uses the {codes_label}: the same codes as the Train page's per-epoch "
    "chart and evaluation.json's summary."
)
fcol, pcol = st.columns(2)
with fcol:
    st.markdown("**Factor alignment** (ground truth)")
    if fa is None:
        st.info("This dataset has no ground-truth factors: only the PCA alignment (right) is defined.")
    else:
        m = st.columns(2)
        m[0].metric(
            "Factor alignment",
            f"{fa['score']:.3f}",
            help="1: each factor moves its own latent axis and no other; 0: at 45° between two axes, or a "
            "factor bent evenly over two axes; 0.5 for two factors sharing one axis. Unchanged by "
            "scaling or warping a latent axis (each latent is rank-transformed).",
        )
        m[1].metric(
            "Local (along the sheet)",
            f"{fa['local']['score']:.3f}",
            help=f"The same from local Jacobians on {fa['local']['neighbours']} neighbours around "
            f"{fa['local']['centres']} points: low when a factor turns along a curved sheet. "
            "Reported, not the headline.",
        )
        st.plotly_chart(
            heatmap(
                fa["abs_cos"],
                list(ds.factor_names),
                "How much each factor moves each latent (rows unit length)",
                names,
                zmid=None,
                colorscale="Blues",
                zmin=0,
                zmax=1,
            ),
            use_container_width=True,
        )
        show_table(
            pd.DataFrame(
                {
                    "factor": list(ds.factor_names),
                    "nearest axis": [names[i] for i in fa["nearest_axis"]],
                    "angle to nearest (°)": np.round(fa["angles_deg"], 1),
                    "own axis": [names[i] if i >= 0 else "–" for i in fa["assigned_axis"]],
                    "angle to own (°)": own_axis_angles(fa["abs_cos"], fa["assigned_axis"]),
                    "score": np.round(fa["per_factor"], 3),
                    "R²": np.round(fa["r2"], 3),
                }
            ),
            hide_index=True,
            use_container_width=True,
        )
        st.caption(
            "own axis: factors put on distinct axes (a shared axis goes to one factor only); "
            "R²: how much of the factor the codes hold (held-out additive spline fit)."
        )
        if fa["note"]:
            st.caption(fa["note"])
with pcol:
    st.markdown("**Principal axes on latent axes** (PCA alignment; no ground truth, not the factors)")
    m = st.columns(2)
    if pca.get("trivial"):
        m[0].metric("Principal axes on latent axes", "trivial", help=pca["reason"])
        st.warning(f"Principal axes on latent axes: {pca['reason']}.", icon=":material/warning:")
    elif pca["score"] is None:
        m[0].metric("Principal axes on latent axes", "undefined", help=pca["reason"])
        st.warning(
            f"PCA alignment undefined, {pca['reason']}: the principal axes can turn freely inside the "
            "tied pair, so their angles to the latent axes mean nothing.",
            icon=":material/warning:",
        )
    else:
        m[0].metric(
            "Principal axes on latent axes",
            f"{pca['score']:.3f}",
            help="1: every principal axis lies on a latent axis; 0: the worst tilt. Says nothing about the "
            "factors. Defined only when the leading principal variances are apart by at least "
            "3 standard errors at this N, and at least two latents are active.",
        )
    m[1].metric(
        "Eigengap λk/λk+1",
        f"{pca['eigengap']:.3g}",
        help="The smallest ratio between consecutive leading principal variances (each ≥ 1% of the "
        "total); below 1.11 the principal axes are not defined",
    )
    st.plotly_chart(
        heatmap(
            pca["abs_cos"],
            pc_names,
            "|cos(principal axis, latent axis)|",
            names,
            zmid=None,
            colorscale="Blues",
            zmin=0,
            zmax=1,
        ),
        use_container_width=True,
    )
    show_table(
        pd.DataFrame(
            {
                "principal axis": pc_names,
                "variance": np.round(pca["explained_variance_ratio"], 4),
                "nearest axis": [names[i] for i in pca["nearest_axis"]],
                "angle (°)": np.round(pca["angles_deg"], 1),
                "near-tied": pca["degenerate"],
            }
        ),
        hide_index=True,
        use_container_width=True,
    )
    st.caption("variance: fraction of the total; near-tied: within 10% of a neighbour's variance.")

if hole is not None:
    st.subheader("The hole as a zero-shot test")
    st.caption(
        f"A thin-plate spline fitted on the {codes_label} maps (a, b) to codes; the hole images' codes "
        f"({hole['n_hole']}) and the validation images' in the covered ring ({hole['n_ring']}, "
        f"{hole['radius']:g} < distance ≤ {hole['radius'] + hole['margin']:g} from the centre) are compared "
        "with its prediction. Errors are systematic (averaged over "
        f"{hole['settings']['average']} neighbours in (a, b)), as a fraction of the hole's diameter in code "
        f"space ({hole['diameter']:.3g}). The hole error is the worst of {hole['settings']['bins']} "
        "equal-area annuli (the last is the inner half of the radius), in excess of the covered ring's error. "
        "Known answers: all hole images on the centre's code ≥ 1/3, on a rim code ≥ 0.57; smooth codes stay "
        "below codes snapped to seen shapes at the same noise."
    )
    m = st.columns(4)
    m[0].metric("Hole error", f"{hole['hole_error']:.3f}")
    m[1].metric("Covered-ring error", f"{hole['ring_error']:.3f}")
    m[2].metric("Ratio hole / ring", f"{hole['ratio']:.2f}")
    recon_ratio = (folder.evaluation_summary(run_dir) or {}).get("hole_recon_ratio")
    m[3].metric(
        "Recon loss hole / ring",
        f"{recon_ratio:.2f}" if recon_ratio is not None else "–",
        help="From evaluation.json (best model); also on the Reconstructions page",
    )
    if hole["note"]:
        st.caption(hole["note"])
    st.plotly_chart(hole_profile(hole["profile"], hole["ring_error"]), use_container_width=True)

if ent_profile is not None:
    st.subheader("What the term prefers on this data")
    st.caption(
        f"The {ent_profile['mode']} entanglement term of the {codes_label}, as the codes are rotated in each "
        "latent plane (the other latents fixed), relative to its value at 0°. A minimum at 45° means the "
        "term would lower itself by mixing the axes; at 0° (or 90°), by keeping them. On a uniform square "
        "the study's term is lowest at 45°, on a Laplace one at 0°."
    )
    st.plotly_chart(entanglement_profile_plot(ent_profile, names), use_container_width=True)

st.subheader("Spread of the training codes")
st.caption(f"From the {codes_label}: the variances are what the plots above draw to scale.")
var = snap["mu_train"].var(0)
m = st.columns(3)
m[0].metric(
    "Active units (var > 0.01)",
    int((var > 0.01).sum()),
    help="Latent dims whose mean varies over the images (Burda et al. 2016)",
)
# Lists of numbers as wrapping text, not st.metric (which cuts them with "…" at 1280 px)
m[1].markdown("Variance per latent axis  \n" + ", ".join(f"{n} {v:.2g}" for n, v in zip(names, var)))
m[2].markdown(
    "Principal variances  \n" + ", ".join(f"{n} {v:.2g}" for n, v in zip(pc_names, pca["explained_variance"]))
)
c1, c2, c3 = st.columns(3)
c1.plotly_chart(explained_variance(pca["explained_variance_ratio"]), use_container_width=True)
c2.plotly_chart(heatmap(np.cov(snap["mu_train"], rowvar=False), names, "Covariance of μ"), use_container_width=True)
with np.errstate(invalid="ignore", divide="ignore"):  # a dead dim has no correlation: shown blank
    corr = np.corrcoef(snap["mu_train"], rowvar=False)
c3.plotly_chart(heatmap(corr, names, "Correlation of μ", zmin=-1, zmax=1), use_container_width=True)

st.subheader("Decoding")
if st.toggle("Decode latent codes (loads the model and TensorFlow)", key="decode"):
    with user_errors():
        from vae.model import inference

        model, mean, std = model_of(run_dir), snap["mu_train"].mean(0), snap["mu_train"].std(0) + 1e-6
        lo, hi = snap["mu_train"].min(0), snap["mu_train"].max(0)
        cols = st.columns([1, 2])
        z = np.array(
            [cols[0].slider(names[i], float(lo[i]), float(hi[i]), float(mean[i]), key=f"z{i}") for i in range(d)]
        )
        cols[1].image(
            inference.decode(model, z[None])[0],
            output_format="PNG",
            caption=f"decode({np.round(z, 2).tolist()})",
            width=220,
        )
        along_latent = [
            montage(inference.decode(model, traversal_codes(mean, np.eye(d)[i], std[i])), 7) for i in range(d)
        ]
        along_pc = [
            montage(
                inference.decode(
                    model, traversal_codes(mean, pca["components"][k], np.sqrt(pca["explained_variance"][k]) + 1e-6)
                ),
                7,
            )
            for k in range(d)
        ]
        c1, c2 = st.columns(2)
        c1.image(stack_strips(along_latent), output_format="PNG", caption="Along each latent axis (rows μ1…), ±2 sd")
        c2.image(stack_strips(along_pc), output_format="PNG", caption="Along each principal axis (rows PC1…), ±2 sd")

st.divider()
evaluation_panel(run, key="embedding")
