"""Figures of a sweep (plotly): each setting's runs as dots over a box, with the mean and its
95% t interval, and chance (the measure over random rotations of the codes) as a grey band; the dots
carry their run's name (customdata) so a click can open it."""

from __future__ import annotations

import plotly.graph_objects as go

from vae.sweeps.report import label, per_setting

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def distribution_figure(
    rows: list[dict], x: str, metric: str, colour: str | None = None, sweep_name: str = "", chance: dict | None = None
):
    """Strip + box plot of `metric` against the swept `x`, one colour per value of `colour`; `chance`
    ({'mean', 'lo', 'hi'}, report.chance_band) is drawn as a grey band with a dashed mean."""
    fig = go.Figure()
    if chance:
        fig.add_hrect(y0=chance["lo"], y1=chance["hi"], fillcolor="rgba(128,128,128,0.18)", line_width=0, layer="below")
        fig.add_hline(
            y=chance["mean"],
            line=dict(color="grey", dash="dash", width=1),
            annotation_text="chance (random rotations)",
            annotation_position="top left",
        )
    colours = sorted({r.get(colour) for r in rows}, key=str) if colour else [None]
    xs = sorted(
        {r.get(x) for r in rows}, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0, str(v))
    )
    order = [_fmt(v) for v in xs]
    for i, c in enumerate(colours):
        rs = [r for r in rows if not colour or r.get(colour) == c]
        name = f"{colour}={_fmt(c)}" if colour else label(metric)
        col = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Box(
                x=[_fmt(r.get(x)) for r in rs],
                y=[r.get(metric) for r in rs],
                name=name,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker=dict(color=col, size=8),
                line=dict(color=col),
                fillcolor="rgba(0,0,0,0)",
                legendgroup=name,
                customdata=[[r.get("run"), r.get("seed")] for r in rs],
                hovertemplate="run %{customdata[0]}<br>seed %{customdata[1]}<br>%{y:.4g}<extra></extra>",
            )
        )
        stats = [s for s in per_setting(rs, [x], metric) if s["mean"] is not None]
        fig.add_trace(
            go.Scatter(
                x=[_fmt(s[x]) for s in stats],
                y=[s["mean"] for s in stats],
                error_y=dict(
                    type="data",
                    symmetric=False,  # one seed: no interval (0 width)
                    array=[0.0 if s["hi"] is None else s["hi"] - s["mean"] for s in stats],
                    arrayminus=[0.0 if s["lo"] is None else s["mean"] - s["lo"] for s in stats],
                ),
                mode="markers",
                marker=dict(symbol="diamond", size=11, color=col, line=dict(color="black", width=1)),
                name=f"mean ± 95% CI ({name})" if colour else "mean ± 95% CI",
                legendgroup=name,
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        boxmode="group" if colour else "overlay",
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        title=f"{label(metric)} over seeds" + (f" · {sweep_name}" if sweep_name else ""),
        xaxis=dict(title=x, type="category", categoryorder="array", categoryarray=order),
        yaxis=dict(title=label(metric)),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig
