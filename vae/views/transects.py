"""The Reconstructions page's transect block: P1-P3 strips, the hole, and its losses (never imports TensorFlow).

The model comes in as two functions (`reconstruct(images) -> images`, `recon_loss(images) -> per-image
losses`; vae.model.inference provides them), so the block is computed and tested without Keras.

The hole is marked only on a punctured dataset (one with a `hole` split): there the yellow boxes are
the images the model never saw. On any other starfish dataset the same (a, b) disc is only "the
study's hole region", trained on like the rest, and no box is drawn.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vae.measures import analysis
from vae.views.plots import stack_strips, transect_strip


def _rows(ds, split: str) -> np.ndarray:
    """Dataset rows (positions, not ids) of a split."""
    return np.flatnonzero(np.asarray(ds.columns["split"]).astype(str) == split)


def hole_of(ds) -> dict:
    """{'punctured', 'centre', 'radius'} of a dataset: punctured when it holds a `hole` split."""
    centre, radius = analysis.hole_of_spec(ds.meta.get("spec"))
    return {"punctured": len(_rows(ds, "hole")) > 0, "centre": centre, "radius": radius}


def transect_rows(ds) -> dict[str, np.ndarray]:
    """{name: dataset rows in transect order} for the transects P1, P2, P3 of a starfish dataset."""
    if "transects" not in ds.splits:
        return {}
    names = np.asarray(ds.columns["transect"]).astype(str)
    out = {}
    for name in sorted(set(names[_rows(ds, "transects")]) - {"", "nan", "None"}):
        rows = np.flatnonzero(names == name)
        out[name] = rows[np.argsort(np.asarray(ds.columns["point"])[rows])]
    return out


def in_region(ds, rows, hole: dict) -> np.ndarray:
    """Which of the rows' (a, b) lie in the hole disc (the study's region, punctured or not)."""
    a, b = np.asarray(ds.columns["a"], float)[rows], np.asarray(ds.columns["b"], float)[rows]
    return np.hypot(a - hole["centre"][0], b - hole["centre"][1]) <= hole["radius"]


def transect_block(ds, reconstruct: Callable, recon_loss: Callable, n_hole_images: int = 12) -> dict:
    """Everything the block shows, as arrays and numbers (kept per run by the page).

    Keys: `image` (P1-P3 strips, truth above reconstruction, yellow boxes on hole points of a
    punctured dataset), `names`, `punctured`, `in_region` {name: [point numbers in the hole disc]},
    and on a punctured dataset `hole_loss`, `covered_loss` (mean per-image losses), `n_hole`,
    `n_covered`, `hole_pairs` (input|reconstruction of the first hole images), `hole_losses`.
    """
    hole = hole_of(ds)
    strips, region = [], {}
    blocks = transect_rows(ds)
    for name, rows in blocks.items():
        inside = in_region(ds, rows, hole)
        region[name] = [int(p) for p in np.asarray(ds.columns["point"])[rows][inside]]
        strips.append(
            transect_strip(ds.images[rows], reconstruct(ds.images[rows]), inside if hole["punctured"] else None)
        )
    out = {
        "image": stack_strips(strips) if strips else None,
        "names": list(blocks),
        "punctured": hole["punctured"],
        "in_region": region,
        "hole": hole,
    }
    if hole["punctured"]:
        from vae.measures import analysis  # here, not at import: scikit-learn's 1-5 s load off the page's first visit

        val = _rows(ds, "validation")
        covered = val[
            analysis.covered_region_mask(
                np.asarray(ds.columns["a"], float)[val],
                np.asarray(ds.columns["b"], float)[val],
                hole["centre"],
                hole["radius"],
            )
        ]
        hole_rows = _rows(ds, "hole")
        if len(covered) and len(hole_rows):
            loss_hole = np.asarray(recon_loss(ds.images[hole_rows]), float)
            loss_cov = np.asarray(recon_loss(ds.images[covered]), float)
            show = hole_rows[:n_hole_images]
            out.update(
                hole_loss=float(loss_hole.mean()),
                covered_loss=float(loss_cov.mean()),
                n_hole=len(hole_rows),
                n_covered=len(covered),
                hole_pairs=(ds.images[show], reconstruct(ds.images[show])),
                hole_losses=[float(v) for v in loss_hole[:n_hole_images]],
            )
    return out
