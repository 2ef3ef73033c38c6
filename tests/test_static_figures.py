"""Figures as SVG and PNG for a paper (#24): the export bundles' static images, drawn by matplotlib from the
same plotly figures the pages show (vae/views/static.py), checked as a reader of the files would: the SVG
parses as XML and holds every run's point and the axis labels; the PNG decodes at the stated size."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from vae.sweeps import export
from vae.sweeps.plots import distribution_figure
from vae.views import static
from vae.views.plots import scatter_against

SVG = "{http://www.w3.org/2000/svg}"
FLAGS = ("finished, converged", "finished, not converged", "stopped / not finished")


def _rows(n: int = 9):
    gammas = (0.0, 1e-2, 1e-1)
    return [
        {
            "name": f"r{i}",
            "gamma": gammas[i % 3],
            "method": "beta-vae" if i < 5 else "factor-vae",
            "seed": i,
            "flag": FLAGS[i // 3 % 3],
            "factor_alignment": 0.1 + 0.07 * i,
            "run": f"r{i}",
        }
        for i in range(n)
    ]


def _svg(fig) -> ET.Element:
    return ET.fromstring(static.render(fig, "svg"))


def _marks(el: ET.Element) -> int:
    """Marks drawn under el: a <use> of a marker, or a <path> drawn in place (matplotlib inlines a small
    collection's markers), never the marker's own definition in <defs>."""
    if el.tag == f"{SVG}defs":
        return 0
    return (el.tag in (f"{SVG}use", f"{SVG}path")) + sum(_marks(c) for c in el)


def _points(root: ET.Element, trace: int) -> int:
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("id") == f"trace{trace}"]
    return _marks(group)


def _texts(root: ET.Element) -> str:
    return " | ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_compare_scatter_svg_has_every_point_the_axis_labels_and_the_zero_tick():
    rows = _rows()
    fig = scatter_against(
        rows, "gamma", "factor_alignment", "method", symbol="flag", chance={"mean": 0.2, "lo": 0.1, "hi": 0.3}
    )
    root = _svg(fig)
    counts = [_points(root, k) for k in range(len(fig.data))]
    assert counts == [len(t.x) for t in fig.data] and sum(counts) == len(rows)
    text = _texts(root)
    assert "factor_alignment" in text and "gamma (log scale; 0 on its own tick)" in text
    assert all(tick in text for tick in ("0", "0.01", "0.1")) and "chance (random rotations)" in text
    assert "method=factor-vae, finished, not converged" in text  # the legend


def test_facets_become_panels_with_their_titles_and_points():
    rows = _rows()
    fig = scatter_against(rows, "gamma", "factor_alignment", facet="method")
    root = _svg(fig)
    text = _texts(root)
    assert "method = beta-vae" in text and "method = factor-vae" in text
    assert sum(_points(root, k) for k in range(len(fig.data))) == len(rows)


def test_sweep_distribution_svg_and_png():
    rows = _rows(6)
    fig = distribution_figure(rows, "gamma", "factor_alignment", "method", "my-sweep")
    root = _svg(fig)
    boxes = [k for k, t in enumerate(fig.data) if t.type == "box"]
    assert sum(_points(root, k) for k in boxes) == len(rows)  # every run's dot
    means = [k for k, t in enumerate(fig.data) if t.type == "scatter"]
    assert [_points(root, k) for k in means] == [len(fig.data[k].x) for k in means]  # one diamond per setting
    assert "factor alignment over seeds · my-sweep" in _texts(root)
    png = Image.open(io.BytesIO(static.render(fig, "png")))
    png.load()
    assert png.format == "PNG" and png.size == (static.WIDTH_PX, 380)  # the layout's height


def test_png_is_drawn_not_blank():
    fig = scatter_against(_rows(), "gamma", "factor_alignment")
    img = np.asarray(Image.open(io.BytesIO(static.render(fig, "png"))).convert("RGB")).astype(int)
    assert img.shape[:2] == (400, static.WIDTH_PX)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    blue = int(((b > 150) & (r < 80) & (g > 90) & (g < 150)).sum())  # the points' #1f77b4
    assert blue > 100


def test_an_unknown_trace_type_is_named_and_the_bundle_keeps_the_rest():
    fig = go.Figure(go.Scatter3d(x=[1], y=[2], z=[3]))
    with pytest.raises(static.Unsupported, match="scatter3d"):
        static.render(fig, "svg")
    files, why = export.figure_files("cloud", fig)
    assert "figures/cloud.json" in files and "figures/cloud.svg" not in files and "scatter3d" in why


def test_rgba_and_named_colours():
    assert static.colour("rgba(128,128,128,0.18)") == pytest.approx((128 / 255,) * 3 + (0.18,))
    assert static.colour("grey") == "grey" and static.colour(None, "k") == "k"
