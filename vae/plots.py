"""Figures for the dashboard, built from arrays and metric dicts.

Pure functions: numbers in, a plotly figure or a uint8 image out. No
streamlit, no TensorFlow, no file formats, so the pages stay thin and every
figure can be tested alone. The study's own figures (FACTS.md §4) are the
model: input|reconstruction pairs in 2 columns x 10 rows, transect strips with
a yellow box on the hole points, a 3-D embedding of black points with the
transects P1 (blue), P2 (green), P3 (red) as lines with markers.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from . import registry

TRANSECT_COLOURS = {"P1": "blue", "P2": "green", "P3": "red"}
# The hole in dark gold (the study's yellow box), never red: transect P3 is red.
SPLIT_COLOURS = {"train": "#4c78a8", "validation": "#f58518", "hole": "#d4a000", "transects": "#222222"}
LOSS_CURVES = ("loss", "recon", "beta_kl", "gamma_entanglement")  # the terms the loss chart draws (LOSS_TERMS labels)
YELLOW = np.array([255, 215, 0], np.uint8)
LOSS_UNIT = "loss (nats; recon = mean BCE per pixel)"


# ---------------------------------------------------------------- the loss formula

def loss_latex(beta: float, gamma: float, entanglement: str = "seed") -> str:
    """The training loss with the current weights, as LaTeX (P3md: L = βL_KL + L_crossent + γL_entg)."""
    term = registry.ENTANGLEMENT_TERMS.get(entanglement)
    ent = term.latex if term else r"L_{\mathrm{entg}}"
    return (rf"L = L_{{\mathrm{{recon}}}} + \underbrace{{{_tex_number(beta)}}}_{{\beta}}\,L_{{\mathrm{{KL}}}}"
            rf" + \underbrace{{{_tex_number(gamma)}}}_{{\gamma}}\,{ent}")


def _tex_number(x: float) -> str:
    text = f"{x:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return (rf"10^{{{int(exponent)}}}" if mantissa == "1" else rf"{mantissa}\times10^{{{int(exponent)}}}")


# ---------------------------------------------------------------- loss curves

def _x_of(row: Mapping, steps_per_epoch: int | None) -> float:
    if row.get("kind") == "epoch":
        return float(row.get("epoch", 0))
    if steps_per_epoch and "global_step" in row:
        return float(row["global_step"]) / steps_per_epoch
    if steps_per_epoch and "step" in row:
        return float(row.get("epoch", 1)) - 1 + float(row["step"]) / steps_per_epoch
    return float(row.get("global_step", row.get("step", 0)))


def loss_curves(metrics: Sequence[Mapping], steps_per_epoch: int | None = None, log_y: bool = False,
                terms: Sequence[tuple[str, str]] | None = None, title: str = "Losses") -> go.Figure:
    """Training curves (batch lines, solid) and validation curves (epoch lines, dashed with markers).

    x is the epoch (fractional for batch lines when `steps_per_epoch` is known). `terms`: (key, label)
    pairs; by default the LOSS_CURVES terms with their vae.registry labels.
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
            fig.add_trace(go.Scatter(x=[_x_of(m, steps_per_epoch) for m in rows], y=[m[key] for m in rows],
                                     mode="lines", name=f"{label} (train)", line=dict(color=colour)))
        vrows = [m for m in epoch if _finite(m.get("val_" + key))]
        if vrows:
            fig.add_trace(go.Scatter(x=[float(m["epoch"]) for m in vrows], y=[m["val_" + key] for m in vrows],
                                     mode="lines+markers", name=f"{label} (validation)",
                                     line=dict(color=colour, dash="dash")))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title=LOSS_UNIT, height=380,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(font=dict(size=11)))
    if log_y:
        fig.update_yaxes(type="log", exponentformat="e")  # 1e-4, never the SI "100μ" (μ is a latent mean here)
    return fig


def entanglement_diagnostics(metrics: Sequence[Mapping], steps_per_epoch: int | None = None,
                             log_y: bool = False) -> go.Figure:
    """Every registered entanglement measure (seed, covariance, dip-i), whichever one trains, as diagnostics."""
    fig = loss_curves(metrics, steps_per_epoch, log_y, registry.entanglement_diagnostics(),
                      title="Entanglement measures (unweighted)")
    fig.update_layout(yaxis_title="value (unweighted)", height=300)
    return fig


def analysis_curves(metrics: Sequence[Mapping]) -> go.Figure:
    """Per-epoch geometry of the latent means: axis-alignment score and each transect's straightness."""
    epoch = [m for m in metrics if m.get("kind") == "epoch"]
    keys = [("alignment_score", "alignment score")] + [
        (k, "straightness " + k.split("_", 1)[1]) for k in sorted({k for m in epoch for k in m
                                                                    if k.startswith("straightness_")})]
    fig = go.Figure()
    for key, label in keys:
        rows = [m for m in epoch if _finite(m.get(key))]
        if rows:
            fig.add_trace(go.Scatter(x=[float(m["epoch"]) for m in rows], y=[m[key] for m in rows],
                                     mode="lines+markers", name=label))
    fig.update_layout(title="Latent geometry per epoch",
                      xaxis_title="epoch", yaxis_title="score (1 = aligned / straight)", yaxis_range=[0, 1.05], height=300,
                      margin=dict(l=10, r=10, t=40, b=10))
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
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[k]
    return out


def pairs_grid(inputs, recons, columns: int = 2, pad: int = 2) -> np.ndarray:
    """The study's reconstruction figure: input|reconstruction pairs, `columns` pairs per row (2 x 10 for 20)."""
    a, b = _as_gray(inputs), _as_gray(recons)
    n = min(len(a), len(b))
    tiles = np.empty((2 * n,) + a.shape[1:], np.uint8)
    tiles[0::2], tiles[1::2] = a[:n], b[:n]
    return montage(tiles, 2 * columns, pad)


def transect_strip(truth, recon, in_hole: Sequence[bool] | None = None, pad: int = 3, box: int = 2) -> np.ndarray:
    """Ground truth row above reconstruction row (RGB), with a yellow box around the hole points (NB-TR figure)."""
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
            img[y0:y0 + box, x0c:x1] = YELLOW
            img[y1 - box:y1, x0c:x1] = YELLOW
            img[y0:y1, x0c:x0c + box] = YELLOW
            img[y0:y1, x1 - box:x1] = YELLOW
    return img


# ---------------------------------------------------------------- parameter space

def parameter_space(columns: Mapping[str, np.ndarray], factor_names: Sequence[str],
                    hole: tuple[Sequence[float], float] | None = None, max_points: int = 6000) -> go.Figure:
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
                fig.add_trace(go.Scattergl(x=np.asarray(columns[x_name])[idx], y=np.asarray(columns[y_name])[idx],
                                           mode="markers", name=f"{s} ({int((split == s).sum())})",
                                           marker=dict(size=4, color=SPLIT_COLOURS.get(s))))
        transect = np.asarray(columns.get("transect", np.full(n, "")), dtype=str)
        for name in sorted(set(transect) - {"", "nan", "None"}):
            idx = np.flatnonzero(transect == name)
            if "point" in columns:
                idx = idx[np.argsort(np.asarray(columns["point"])[idx])]
            fig.add_trace(go.Scatter(x=np.asarray(columns[x_name])[idx], y=np.asarray(columns[y_name])[idx],
                                     mode="lines+markers", name=f"transect {name}",
                                     line=dict(color=TRANSECT_COLOURS.get(name, "black"), width=2),
                                     marker=dict(size=6)))
        if hole is not None:
            (cx, cy), radius = hole
            fig.add_shape(type="circle", x0=cx - radius, x1=cx + radius, y0=cy - radius, y1=cy + radius,
                          line=dict(color=SPLIT_COLOURS["hole"], width=2, dash="dot"))
        fig.update_layout(xaxis_title=f"{x_name}", yaxis_title=f"{y_name}", height=450,
                          margin=dict(l=10, r=10, t=30, b=10), title="Parameter space")
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        return fig
    frame = {f: np.asarray(columns[f])[keep] for f in factor_names}
    fig = px.scatter_matrix({**frame, "split": split[keep]}, dimensions=list(factor_names), color="split",
                            color_discrete_map=SPLIT_COLOURS, title="Pairwise factors",
                            height=140 * len(factor_names) + 120)
    fig.update_traces(showupperhalf=False, diagonal_visible=False, marker=dict(size=3))
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ---------------------------------------------------------------- latent space

def embedding_3d(mu: np.ndarray, dims: Sequence[int] = (0, 1, 2), colour: np.ndarray | None = None,
                 colour_name: str = "", transects: Mapping[str, np.ndarray] | None = None,
                 axis_names: Sequence[str] | None = None, title: str = "", height: int = 600,
                 categorical: bool | None = None) -> go.Figure:
    """The study's part-2 figure: latent means as small points (black unless coloured), transects as lines.

    `mu` is (n, d); `dims` picks three columns (fewer than 3 latent dims pad with zeros).
    `transects` maps a name (P1, P2, P3) to its (L, d) latent means in transect order.
    """
    mu = np.asarray(mu, dtype=float)
    names = list(axis_names) if axis_names else [f"μ{i + 1}" for i in range(mu.shape[1])]
    cols = [(mu[:, i] if i < mu.shape[1] else np.zeros(len(mu))) for i in list(dims)[:3]]
    while len(cols) < 3:
        cols.append(np.zeros(len(mu)))
    labels = [names[i] if i < len(names) else "0" for i in list(dims)[:3]] + ["0"] * (3 - len(dims))
    fig = go.Figure()
    if colour is None:
        fig.add_trace(go.Scatter3d(x=cols[0], y=cols[1], z=cols[2], mode="markers", name="μ",
                                   marker=dict(size=1.5, color="black")))
    else:
        colour = np.asarray(colour)
        if categorical is None:
            categorical = colour.dtype.kind in "OUSb"
        if categorical:
            for k, value in enumerate(sorted(set(colour.tolist()), key=str)):
                m = colour == value
                fig.add_trace(go.Scatter3d(x=cols[0][m], y=cols[1][m], z=cols[2][m], mode="markers",
                                           name=str(value), marker=dict(size=2, color=SPLIT_COLOURS.get(str(value)))))
        else:
            fig.add_trace(go.Scatter3d(x=cols[0], y=cols[1], z=cols[2], mode="markers", name="μ",
                                       marker=dict(size=2, color=colour.astype(float), colorscale="Viridis",
                                                   colorbar=dict(title=colour_name, len=0.6), showscale=True)))
    for name, points in (transects or {}).items():
        p = np.asarray(points, dtype=float)
        pc = [(p[:, i] if i < p.shape[1] else np.zeros(len(p))) for i in list(dims)[:3]]
        while len(pc) < 3:
            pc.append(np.zeros(len(p)))
        colour_t = TRANSECT_COLOURS.get(name, "purple")
        fig.add_trace(go.Scatter3d(x=pc[0], y=pc[1], z=pc[2], mode="lines+markers", name=name,
                                   line=dict(color=colour_t, width=4), marker=dict(size=4, color=colour_t)))
    fig.update_layout(title=title or None, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0),
                      scene=dict(xaxis_title=labels[0], yaxis_title=labels[1], zaxis_title=labels[2]),
                      legend=dict(itemsizing="constant"), uirevision="embedding")
    return fig


def heatmap(matrix: np.ndarray, labels: Sequence[str] | None = None, title: str = "",
            col_labels: Sequence[str] | None = None, zmid: float | None = 0.0, colorscale: str = "RdBu_r",
            zmin: float | None = None, zmax: float | None = None) -> go.Figure:
    """A matrix as an annotated heatmap (covariance, correlation, |cos| of principal vs latent axes)."""
    m = np.asarray(matrix, dtype=float)
    rows = list(labels) if labels is not None else [str(i + 1) for i in range(m.shape[0])]
    cols = list(col_labels) if col_labels is not None else (rows if m.shape[0] == m.shape[1] else
                                                           [str(j + 1) for j in range(m.shape[1])])
    fig = go.Figure(go.Heatmap(z=m, x=cols, y=rows, zmid=zmid, zmin=zmin, zmax=zmax, colorscale=colorscale,
                               text=np.vectorize(lambda v: f"{v:.3g}")(m) if m.size else None,
                               texttemplate="%{text}", hoverongaps=False))
    fig.update_layout(title=title or None, height=120 + 45 * len(rows), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(autorange="reversed")
    return fig


def explained_variance(ratios: Sequence[float], title: str = "Explained variance of μ") -> go.Figure:
    """Bar per principal axis with the cumulative line."""
    r = np.asarray(ratios, dtype=float)
    names = [f"PC{i + 1}" for i in range(len(r))]
    fig = go.Figure([go.Bar(x=names, y=r, name="ratio"),
                     go.Scatter(x=names, y=np.cumsum(r), name="cumulative", mode="lines+markers")])
    fig.update_layout(title=title, yaxis_range=[0, 1.05], height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig


LOG_AXIS = dict(type="log", exponentformat="e", dtick=1, minorloglabels="none")  # 1e-4 style, one label a decade
MARKERS = {"finished, converged": "circle", "finished, not converged": "circle-open",
           "stopped / not finished": "x"}


def scatter_against(rows: Sequence[Mapping], x: str, y: str, colour: str | None = None,
                    log_x: bool = True, hover: str = "name", facet: str | None = None,
                    symbol: str | None = None) -> go.Figure:
    """One point per run: column `y` against setting `x`; log x with 0 drawn at the left edge.

    `colour` and `facet` (one panel per value) may be any column; `symbol` a column whose values are
    keys of MARKERS (the Compare page's convergence flag). A non-numeric `x` is drawn as categories.
    """
    from plotly.subplots import make_subplots

    pts = [r for r in rows if r.get(x) is not None and _finite(r.get(y))]
    numeric = all(_finite(r.get(x)) for r in pts)
    log_x = log_x and numeric
    xs = [float(r[x]) if numeric else str(r[x]) for r in pts]
    if log_x and xs:
        positive = [v for v in xs if v > 0]
        floor = (min(positive) / 10) if positive else 1e-7
        xs = [v if v > 0 else floor for v in xs]
    panels = sorted({str(r.get(facet)) for r in pts}, key=_natural) if facet else [None]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{facet} = {p}" for p in panels] if facet else None)
    groups = sorted({str(r.get(colour)) for r in pts}, key=_natural) if colour else [None]
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    shown = set()
    for k, g in enumerate(groups):
        for col, panel in enumerate(panels, start=1):
            for mark in (sorted({str(r.get(symbol)) for r in pts}) if symbol else [None]):
                sel = [i for i, r in enumerate(pts) if (colour is None or str(r.get(colour)) == g)
                       and (facet is None or str(r.get(facet)) == panel)
                       and (symbol is None or str(r.get(symbol)) == mark)]
                if not sel:
                    continue
                name = " · ".join(v for v in ((f"{colour}={g}" if colour else None), mark) if v) or y
                fig.add_trace(go.Scatter(x=[xs[i] for i in sel], y=[pts[i][y] for i in sel], mode="markers",
                                         name=name, legendgroup=name, showlegend=name not in shown,
                                         text=[str(pts[i].get(hover, "")) for i in sel],
                                         hovertemplate="%{text}<br>" + x + "=%{x}<br>" + y + "=%{y}<extra></extra>",
                                         marker=dict(size=10, color=palette[k % len(palette)],
                                                     symbol=MARKERS.get(mark, "circle"),
                                                     line=dict(width=2, color=palette[k % len(palette)]))),
                              row=1, col=col)
                shown.add(name)
    fig.update_layout(yaxis_title=y, height=400, margin=dict(l=10, r=10, t=40 if facet else 30, b=10),
                      showlegend=bool(colour or symbol), legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text=x + (" (0 drawn at the left edge)" if log_x else ""))
    if log_x:
        fig.update_xaxes(**LOG_AXIS)
    return fig


def _natural(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def traversal_codes(mean: np.ndarray, direction: np.ndarray, spread: float, steps: int = 7,
                    span: float = 2.0) -> np.ndarray:
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
