"""The lab's named choices, each defined once (no TensorFlow): architectures, entanglement terms and the
loss terms a trainer logs.

Config validation, the CLI's choices, the pages' select boxes and the plots read these tables; the
modules that implement an entry (vae.model.networks for an architecture, vae.model.losses for an entanglement term)
look their entries up by the same name. Adding an architecture is one entry here plus its builders in
vae.model.networks; an entanglement term is one entry here plus its function in vae.model.losses (tests/test_registry.py
checks that both sides name the same entries). Run states are vae.runs.folder.STATE_INFO.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    size_multiple: int  # image_size must be a multiple of this (the encoder halves it this many times over)
    help: str


@dataclass(frozen=True)
class EntanglementTerm:
    log_key: str  # its column in metrics.jsonl (logged every epoch whichever term is optimised)
    latex: str  # the term's formula over the batch's latent means μ (d dimensions)
    help: str


ARCHITECTURES: dict[str, Architecture] = {
    "burgess": Architecture(
        16, "Burgess et al. 2018: four 4x4 stride-2 convs of 32 filters, Dense 256-256; the fast default"
    ),
    "seed": Architecture(8, "the study's network exactly (549,956 parameters at 256x256 with 3 latents)"),
}

ENTANGLEMENT_TERMS: dict[str, EntanglementTerm] = {
    "seed": EntanglementTerm(
        "ent_seed",
        r"\frac{2}{d(d-1)}\sum_{i<j}\overline{|\mu_i\mu_j|}",
        "the study's mean over pairs of the batch mean of |μ_i μ_j|",
    ),
    "covariance": EntanglementTerm(
        "ent_covariance",
        r"\frac{2}{d(d-1)}\sum_{i<j}|\mathrm{Cov}(\mu)_{ij}|",
        "the same on the centred batch covariance",
    ),
    "dip-i": EntanglementTerm(
        "ent_dip_i",
        r"\Big(\sum_{i\neq j}\mathrm{Cov}(\mu)_{ij}^2 + 10\sum_i(\mathrm{Cov}(\mu)_{ii}-1)^2\Big)",
        "DIP-VAE-I (Kumar et al. 2018, eq. 6)",
    ),
}

# The terms of the loss a trainer logs (metrics.jsonl keys, Keras metric names), with their labels;
# `loss` is what is minimised. The entanglement diagnostics follow, one per ENTANGLEMENT_TERMS entry.
LOSS_TERMS: dict[str, str] = {
    "loss": "total",
    "recon": "reconstruction",
    "kl": "KL",
    "beta_kl": "β·KL",
    "entanglement": "entanglement",
    "gamma_entanglement": "γ·entanglement",
}


def logged_terms() -> tuple[str, ...]:
    """Every loss term a trainer logs: LOSS_TERMS, then one diagnostic per entanglement term."""
    return tuple(LOSS_TERMS) + tuple(t.log_key for t in ENTANGLEMENT_TERMS.values())


def entanglement_diagnostics() -> list[tuple[str, str]]:
    """(metrics key, label) of each entanglement term's diagnostic."""
    return [(t.log_key, name) for name, t in ENTANGLEMENT_TERMS.items()]
