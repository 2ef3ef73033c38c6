"""Figures for the dashboard, built from arrays and metric dicts.

Pure functions: numbers in, a plotly figure or a uint8 image out. No
streamlit, no TensorFlow, no file formats, so the pages stay thin and every
figure can be tested alone. The study's own figures (docs/study.md, "What the study found") are the
model: input|reconstruction pairs in 2 columns x 10 rows, transect strips with
a yellow box on the hole points, a 3-D embedding of black points with the
transects P1 (blue), P2 (green), P3 (red) as lines with markers.

plotly.express draws the standard figures (heatmaps: px.imshow; one point per run: px.scatter;
the parameter-space scatter matrix: px.scatter_matrix). graph_objects stays where a figure layers
different kinds of traces that express cannot put in one call: loss curves (a solid train line per
batch and dashed validation points per epoch, sharing a colour), the 3-D embedding (points, the
transects, the factor arrows), its film (animation frames), and bars with a cumulative line.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from vae.base import registry
from vae.model import methods

TRANSECT_COLOURS = {"P1": "blue", "P2": "green", "P3": "red"}
# The hole in dark gold (the study's yellow box), never red: transect P3 is red.
# validation purple, not orange: beside the hole's yellow an orange read as the same colour (green is P2's)
SPLIT_COLOURS = {"train": "#4c78a8", "validation": "#9467bd", "hole": "#d4a000", "transects": "#222222"}
LOSS_CURVES = ("loss", "recon", "beta_kl", "gamma_entanglement")  # the terms the loss chart draws (LOSS_TERMS labels)
YELLOW = np.array([255, 215, 0], np.uint8)
# The loss axis of a run, by its reduction (vae.model.methods.REDUCTIONS)
LOSS_UNIT = {
    "study": "loss (nats; recon = mean BCE per pixel)",
    "papers": "loss (nats; recon = BCE summed over pixels)",
}


# ---------------------------------------------------------------- the loss formula


def loss_latex(
    beta: float,
    gamma: float,
    entanglement: str = "seed",
    method: str = "beta-vae",
    method_params: Mapping | None = None,
) -> str:
    """The training loss with the current weights, as LaTeX (the study's part 3: L = βL_KL + L_crossent + γL_entg; the
    other methods' regularisers from vae.model.methods)."""
    term = registry.ENTANGLEMENT_TERMS.get(entanglement)
    ent = term.latex if term else r"L_{\mathrm{entg}}"
    return methods.loss_latex(method, dict(method_params or {}), beta, gamma, ent)


# ---------------------------------------------------------------- loss curves


def _x_of(row: Mapping, steps_per_epoch: int | None) -> float:
    if row.get("kind") == "epoch":
        return float(row.get("epoch", 0))
    if steps_per_epoch and "global_step" in row:
        return float(row["global_step"]) / steps_per_epoch
    if steps_per_epoch and "step" in row:
        return float(row.get("epoch", 1)) - 1 + float(row["step"]) / steps_per_epoch
    return float(row.get("global_step", row.get("step", 0)))


def loss_curves(
    metrics: Sequence[Mapping],
    steps_per_epoch: int | None = None,
    log_y: bool = False,
    terms: Sequence[tuple[str, str]] | None = None,
    title: str = "Losses",
    reduction: str = "study",
) -> go.Figure:
    """Training curves (batch lines, solid) and validation curves (epoch lines, dashed with markers).

    x is the epoch (fractional for batch lines when `steps_per_epoch` is known). `terms`: (key, label)
    pairs; by default the LOSS_CURVES terms with their vae.base.registry labels.
    """
    if terms is None:
        terms = [(key, registry.LOSS_TERMS[key]) for key in LOSS_CURVES]
    batch = [m for m in metrics if m.get("kind", "batch") == "batch"]
    epoch = [m for m in metrics if m.get("kind") == "epoch"]
    palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"]
    fig = go.Figure()
    for colour, (key, label) in zip(palette, terms):
        rows = [m for m in batch if _finite(m.get(key))]
        if not rows:  # fall back on epoch lines' training values when no batch lines exist
            rows = [m for m in epoch if _finite(m.get(key))]
        if rows:
            fig.add_trace(
                go.Scatter(
                    x=[_x_of(m, steps_per_epoch) for m in rows],
                    y=[m[key] for m in rows],
                    mode="lines",
                    name=f"{label} (train)",
                    line=dict(color=colour),
                )
            )
        vrows = [m for m in epoch if _finite(m.get("val_" + key))]
        if vrows:
            fig.add_trace(
                go.Scatter(
                    x=[float(m["epoch"]) for m in vrows],
                    y=[m["val_" + key] for m in vrows],
                    mode="lines+markers",
                    name=f"{label} (validation)",
                    line=dict(color=colour, dash="dash"),
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title=LOSS_UNIT[reduction],
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(font=dict(size=11)),
    )
    if log_y:
        fig.update_yaxes(type="log", exponentformat="e")  # 1e-4, never the SI "100μ" (μ is a latent mean here)
    return fig


def method_curves(
    metrics: Sequence[Mapping], method: str, steps_per_epoch: int | None = None, log_y: bool = False
) -> go.Figure:
    """A method's own diagnostics (TC estimate, capacity C, discriminator loss and accuracy, DIP parts)."""
    fig = loss_curves(
        metrics,
        steps_per_epoch,
        log_y,
        methods.diagnostic_terms(method),
        title=f"{methods.get(method).label}: its own terms",
    )
    fig.update_layout(yaxis_title="value", height=300)
    return fig


def entanglement_diagnostics(
    metrics: Sequence[Mapping], steps_per_epoch: int | None = None, log_y: bool = False
) -> go.Figure:
    """Every registered entanglement measure (seed, covariance, dip-i), whichever one trains, as diagnostics."""
    fig = loss_curves(
        metrics, steps_per_epoch, log_y, registry.entanglement_diagnostics(), title="Entanglement measures (unweighted)"
    )
    fig.update_layout(yaxis_title="value (unweighted)", height=300)
    return fig


# Per-epoch alignment keys: (metrics.jsonl key, label). Runs trained before the factor alignment
# logged `alignment_score`: the PCA score of the validation codes, shown under its own name.
ALIGNMENT_KEYS = [
    ("factor_alignment", "factor alignment (training codes)"),
    ("pca_alignment", "principal axes on latent axes (PCA alignment, training codes)"),
    ("alignment_score", "PCA alignment (validation codes, older run)"),
]


def analysis_curves(metrics: Sequence[Mapping]) -> go.Figure:
    """Per-epoch geometry of the latent means: factor alignment (datasets with factors), PCA
    alignment (gaps where the principal axes are not defined) and each transect's straightness."""
    epoch = [m for m in metrics if m.get("kind") == "epoch"]
    keys = list(ALIGNMENT_KEYS) + [
        (k, "straightness " + k.split("_", 1)[1])
        for k in sorted({k for m in epoch for k in m if k.startswith("straightness_")})
    ]
    fig = go.Figure()
    for key, label in keys:
        rows = [m for m in epoch if key in m]
        if any(_finite(m.get(key)) for m in rows):
            colour = {"factor_alignment": "#e67e22", "pca_alignment": "#17becf", "alignment_score": "#17becf"}.get(
                key, TRANSECT_COLOURS.get(key.split("_", 1)[-1])
            )
            fig.add_trace(
                go.Scatter(
                    x=[float(m["epoch"]) for m in rows],
                    y=[m[key] if _finite(m.get(key)) else None for m in rows],
                    mode="lines+markers",
                    name=label,
                    connectgaps=False,
                    line=dict(
                        width=4 if key == "factor_alignment" else 1.5,
                        color=colour,
                        dash="dot" if key.startswith("straightness") else "solid",
                    ),
                )
            )
    undefined = [m["epoch"] for m in epoch if "pca_alignment" in m and m["pca_alignment"] is None]
    title = "Latent geometry per epoch<br><sup>1 = aligned with the latent axes / a straight transect</sup>"
    if undefined:
        title += f"<br><sup>PCA alignment undefined (tied principal variances) at epoch(s) {undefined[:8]}</sup>"
    fig.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title="score",
        yaxis_range=[0, 1.05],
        height=400 if undefined else 380,
        margin=dict(l=10, r=10, t=80 if undefined else 60, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.32, x=0.0),
    )
    return fig


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# ---------------------------------------------------------------- images


def _as_gray(images) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def montage(images, ncols: int, pad: int = 2, value: int = 64) -> np.ndarray:
    """Tile (n,H,W) uint8 images row by row into one uint8 image with `pad` pixels of grey between tiles."""
    imgs = _as_gray(images)
    n, h, w = imgs.shape[:3]
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, math.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + imgs.shape[3:], value, np.uint8)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = imgs[k]
    return out


def pairs_grid(inputs, recons, columns: int = 2, pad: int = 2) -> np.ndarray:
    """The study's reconstruction figure: input|reconstruction pairs, `columns` pairs per row (2 x 10 for 20)."""
    a, b = _as_gray(inputs), _as_gray(recons)
    n = min(len(a), len(b))
    tiles = np.empty((2 * n,) + a.shape[1:], np.uint8)
    tiles[0::2], tiles[1::2] = a[:n], b[:n]
    return montage(tiles, 2 * columns, pad)


def transect_strip(truth, recon, in_hole: Sequence[bool] | None = None, pad: int = 3, box: int = 2) -> np.ndarray:
    """Ground truth row above reconstruction row (RGB), with a yellow box around the hole points (the study's transect figure)."""
    t, r = _as_gray(truth), _as_gray(recon)
    n, h, w = t.shape
    img = np.stack([montage(np.concatenate([t, r]), n, pad, 40)] * 3, axis=-1)
    for k, inside in enumerate(in_hole if in_hole is not None else [False] * n):
        if not inside:
            continue
        x0, x1 = pad + k * (w + pad) - box, pad + k * (w + pad) + w + box
        for row in (0, 1):
            y0, y1 = pad + row * (h + pad) - box, pad + row * (h + pad) + h + box
            y0, x0c = max(y0, 0), max(x0, 0)
            img[y0 : y0 + box, x0c:x1] = YELLOW
            img[y1 - box : y1, x0c:x1] = YELLOW
            img[y0:y1, x0c : x0c + box] = YELLOW
            img[y0:y1, x1 - box : x1] = YELLOW
    return img


# ---------------------------------------------------------------- parameter space


def parameter_space(
    columns: Mapping[str, np.ndarray],
    factor_names: Sequence[str],
    hole: tuple[Sequence[float], float] | None = None,
    max_points: int = 6000,
) -> go.Figure:
    """The dataset's factors as the study drew them.

    Two factors (starfish a, b): one scatter per split in the (a, b) plane, the
    transects as numbered lines, and the hole as a circle. More factors
    (sprites): a pairwise scatter matrix coloured by split.
    """
    split = np.asarray(columns.get("split", np.full(len(columns[factor_names[0]]), "train")), dtype=str)
    n = len(split)
    keep = np.arange(n) if n <= max_points else np.random.default_rng(0).choice(n, max_points, replace=False)
    if len(factor_names) == 2:
        x_name, y_name = factor_names
        fig = go.Figure()
        for s in [s for s in SPLIT_COLOURS if s != "transects"] + sorted(set(split) - set(SPLIT_COLOURS)):
            idx = keep[split[keep] == s]
            if len(idx):
                fig.add_trace(
                    go.Scattergl(
                        x=np.asarray(columns[x_name])[idx],
                        y=np.asarray(columns[y_name])[idx],
                        mode="markers",
                        name=f"{s} ({int((split == s).sum())})",
                        marker=dict(size=4, color=SPLIT_COLOURS.get(s)),
                    )
                )
        transect = np.asarray(columns.get("transect", np.full(n, "")), dtype=str)
        for name in sorted(set(transect) - {"", "nan", "None"}):
            idx = np.flatnonzero(transect == name)
            if "point" in columns:
                idx = idx[np.argsort(np.asarray(columns["point"])[idx])]
            fig.add_trace(
                go.Scatter(
                    x=np.asarray(columns[x_name])[idx],
                    y=np.asarray(columns[y_name])[idx],
                    mode="lines+markers",
                    name=f"transect {name}",
                    line=dict(color=TRANSECT_COLOURS.get(name, "black"), width=2),
                    marker=dict(size=6),
                )
            )
        if hole is not None:
            (cx, cy), radius = hole
            fig.add_shape(
                type="circle",
                x0=cx - radius,
                x1=cx + radius,
                y0=cy - radius,
                y1=cy + radius,
                line=dict(color=SPLIT_COLOURS["hole"], width=2, dash="dot"),
            )
        fig.update_layout(
            xaxis_title=f"{x_name}",
            yaxis_title=f"{y_name}",
            height=450,
            margin=dict(l=10, r=10, t=30, b=10),
            title="Parameter space",
        )
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        return fig
    frame = {f: np.asarray(columns[f])[keep] for f in factor_names}
    fig = px.scatter_matrix(
        {**frame, "split": split[keep]},
        dimensions=list(factor_names),
        color="split",
        color_discrete_map=SPLIT_COLOURS,
        title="Pairwise factors",
        height=140 * len(factor_names) + 120,
    )
    fig.update_traces(showupperhalf=False, diagonal_visible=False, marker=dict(size=3))
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ---------------------------------------------------------------- latent space


def embedding_3d(
    mu: np.ndarray,
    dims: Sequence[int] = (0, 1, 2),
    colour: np.ndarray | None = None,
    colour_name: str = "",
    transects: Mapping[str, np.ndarray] | None = None,
    axis_names: Sequence[str] | None = None,
    title: str = "",
    height: int = 600,
    categorical: bool | None = None,
    arrows: Sequence[Mapping] | None = None,
    equal_scale: bool = True,
) -> go.Figure:
    """The study's part-2 figure: latent means as small points (black unless coloured), transects as lines.

    `mu` is (n, d); `dims` picks three columns (fewer than 3 latent dims pad with zeros).
    `transects` maps a name (P1, P2, P3) to its (L, d) latent means in transect order.
    `arrows`: dicts with name, origin (d,), vector (d,), colour and optional dash: drawn as a
    line with a cone at its tip (factor directions, principal axes).
    `equal_scale`: one unit is as long on every axis (plotly aspectmode "data"), so a flat
    sheet looks flat; False stretches each axis to the same size (the study's figure).
    """
    mu = np.asarray(mu, dtype=float)
    names = list(axis_names) if axis_names else [f"μ{i + 1}" for i in range(mu.shape[1])]
    cols = [(mu[:, i] if i < mu.shape[1] else np.zeros(len(mu))) for i in list(dims)[:3]]
    while len(cols) < 3:
        cols.append(np.zeros(len(mu)))
    labels = [names[i] if i < len(names) else "0" for i in list(dims)[:3]] + ["0"] * (3 - len(dims))
    fig = go.Figure()
    if colour is None:
        fig.add_trace(
            go.Scatter3d(
                x=cols[0], y=cols[1], z=cols[2], mode="markers", name="μ", marker=dict(size=1.5, color="black")
            )
        )
    else:
        colour = np.asarray(colour)
        if categorical is None:
            categorical = colour.dtype.kind in "OUSb"
        if categorical:
            for k, value in enumerate(sorted(set(colour.tolist()), key=str)):
                m = colour == value
                fig.add_trace(
                    go.Scatter3d(
                        x=cols[0][m],
                        y=cols[1][m],
                        z=cols[2][m],
                        mode="markers",
                        name=str(value),
                        marker=dict(size=2, color=SPLIT_COLOURS.get(str(value))),
                    )
                )
        else:
            fig.add_trace(
                go.Scatter3d(
                    x=cols[0],
                    y=cols[1],
                    z=cols[2],
                    mode="markers",
                    name="μ",
                    marker=dict(
                        size=2,
                        color=colour.astype(float),
                        colorscale="Viridis",
                        colorbar=dict(title=colour_name, len=0.6),
                        showscale=True,
                    ),
                )
            )
    for name, points in (transects or {}).items():
        p = np.asarray(points, dtype=float)
        pc = [(p[:, i] if i < p.shape[1] else np.zeros(len(p))) for i in list(dims)[:3]]
        while len(pc) < 3:
            pc.append(np.zeros(len(p)))
        colour_t = TRANSECT_COLOURS.get(name, "purple")
        fig.add_trace(
            go.Scatter3d(
                x=pc[0],
                y=pc[1],
                z=pc[2],
                mode="lines+markers",
                name=name,
                line=dict(color=colour_t, width=4),
                marker=dict(size=4, color=colour_t),
            )
        )
    pick = list(dims)[:3]
    for arrow in arrows or ():
        o = np.asarray(arrow["origin"], dtype=float)
        v = np.asarray(arrow["vector"], dtype=float)
        a = [float(o[i]) if i < o.size else 0.0 for i in pick] + [0.0] * (3 - len(pick))
        b = [float(o[i] + v[i]) if i < o.size else 0.0 for i in pick] + [0.0] * (3 - len(pick))
        colour_a = arrow.get("colour", "black")
        fig.add_trace(
            go.Scatter3d(
                x=[a[0], b[0]],
                y=[a[1], b[1]],
                z=[a[2], b[2]],
                mode="lines",
                name=arrow["name"],
                legendgroup=arrow["name"],
                line=dict(color=colour_a, width=6, dash=arrow.get("dash", "solid")),
            )
        )
        tip = np.subtract(b, a)
        if np.linalg.norm(tip) > 0:
            fig.add_trace(
                go.Cone(
                    x=[b[0]],
                    y=[b[1]],
                    z=[b[2]],
                    u=[tip[0]],
                    v=[tip[1]],
                    w=[tip[2]],
                    sizemode="absolute",
                    sizeref=0.12 * float(np.linalg.norm(tip)),
                    anchor="tip",
                    showscale=False,
                    colorscale=[[0, colour_a], [1, colour_a]],
                    name=arrow["name"],
                    legendgroup=arrow["name"],
                    showlegend=False,
                )
            )
    aspect = _aspect(cols) if equal_scale else None
    fig.update_layout(
        title=title or None,
        height=int(height - 70 * (1 - aspect["z"])) if aspect else height,  # a flat box needs less height
        margin=dict(l=10, r=10, t=30 if title else 0, b=0),
        scene=dict(
            xaxis_title=labels[0],
            yaxis_title=labels[1],
            zaxis_title=labels[2],
            aspectmode="manual" if aspect else "cube",
            aspectratio=aspect,
            camera=_camera(aspect),
        ),
        legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=0.0, x=0.0),
        uirevision="embedding",
    )
    return fig


def own_axis_angles(abs_cos, assigned) -> list:
    """Each factor's angle (degrees, 1 decimal) to its own (assigned) latent axis from the |cos| matrix
    (factors x latents); None where it has none."""
    m = np.asarray(abs_cos, dtype=float)
    return [
        round(float(np.degrees(np.arccos(np.clip(m[k, i], 0.0, 1.0)))), 1) if i >= 0 else None
        for k, i in enumerate(assigned)
    ]


def _aspect(cols: Sequence[np.ndarray], floor: float = 0.15) -> dict | None:
    """The box's aspect ratios: equal scale (the ranges' ratios, the longest 1), except that an axis under
    `floor` of the longest is drawn `floor` long. Plotly's own "data" mode scales a flat box up until a
    collapsed latent puts its camera inside the cloud; a box within the unit cube is seen whole. None:
    no points to scale by."""
    spans = [float(np.ptp(c)) if len(c) else 0.0 for c in cols]
    top = max(spans) if spans else 0.0
    if top <= 0:
        return None
    r = [max(s / top, floor) for s in spans]
    return dict(x=r[0], y=r[1], z=r[2])


def _camera(aspect: dict | None) -> dict:
    """A camera that frames the box: nearer for a flat box, and looking below its centre so that a flat box
    sits near the title instead of in the middle of an empty scene (the band above it shrinks by about a
    third; the legend fills the room below)."""
    size = (aspect["x"] + aspect["y"] + aspect["z"]) / 3 if aspect else 1.0
    flat = 1.0 - (aspect["z"] if aspect else 1.0)  # 0 for a cube, 0.85 for the flattest box _aspect draws
    k = (0.8 + 0.45 * size) * (1 - 0.06 * flat)  # nearer still would clip the axis titles at the sides
    return dict(eye=dict(x=1.3 * k, y=1.3 * k, z=0.9 * k), center=dict(x=0, y=0, z=-0.22 * flat))


def scale_note(points: np.ndarray, dims: Sequence[int], axis_names: Sequence[str], flat: float = 0.05) -> str:
    """The ranges of the drawn axes, and a warning when one is under `flat` of the largest (a flat sheet)."""
    p = np.asarray(points, dtype=float)
    pick = [i for i in list(dims)[:3] if i < p.shape[1]]
    if not len(p) or not pick:
        return ""
    ranges = np.ptp(p[:, pick], axis=0)
    text = "Drawn to scale; ranges " + ", ".join(f"{axis_names[i]} {r:.3g}" for i, r in zip(pick, ranges))
    top = ranges.max()
    thin = [axis_names[i] for i, r in zip(pick, ranges) if top > 0 and r < flat * top]
    if thin:
        text += (
            f". Nearly flat along {', '.join(thin)} (under {flat:.0%} of the widest range): "
            "what looks like a sheet there is close to a line or a plane"
        )
    return text


def embedding_film(
    frames: Sequence[tuple[int, np.ndarray]],
    dims: Sequence[int] = (0, 1, 2),
    axis_names: Sequence[str] | None = None,
    title: str = "",
    height: int = 600,
    duration_ms: int = 600,
) -> go.Figure:
    """The per-epoch latent means as a plotly animation: one frame per (epoch, (n, d) means),
    a play button and an epoch slider. Axis ranges are fixed over all epochs and drawn to scale,
    so the sheet is seen unrolling, not rescaled."""
    if not frames:
        raise ValueError("embedding_film needs at least one (epoch, means) frame")
    pick = list(dims)[:3]
    d = frames[0][1].shape[1]
    names = list(axis_names) if axis_names else [f"μ{i + 1}" for i in range(d)]

    def xyz(mu):
        cols = [(mu[:, i] if i < mu.shape[1] else np.zeros(len(mu))) for i in pick]
        return cols + [np.zeros(len(mu))] * (3 - len(cols))

    allp = np.vstack([np.column_stack(xyz(np.asarray(m, dtype=float))) for _, m in frames])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1e-9)
    lo, hi = lo - 0.02 * span, hi + 0.02 * span
    ratio = span / span.max()
    first = xyz(np.asarray(frames[0][1], dtype=float))
    fig = go.Figure(
        data=[
            go.Scatter3d(
                x=first[0], y=first[1], z=first[2], mode="markers", name="μ", marker=dict(size=1.5, color="black")
            )
        ],
        frames=[
            go.Frame(name=str(e), data=[go.Scatter3d(x=c[0], y=c[1], z=c[2])])
            for e, c in ((e, xyz(np.asarray(m, dtype=float))) for e, m in frames)
        ],
    )
    labels = [names[i] if i < len(names) else "0" for i in pick] + ["0"] * (3 - len(pick))
    fig.update_layout(
        title=title or None,
        height=height,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        scene=dict(
            xaxis=dict(title=labels[0], range=[lo[0], hi[0]]),
            yaxis=dict(title=labels[1], range=[lo[1], hi[1]]),
            zaxis=dict(title=labels[2], range=[lo[2], hi[2]]),
            aspectmode="manual",
            aspectratio=dict(x=ratio[0], y=ratio[1], z=ratio[2]),
        ),
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                x=0.0,
                y=0.0,
                xanchor="left",
                yanchor="bottom",
                buttons=[
                    dict(
                        label="▶ Play",
                        method="animate",
                        args=[
                            None,
                            dict(
                                frame=dict(duration=duration_ms, redraw=True),
                                fromcurrent=True,
                                transition=dict(duration=0),
                            ),
                        ],
                    ),
                    dict(
                        label="❚❚ Pause",
                        method="animate",
                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")],
                    ),
                ],
            )
        ],
        sliders=[
            dict(
                active=0,
                currentvalue=dict(prefix="epoch "),
                x=0.15,
                len=0.85,
                y=0.0,
                steps=[
                    dict(
                        label=f.name,
                        method="animate",
                        args=[[f.name], dict(mode="immediate", frame=dict(duration=0, redraw=True))],
                    )
                    for f in fig.frames
                ],
            )
        ],
        uirevision="film",
    )
    return fig


def heatmap(
    matrix: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str = "",
    col_labels: Sequence[str] | None = None,
    zmid: float | None = 0.0,
    colorscale: str = "RdBu_r",
    zmin: float | None = None,
    zmax: float | None = None,
) -> go.Figure:
    """A matrix as an annotated heatmap (covariance, correlation, |cos| of principal vs latent axes)."""
    m = np.asarray(matrix, dtype=float)
    rows = list(labels) if labels is not None else [str(i + 1) for i in range(m.shape[0])]
    cols = (
        list(col_labels)
        if col_labels is not None
        else (rows if m.shape[0] == m.shape[1] else [str(j + 1) for j in range(m.shape[1])])
    )
    fig = px.imshow(
        m,
        x=cols,
        y=rows,
        text_auto=".3g",
        aspect="auto",
        color_continuous_scale=colorscale,
        color_continuous_midpoint=zmid,
        zmin=zmin,
        zmax=zmax,
    )
    fig.update_layout(title=title or None, height=120 + 45 * len(rows), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def explained_variance(ratios: Sequence[float], title: str = "Explained variance of μ") -> go.Figure:
    """Bar per principal axis with the cumulative line."""
    r = np.asarray(ratios, dtype=float)
    names = [f"PC{i + 1}" for i in range(len(r))]
    fig = go.Figure(
        [
            go.Bar(x=names, y=r, name="ratio"),
            go.Scatter(x=names, y=np.cumsum(r), name="cumulative", mode="lines+markers"),
        ]
    )
    fig.update_layout(title=title, yaxis_range=[0, 1.05], height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


# Distinct colours for categories (methods, settings): D3's ten (Streamlit's theme starts with two blues)
QUALITATIVE = px.colors.qualitative.D3
MARKERS = {"finished, converged": "circle", "finished, not converged": "circle-open", "stopped / not finished": "x"}


def scatter_against(
    rows: Sequence[Mapping],
    x: str,
    y: str,
    colour: str | None = None,
    log_x: bool = True,
    hover: str = "name",
    facet: str | None = None,
    symbol: str | None = None,
    chance: Mapping | None = None,
) -> go.Figure:
    """One point per run: column `y` against setting `x`; log x with 0 drawn at the left edge.

    `colour` and `facet` (one panel per value) may be any column; `symbol` a column whose values are
    keys of MARKERS (the Compare page's convergence flag). A non-numeric `x` is drawn as categories.
    `chance` ({'mean', 'lo', 'hi'}: vae.views.compare.chance_band) is drawn as a grey band.
    """
    pts = [r for r in rows if r.get(x) is not None and _finite(r.get(y))]
    numeric = all(_finite(r.get(x)) for r in pts)
    xs = [float(r[x]) if numeric else str(r[x]) for r in pts]
    positive = sorted({v for v in xs if numeric and v > 0})
    log_x = log_x and numeric and bool(positive)  # only zeros: a linear axis, whose one tick reads 0
    ticks = None
    if log_x:
        zero_at = positive[0] / 10  # 0 has no place on a log axis: drawn a decade left, on a tick labelled "0"
        has_zero = any(v <= 0 for v in xs)
        xs = [v if v > 0 else zero_at for v in xs]
        values = (
            positive
            if len(positive) <= 8
            else [10.0**k for k in range(math.ceil(math.log10(positive[0])), math.floor(math.log10(positive[-1])) + 1)]
        )
        ticks = ([zero_at] if has_zero else []) + values, (["0"] if has_zero else []) + [_tick(v) for v in values]
    frame = {"_x": xs, y: [r[y] for r in pts], "_hover": [str(r.get(hover, "")) for r in pts]}
    orders = {} if numeric else {"_x": sorted(set(xs), key=_natural)}
    for role, column in (("_colour", colour), ("_facet", facet), ("_symbol", symbol)):
        if column:
            values = [str(r.get(column)) for r in pts]
            frame[role] = [f"{column}={v}" for v in values] if role == "_colour" else values
            orders[role] = sorted(set(frame[role]), key=_natural)
    fig = px.scatter(
        frame,
        x="_x",
        y=y,
        color="_colour" if colour else None,
        facet_col="_facet" if facet else None,
        symbol="_symbol" if symbol else None,
        symbol_map=MARKERS,
        category_orders=orders,
        hover_name="_hover",
        log_x=log_x,
        facet_col_spacing=0.04,
        color_discrete_sequence=QUALITATIVE,
        labels={"_x": x, "_colour": colour or "", "_symbol": symbol or "", "_facet": facet or ""},
    )
    if not colour:
        fig.update_traces(marker_color="#1f77b4")
    fig.update_traces(marker_size=10, marker_line_width=2)
    fig.for_each_trace(lambda t: t.update(marker_line_color=t.marker.color))  # open symbols in the point's colour
    fig.for_each_annotation(lambda a: a.update(text=a.text.replace("=", " = ", 1)))  # "facet = value"
    fig.update_layout(
        yaxis_title=y,
        height=400,
        margin=dict(l=10, r=10, t=40 if facet else 30, b=10),
        showlegend=bool(colour or symbol),
        legend=dict(orientation="h", y=-0.25, title_text=""),
    )
    fig.update_xaxes(
        title_text=x
        + (" (log scale; 0 on its own tick)" if ticks and ticks[1][0] == "0" else " (log scale)" if log_x else "")
    )
    if log_x:
        fig.update_xaxes(type="log", tickmode="array", tickvals=ticks[0], ticktext=ticks[1])
    if chance:
        fig.add_hrect(
            y0=chance["lo"],
            y1=chance["hi"],
            fillcolor="rgba(128,128,128,0.18)",
            line_width=0,
            layer="below",
            row="all",
            col="all",
        )
        fig.add_hline(
            y=chance["mean"],
            line=dict(color="grey", dash="dash", width=1),
            row="all",
            col="all",
            annotation_text="chance (random rotations)",
            annotation_position="top left",
        )
    return fig


def _tick(v: float) -> str:
    """A log axis's tick: 1e-3, 2e-4 (never SI prefixes like 100µ), 0.01 and 0.1 as they are."""
    mantissa, exponent = f"{v:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}" if abs(int(exponent)) >= 3 else f"{v:g}"


def _natural(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def traversal_codes(
    mean: np.ndarray, direction: np.ndarray, spread: float, steps: int = 7, span: float = 2.0
) -> np.ndarray:
    """(steps, d) latent codes from `mean` along the unit `direction` by ±span·spread."""
    direction = np.asarray(direction, dtype=float)
    direction = direction / (np.linalg.norm(direction) or 1.0)
    return np.asarray(mean, dtype=float)[None, :] + np.outer(np.linspace(-span, span, steps) * spread, direction)


def stack_strips(strips: Iterable[np.ndarray], pad: int = 4) -> np.ndarray:
    """Stack equally wide uint8 image rows vertically with padding."""
    strips = list(strips)
    width = max(s.shape[1] for s in strips)
    out = []
    for s in strips:
        if s.shape[1] < width:
            s = np.pad(s, ((0, 0), (0, width - s.shape[1])) + ((0, 0),) * (s.ndim - 2), constant_values=64)
        out.append(s)
        out.append(np.full((pad, width) + s.shape[2:], 255, np.uint8))
    return np.concatenate(out[:-1])


FACTOR_COLOURS = ["#e67e22", "#8e44ad", "#16a085", "#c0392b", "#2c3e50"]
PC_COLOURS = ["#17becf", "#1f77b4", "#7f7f7f"]  # PC1-3 told apart (dashed: principal axes)


def alignment_arrows(
    codes: np.ndarray,
    factors: np.ndarray | None,
    factor_align: Mapping | None,
    pca: Mapping | None,
    factor_names: Sequence[str] = (),
) -> list[dict]:
    """Arrows for embedding_3d from the codes' mean: each factor's direction (its change in code
    space over +-1 std of the factor, solid, coloured) and each principal axis (+-1 sd long from
    the mean outwards, 2 sd in all; dashed cyan, or dotted when the axes are not defined)."""
    x = np.asarray(codes, dtype=float)
    centre = x.mean(axis=0)
    out = []
    if factor_align is not None and factors is not None:
        f = np.asarray(factors, dtype=float)
        f = f[:, None] if f.ndim == 1 else f
        for k, direction in enumerate(np.asarray(factor_align["directions"], dtype=float)):
            length = 2.0 * float(factor_align["slopes"][k]) * float(f[:, k].std())
            name = factor_names[k] if k < len(factor_names) else f"factor {k + 1}"
            out.append(
                {
                    "name": f"{name} direction",
                    "origin": centre - direction * length / 2,
                    "vector": direction * length,
                    "colour": FACTOR_COLOURS[k % len(FACTOR_COLOURS)],
                }
            )
    if pca is not None:
        dash = "dash" if pca.get("conditioned", True) else "dot"
        for k, (axis, var) in enumerate(
            zip(np.asarray(pca["components"], dtype=float), np.asarray(pca["explained_variance"], dtype=float))
        ):
            if pca.get("leading") is not None and not pca["leading"][k]:
                continue
            sd = float(np.sqrt(max(var, 0.0)))
            out.append(
                {
                    "name": f"PC{k + 1}",
                    "origin": centre - axis * sd,
                    "vector": 2 * axis * sd,
                    "colour": PC_COLOURS[k % len(PC_COLOURS)],
                    "dash": dash,
                }
            )
    # No arrow longer than the cloud (a factor the codes barely follow gets a huge slope): cut to 2 sd
    # of the codes' total spread either side, and say so in its name.
    cap = 4.0 * float(np.sqrt(x.var(axis=0).sum())) if len(x) else 0.0
    for arrow in out:
        length = float(np.linalg.norm(arrow["vector"]))
        if cap > 0 and length > cap:
            mid = arrow["origin"] + arrow["vector"] / 2
            arrow["vector"] = arrow["vector"] * (cap / length)
            arrow["origin"] = mid - arrow["vector"] / 2
            arrow["name"] += " (cut to the cloud's size)"
    return out


# ---- the hole's error profile and what the entanglement term prefers


def hole_profile(profile: Sequence[Mapping], ring_error: float | None, title: str = "") -> go.Figure:
    """The hole's systematic error against distance from the rim (vae.measures.analysis.hole_interpolation's
    `profile`: one point per equal-area annulus, RMS and its excess over the covered ring), with the ring's
    error as a dashed line."""
    mid = [p["from_rim_mid"] for p in profile]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=mid,
            y=[p["rms"] for p in profile],
            mode="lines+markers",
            name="RMS error",
            text=[f"n = {p['n']}" for p in profile],
        )
    )
    fig.add_trace(
        go.Scatter(
            x=mid,
            y=[p["excess"] for p in profile],
            mode="lines+markers",
            name="excess over the ring (headline: its largest)",
        )
    )
    if ring_error is not None and _finite(ring_error):
        fig.add_hline(
            y=float(ring_error),
            line_dash="dash",
            line_color="grey",
            annotation_text="covered ring",
            annotation_position="top left",
        )
    fig.update_layout(
        title=title or "Hole error against distance from the rim",
        height=320,
        xaxis_title="distance from the rim in (a, b) (0 = rim)",
        yaxis_title="error / hole diameter",
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def entanglement_profile_plot(prof: Mapping, axis_names: Sequence[str], title: str = "") -> go.Figure:
    """vae.measures.analysis.entanglement_profile: the term relative to its value at 0°, one line per
    latent plane, as the codes are rotated in that plane. A minimum at 45° means the term prefers the
    codes mixed; at 0° or 90°, as they are."""
    fig = go.Figure()
    for (i, j), rel, best in zip(prof["planes"], np.asarray(prof["relative"], float), prof["best_angle"]):
        fig.add_trace(
            go.Scatter(
                x=list(prof["angles"]),
                y=rel,
                mode="lines",
                name=f"{axis_names[i]}–{axis_names[j]} (lowest at {float(best):g}°)",
            )
        )
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=title or f"What the {prof['mode']} term prefers on this data",
        height=320,
        xaxis_title="rotation in the plane (°)",
        yaxis_title="term / term at 0°",
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig
