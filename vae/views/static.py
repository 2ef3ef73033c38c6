"""Static images (SVG, PNG) of the lab's 2-D plotly figures, drawn by matplotlib: no browser, no network.

plotly's own static engine (kaleido >= 1) needs a Google Chrome on the machine, and kaleido 0.2.1 (which
bundled one) fails on plotly 7's plotly.js; matplotlib is a pip wheel that draws offline on any machine.
This module redraws a plotly figure from its data and layout, for the trace types the export bundles hold:
scatter (markers, lines, error bars), box (with its points) and bar; category, linear and log axes with
their tick values and texts; facet panels (several x axes with domains); grey bands and dashed lines
(shapes) and their labels; the title and the legend. Another trace type raises `Unsupported` (the export
says so and keeps the plotly JSON and HTML).

In the SVG, text stays text (searchable, editable) and each trace's marks are one group whose id is
`trace<N>` (N: its index in fig.data), one `<use>` per point.

Never imports plotly's graph objects' machinery beyond reading the figure, nor streamlit or TensorFlow.
"""

from __future__ import annotations

import io
import re

import numpy as np

WIDTH_PX = 900
DPI = 100
SYMBOLS = {
    "circle": "o",
    "diamond": "D",
    "x": "x",
    "square": "s",
    "cross": "P",
    "triangle-up": "^",
    "triangle-down": "v",
    "star": "*",
}
D3 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


class Unsupported(ValueError):
    """The figure holds something this drawer cannot draw (its message names it)."""


def colour(value, default="#1f77b4"):
    """A plotly colour ('#1F77B4', 'grey', 'rgba(128,128,128,0.18)', 'rgb(1,2,3)') as matplotlib takes it."""
    if value is None:
        return default
    if isinstance(value, str):
        m = re.fullmatch(r"\s*rgba?\(([^)]*)\)\s*", value)
        if m:
            parts = [float(p) for p in m.group(1).split(",")]
            rgb = [p / 255 for p in parts[:3]]
            return (*rgb, parts[3] if len(parts) > 3 else 1.0)
    return value


def _text(title) -> str:
    if title is None:
        return ""
    if isinstance(title, str):
        return title
    return getattr(title, "text", None) or ""


def _strip_html(s: str) -> str:
    return re.sub(r"<[^>]+>", " ", s.replace("<br>", "\n")).strip()


def _axis_names(layout) -> list[str]:
    """['x', 'x2', ...]: the x axes the layout defines (at least 'x')."""
    names = {"x"}
    for key in layout.to_plotly_json():
        m = re.fullmatch(r"xaxis(\d*)", key)
        if m:
            names.add("x" + m.group(1))
    return sorted(names, key=lambda n: int(n[1:] or 1))


def _layout_axis(layout, ref: str):
    """layout.xaxis2 for 'x2', layout.yaxis for 'y'."""
    return layout[ref[0] + "axis" + ref[1:]]


def _categories(fig, x_ref: str, axis) -> list[str] | None:
    """The category order of a category x axis (None: not categorical)."""
    traces = [t for t in fig.data if (getattr(t, "xaxis", None) or "x") == x_ref]
    values = [v for t in traces for v in (t.x if t.x is not None else ())]
    is_cat = axis.type == "category" or any(isinstance(v, str) for v in values)
    if not is_cat:
        return None
    order = list(axis.categoryarray) if axis.categoryarray is not None else []
    for v in values:
        if str(v) not in order:
            order.append(str(v))
    return [str(v) for v in order]


def _numbers(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _draw(fig):
    """A matplotlib Figure drawn from the plotly figure `fig`."""
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    layout = fig.layout
    height_px = int(layout.height or 450)
    mfig = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI)
    title = _strip_html(_text(layout.title))
    # plotting area in figure fractions: room for the title at the top, the x title and legend below
    legend_names = []
    for t in fig.data:
        if t.showlegend is not False and t.name and t.name not in legend_names:
            legend_names.append(t.name)
    show_legend = layout.showlegend is not False and len(legend_names) > (0 if layout.showlegend else 1)
    top = 1 - (60 if title else 25) / height_px
    bottom = (55 + (22 * ((len(legend_names) + 2) // 3) if show_legend else 0)) / height_px
    left, right = 75 / WIDTH_PX, 1 - 20 / WIDTH_PX
    axes, cats = {}, {}
    for name in _axis_names(layout):
        xa = _layout_axis(layout, name)
        y_ref = xa.anchor if xa.anchor and xa.anchor != "free" else "y" + name[1:]
        ya = _layout_axis(layout, y_ref)
        x0, x1 = xa.domain or (0, 1)
        y0, y1 = ya.domain or (0, 1)
        gap = 0.01 if len(axes) else 0
        rect = (
            left + (right - left) * x0 + gap,
            bottom + (top - bottom) * y0,
            (right - left) * (x1 - x0) - gap,
            (top - bottom) * (y1 - y0),
        )
        share = {}
        if xa.matches and xa.matches in axes:
            share["sharex"] = axes[xa.matches]
        if ya.matches and "x" + ya.matches[1:] in axes:
            share["sharey"] = axes["x" + ya.matches[1:]]
        ax = mfig.add_axes(rect, **share)
        ax.set_facecolor("white")
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        axes[name] = ax
        axes[y_ref] = ax
        cats[name] = _categories(fig, name, xa)
        if xa.type == "log":
            ax.set_xscale("log")
        if ya.type == "log":
            ax.set_yscale("log")
        ax.set_xlabel(_strip_html(_text(xa.title)))
        ax.set_ylabel(_strip_html(_text(ya.title)))
        if ya.showticklabels is False:
            ax.tick_params(labelleft=False)
    _draw_traces(fig, axes, cats)
    for name in _axis_names(layout):
        ax, xa = axes[name], _layout_axis(layout, name)
        if cats[name] is not None:
            n = len(cats[name])
            ax.set_xticks(range(n), cats[name])
            ax.set_xlim(-0.6, n - 0.4)
        elif xa.tickvals is not None:
            ax.set_xticks(list(xa.tickvals), [str(v) for v in (xa.ticktext or xa.tickvals)])
            ax.minorticks_off()
    _draw_shapes(layout, axes, blended_transform_factory)
    _draw_annotations(layout, axes, mfig, (left, bottom, right, top), blended_transform_factory)
    if title:
        mfig.text(left, 1 - 12 / height_px, title, ha="left", va="top", fontsize=13)
    if show_legend:
        handles, labels = [], []
        for ax in set(axes.values()):
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        order = sorted(
            range(len(labels)), key=lambda k: legend_names.index(labels[k]) if labels[k] in legend_names else 99
        )
        mfig.legend(
            [handles[k] for k in order],
            [labels[k] for k in order],
            loc="lower center",
            ncol=min(3, len(labels)) or 1,
            frameon=False,
            bbox_to_anchor=(0.5, 4 / height_px),
            fontsize=9,
        )
    return mfig


def _xs(t, cats) -> np.ndarray:
    if t.x is None:
        return np.arange(len(t.y), dtype=float)
    if cats is not None:
        return np.array([cats.index(str(v)) for v in t.x], dtype=float)
    return _numbers(t.x)


def _draw_traces(fig, axes, cats) -> None:
    layout = fig.layout
    boxes = [t for t in fig.data if t.type == "box"]
    grouped = layout.boxmode == "group" and len(boxes) > 1
    width = 0.8 / len(boxes) if grouped else 0.5
    rng = np.random.default_rng(0)  # the same jitter on every export
    for k, t in enumerate(fig.data):
        x_ref = getattr(t, "xaxis", None) or "x"
        ax, cat = axes[x_ref], cats.get(x_ref)
        gid = f"trace{k}"
        label = t.name if t.showlegend is not False and t.name else None
        if t.type == "scatter":
            marker = t.marker
            col = colour(marker.color if isinstance(marker.color, str) else None, D3[k % len(D3)])
            x, y = _xs(t, cat), _numbers(t.y)
            mode = t.mode or "markers"
            if "lines" in mode:
                line = t.line
                ax.plot(
                    x,
                    y,
                    color=colour(line.color, col),
                    linewidth=(line.width or 2) * 0.75,
                    linestyle="--" if line.dash in ("dash", "dot", "dashdot") else "-",
                    label=label if "markers" not in mode else None,
                    gid=gid + "-line",
                )
            if "markers" in mode:
                symbol = marker.symbol or "circle"
                hollow = isinstance(symbol, str) and symbol.endswith("-open")
                m = SYMBOLS.get(symbol.replace("-open", "") if isinstance(symbol, str) else "circle", "o")
                size = marker.size if isinstance(marker.size, (int, float)) else 8
                edge = colour(marker.line.color, col) if marker.line and marker.line.color else col
                err = t.error_y
                if err is not None and err.array is not None and err.visible is not False:
                    up = _numbers(err.array)
                    down = _numbers(err.arrayminus) if err.arrayminus is not None else up
                    ax.errorbar(x, y, yerr=[down, up], fmt="none", ecolor=col, elinewidth=1.2, capsize=4, zorder=3)
                ax.scatter(
                    x,
                    y,
                    s=(size * 0.75) ** 2,
                    marker=m,
                    facecolors=col if m in ("x", "+") else "none" if hollow else col,  # x: its colour is the face's
                    edgecolors=None if m in ("x", "+") else col if hollow else edge,
                    linewidths=1.5 if hollow or m == "x" else (marker.line.width or 0.5) if marker.line else 0.5,
                    label=label,
                    zorder=4,
                    gid=gid,
                )
        elif t.type == "box":
            col = colour(t.marker.color, D3[k % len(D3)])
            x, y = _xs(t, cat), _numbers(t.y)
            shift = (boxes.index(t) - (len(boxes) - 1) / 2) * width if grouped else 0.0
            positions = sorted({v for v in x if np.isfinite(v)})
            data = [y[(x == p) & np.isfinite(y)] for p in positions]
            keep = [i for i, d in enumerate(data) if len(d)]
            if keep:
                ax.boxplot(
                    [data[i] for i in keep],
                    positions=[positions[i] + shift for i in keep],
                    widths=width * 0.8,
                    manage_ticks=False,
                    showfliers=False,
                    patch_artist=True,
                    boxprops=dict(facecolor="none", edgecolor=col),
                    medianprops=dict(color=col),
                    whiskerprops=dict(color=col),
                    capprops=dict(color=col),
                )
            if t.boxpoints in ("all", "suspectedoutliers", "outliers") or t.boxpoints is True:
                jitter = (t.jitter or 0) * width * 0.4
                ax.scatter(
                    x + shift + rng.uniform(-jitter, jitter, len(x)),
                    y,
                    s=(t.marker.size or 6) ** 2 * 0.6,
                    color=col,
                    label=label,
                    zorder=4,
                    gid=gid,
                )
        elif t.type == "bar":
            col = colour(t.marker.color if isinstance(t.marker.color, str) else None, D3[k % len(D3)])
            ax.bar(_xs(t, cat), _numbers(t.y), color=col, label=label, gid=gid)
        else:
            raise Unsupported(f"a {t.type} trace has no static drawing here")


def _ref_axis(axes, ref: str | None):
    """The matplotlib axes a shape's or annotation's 'x2 domain' / 'y2' / 'x' reference points to."""
    if not ref or ref == "paper":
        return None
    return axes.get(ref.split()[0])


def _draw_shapes(layout, axes, blended) -> None:
    from matplotlib.patches import Rectangle

    for s in layout.shapes or ():
        ax = _ref_axis(axes, s.xref) or _ref_axis(axes, s.yref)
        if ax is None:
            continue
        x_domain = bool(s.xref and s.xref.endswith("domain"))
        if s.type == "rect" and x_domain:
            ax.axhspan(s.y0, s.y1, xmin=s.x0, xmax=s.x1, color=colour(s.fillcolor, "grey"), lw=0, zorder=0)
        elif s.type == "line" and x_domain and s.y0 == s.y1:
            line = s.line
            ax.axhline(
                s.y0,
                xmin=s.x0,
                xmax=s.x1,
                color=colour(line.color, "grey"),
                linewidth=line.width or 1,
                linestyle="--" if line.dash in ("dash", "dot", "dashdot") else "-",
                zorder=1,
            )
        elif s.type == "rect":
            ax.add_patch(
                Rectangle((s.x0, s.y0), s.x1 - s.x0, s.y1 - s.y0, color=colour(s.fillcolor, "grey"), lw=0, zorder=0)
            )
        elif s.type == "line":
            ax.plot([s.x0, s.x1], [s.y0, s.y1], color=colour(s.line.color, "grey"), linewidth=s.line.width or 1)


def _draw_annotations(layout, axes, mfig, area, blended) -> None:
    left, bottom, right, top = area
    for a in layout.annotations or ():
        text = _strip_html(a.text or "")
        if not text:
            continue
        ha = {"left": "left", "right": "right"}.get(a.xanchor, "center")
        va = {"bottom": "bottom", "top": "top"}.get(a.yanchor, "center")
        if a.xref == "paper" and a.yref == "paper":
            mfig.text(
                left + (right - left) * a.x, bottom + (top - bottom) * a.y + 0.005, text, ha=ha, va=va, fontsize=10
            )
            continue
        ax = _ref_axis(axes, a.xref) or _ref_axis(axes, a.yref)
        if ax is None:
            continue
        x_tf = ax.transAxes if a.xref and a.xref.endswith("domain") else ax.transData
        y_tf = ax.transAxes if a.yref and a.yref.endswith("domain") else ax.transData
        ax.text(a.x, a.y, text, ha=ha, va=va, fontsize=9, color="#555555", transform=blended(x_tf, y_tf))


def render(fig, fmt: str) -> bytes:
    """The figure as SVG or PNG bytes (WIDTH_PX wide, the layout's height tall)."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"format must be svg or png, not {fmt!r}")
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "vae-lab", "font.size": 10}):
        mfig = _draw(fig)
        buf = io.BytesIO()
        if fmt == "svg":
            mfig.savefig(buf, format="svg", metadata={"Date": None})
        else:
            mfig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
