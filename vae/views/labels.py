"""Words the pages put beside their figures, so each reads the same everywhere (no streamlit here)."""

from __future__ import annotations

from typing import Mapping

from vae.model import methods

UNITS = {
    "study": "reconstruction = mean binary cross-entropy per pixel (nats); KL = mean over the latent dimensions "
    "of μ² + σ² − log σ² − 1 (nats, twice the textbook KL per latent)",
    "papers": "reconstruction = binary cross-entropy summed over the pixels (nats); KL = the textbook KL summed "
    "over the latent dimensions (nats)",
}


def loss_units(method: str = "beta-vae", reduction: str = "study") -> str:
    """What a run's loss curves measure: its reduction's units and its method's total (R from the method's
    logged loss parts, vae.model.methods)."""
    m = methods.get(method)
    regulariser = " + ".join(m.terms[t] for t in m.loss_parts)
    return f"Units: {UNITS[reduction]}; the total is recon + {regulariser} + γ·entanglement."


RUNNING_MEAN = (
    "Solid training curves are the running mean of the batch losses since the start of each epoch "
    "(Keras resets it when an epoch starts, so each epoch's first points are noisy); dashed validation "
    "points are measured once per epoch on the whole validation split."
)


def covered_ring(radius: float, margin: float = 0.3) -> str:
    """What 'covered ring' means (vae.measures.analysis.covered_region_mask with its default margin)."""
    return (
        f"Covered ring: the validation images whose (a, b) lie just outside the hole, at a distance from its "
        f"centre between {radius:g} (its radius) and {radius + margin:g}: shapes like the hole's that were "
        "trained on around it, so a higher loss in the hole is due to the missing data, not to harder shapes."
    )


def curves_caption(config: Mapping) -> str:
    """The Train page's note under a run's loss curves (its config.json settings: method, reduction, γ);
    at γ = 0 it says why γ·entanglement has no curve."""
    method = config.get("method", "beta-vae")  # runs from before the methods are β-VAEs
    parts = [
        RUNNING_MEAN,
        loss_units(method if method in methods.METHODS else "beta-vae", config.get("reduction", "study")),
    ]
    gamma = config.get("gamma")
    if gamma is not None and float(gamma) == 0.0:
        parts.append(
            "γ = 0 for this run, so γ·entanglement is 0 throughout: a flat line at 0, and no curve at all on "
            "a log axis (which cannot draw 0); the unweighted entanglement measures are drawn below."
        )
    return " ".join(parts)


UNIT = (
    "nats; reconstruction = binary cross-entropy, the mean per pixel (reduction `study`) or the sum over "
    "the pixels (`papers`)"
)
# Streamlit column_config as plain dicts (vae never imports streamlit): β, γ, final losses narrow and labelled.
RUN_COLUMNS = {
    "name": {"label": "name", "width": "medium"},
    "beta": {"label": "β", "width": "small", "type_config": {"type": "number", "format": "%g"}},
    "gamma": {"label": "γ", "width": "small", "type_config": {"type": "number", "format": "%g"}},
    "val_loss": {
        "label": "val loss",
        "width": "small",
        "help": f"Final validation loss ({UNIT})",
        "type_config": {"type": "number", "format": "%.4f"},
    },
    "loss": {
        "label": "train loss",
        "width": "small",
        "help": f"Final training loss ({UNIT})",
        "type_config": {"type": "number", "format": "%.4f"},
    },
    "val_recon": {
        "label": "val recon",
        "width": "small",
        "help": f"Final validation reconstruction loss ({UNIT})",
        "type_config": {"type": "number", "format": "%.4f"},
    },
}


def state_label(run: Mapping) -> str:
    """A run's state as the run pickers show it. A resumed run waiting for a trainer is not just "waiting":
    it says it resumes, and from which epoch (its status.json keeps the last epoch done and `resume`)."""
    state = run.get("state") or "unknown"
    status = run.get("status") or {}
    if state not in ("waiting", "queued") or not (status.get("resume") or status.get("message") == "resuming"):
        return state
    done, total = status.get("epoch"), status.get("epochs") or (run.get("config") or {}).get("epochs")
    where = f"epoch {done}/{total} done" if done and total else f"epoch {done} done" if done else "from its start"
    return f"queued to resume, {where}" if state == "waiting" else f"resuming, {where}"
