"""The disentanglement methods, each one small registered class (as in disentanglement_lib's
methods/unsupervised/vae.py, whose formulas these follow; our own code).

A method is: its parameters, named as in its paper, with the papers' usual values; the LaTeX of
its loss; the names of the terms it logs; and its regulariser R, a function of one batch. The
loss of every method is

    L = recon + R + gamma * L_entg

where L_entg is the study's entanglement term (any of its modes; gamma = 0 leaves it out).
Config validation, the CLI flags, the Train page and the loss charts all read this registry.
Nothing here imports TensorFlow: a regulariser is given the vae.model.losses module (`L`) by its caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vae.base import registry


@dataclass(frozen=True)
class Param:
    """One method parameter: `name` is its key in TrainConfig.method_params and its CLI flag."""

    name: str
    symbol: str  # LaTeX
    default: float | int | str  # the papers' usual value
    help: str
    lo: float | None = None
    hi: float | None = None
    kind: type = float  # float, int or str
    choices: tuple = ()
    in_loss: bool = True  # shown in the loss formula (the discriminator's size and rate are not)

    def check(self, value):
        """The value converted to `kind`; ValueError saying what is allowed."""
        if self.kind is str:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind is int:
            ok = ok and float(value).is_integer()
        if not ok or value != value or value in (float("inf"), float("-inf")):
            raise ValueError(
                f"{self.name} must be a finite {'whole ' if self.kind is int else ''}number, got {value!r}"
            )
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ValueError(f"{self.name} must be between {self.lo:g} and {self.hi:g}, got {value!r}")
        return self.kind(value)


@dataclass
class Batch:
    """What a regulariser sees of one batch: the (weighted) batch mean of the reduced KL, the latent
    means, log-variances (the constant one filled in), the sampled codes and the training step."""

    kl: object
    mu: object
    logvar: object
    z: object
    step: object = 0
    disc_logits: object = None  # FactorVAE: the discriminator's logits of z
    dataset_size: int | None = None


@dataclass(frozen=True)
class Method:
    name: str = ""
    label: str = ""
    paper: str = ""
    params: tuple[Param, ...] = ()
    terms: dict = field(default_factory=dict)  # logged term -> label, besides loss, recon, kl, entanglement
    loss_parts: tuple = ("beta_kl",)  # the logged terms that add up to R (the others are diagnostics)
    uses_beta: bool = True  # the KL weight beta (1 in the papers except the beta-VAE)
    needs_step: bool = False  # keeps a training-step counter in the model
    discriminator: bool = False  # trains a discriminator with its own optimizer each step

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def regularizer(self, b: Batch, p: dict, beta: float, L) -> dict:
        """{"regularizer": R, **logged terms}; L is vae.model.losses."""
        raise NotImplementedError

    def formula(self, p: dict, beta: float) -> str:
        """LaTeX of R with the current values."""
        raise NotImplementedError


def tex_number(x) -> str:
    if isinstance(x, str):
        return rf"\mathrm{{{x}}}"
    text = f"{x:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"10^{{{int(exponent)}}}" if mantissa == "1" else rf"{mantissa}\times10^{{{int(exponent)}}}"


S_BETA, S_GAMMA, S_BETA_TC = r"\beta", r"\gamma", r"\beta_{TC}"
S_GAMMA_C, S_GAMMA_TC = r"\gamma_C", r"\gamma_{TC}"
S_LAMBDA_OD, S_LAMBDA_D = r"\lambda_{od}", r"\lambda_d/\lambda_{od}"


def _w(value, symbol: str) -> str:
    return rf"\underbrace{{{tex_number(value)}}}_{{{symbol}}}"


class BetaVAE(Method):
    def regularizer(self, b, p, beta, L):
        return {"regularizer": beta * b.kl, "beta_kl": beta * b.kl}

    def formula(self, p, beta):
        return rf"{_w(beta, S_BETA)}\,L_{{\mathrm{{KL}}}}"


class AnnealedVAE(Method):
    def regularizer(self, b, p, beta, L):
        c = L.capacity(b.step, p["c_max"], p["c_steps"])
        term = p["gamma_c"] * L.ops.abs(b.kl - c)
        return {"regularizer": term, "capacity": c, "capacity_term": term}

    def formula(self, p, beta):
        return (
            rf"{_w(p['gamma_c'], S_GAMMA_C)}\,\big|L_{{\mathrm{{KL}}}} - C(t)\big|,\;"
            rf"C(t) = \min\!\big(1, t/{_w(p['c_steps'], 'T_C')}\big)\cdot {_w(p['c_max'], 'C_{max}')}"
        )


class FactorVAE(Method):
    def regularizer(self, b, p, beta, L):
        tc = L.factor_tc(b.disc_logits)
        return {
            "regularizer": beta * b.kl + p["gamma_tc"] * tc,
            "beta_kl": beta * b.kl,
            "tc": tc,
            "tc_term": p["gamma_tc"] * tc,
        }

    def formula(self, p, beta):
        return (
            rf"{_w(beta, S_BETA)}\,L_{{\mathrm{{KL}}}} + {_w(p['gamma_tc'], S_GAMMA_TC)}\,"
            r"\mathbb{E}_{q(z)}\Big[\log\frac{D(z)}{1-D(z)}\Big]"
        )


class BetaTCVAE(Method):
    def regularizer(self, b, p, beta, L):
        tc = L.total_correlation(b.z, b.mu, b.logvar, p["tc_estimator"], b.dataset_size)
        return {
            "regularizer": beta * b.kl + (p["beta_tc"] - 1.0) * tc,
            "beta_kl": beta * b.kl,
            "tc": tc,
            "tc_term": (p["beta_tc"] - 1.0) * tc,
        }

    def formula(self, p, beta):
        return (
            rf"{_w(beta, S_BETA)}\,L_{{\mathrm{{KL}}}} + ({_w(p['beta_tc'], S_BETA_TC)} - 1)\,"
            rf"\widehat{{\mathrm{{TC}}}}_{{\mathrm{{{p['tc_estimator'].upper()}}}}}(z)"
        )


class DIPVAE(Method):
    kind: str = "i"

    def regularizer(self, b, p, beta, L):
        od, d = L.dip_parts(b.mu, b.logvar, self.kind)
        dip = p["lambda_od"] * od + p["lambda_d_factor"] * p["lambda_od"] * d
        return {"regularizer": beta * b.kl + dip, "beta_kl": beta * b.kl, "dip": dip, "dip_offdiag": od, "dip_diag": d}

    def formula(self, p, beta):
        cov = (
            r"\mathrm{Cov}(\mu)"
            if self.kind == "i"
            else r"\big(\mathrm{Cov}(\mu) + \mathbb{E}[\mathrm{diag}\,\sigma^2]\big)"
        )
        return (
            rf"{_w(beta, S_BETA)}\,L_{{\mathrm{{KL}}}} + {_w(p['lambda_od'], S_LAMBDA_OD)}"
            rf"\Big[\sum_{{i\neq j}}{cov}_{{ij}}^2 + {_w(p['lambda_d_factor'], S_LAMBDA_D)}"
            rf"\sum_i\big({cov}_{{ii}}-1\big)^2\Big]"
        )


class DIPVAEII(DIPVAE):
    kind = "ii"


_LAMBDA_OD = Param("lambda_od", r"\lambda_{od}", 10.0, "weight of the off-diagonal covariance penalty", 0.0, 1e6)
_KL_TERMS = {"beta_kl": "β·KL"}

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        BetaVAE("beta-vae", "β-VAE", "Higgins et al. 2017, eq. 4", terms=dict(_KL_TERMS)),
        AnnealedVAE(
            "annealed",
            "AnnealedVAE",
            "Burgess et al. 2018, eq. 8",
            params=(
                Param("gamma_c", S_GAMMA_C, 1000.0, "weight of |KL - C|", 0.0, 1e7),
                Param("c_max", r"C_{max}", 25.0, "final capacity C (nats, papers' reduction)", 0.0, 1e4),
                Param(
                    "c_steps", r"T_C", 100000, "training steps over which C rises from 0 to C_max", 0, 10**9, kind=int
                ),
            ),
            terms={"capacity": "capacity C", "capacity_term": "γ·|KL−C|"},
            loss_parts=("capacity_term",),
            uses_beta=False,
            needs_step=True,
        ),
        FactorVAE(
            "factor-vae",
            "FactorVAE",
            "Kim & Mnih 2018, eq. 2",
            params=(
                Param(
                    "gamma_tc", S_GAMMA_TC, 10.0, "weight of the discriminator's total correlation estimate", 0.0, 1e5
                ),
                Param(
                    "disc_units",
                    "units",
                    1000,
                    "hidden units per discriminator layer (the paper: 1000)",
                    8,
                    4096,
                    kind=int,
                    in_loss=False,
                ),
                Param(
                    "disc_layers",
                    "layers",
                    6,
                    "hidden layers of the discriminator (the paper: 6)",
                    1,
                    12,
                    kind=int,
                    in_loss=False,
                ),
                Param(
                    "disc_lr",
                    r"\eta_D",
                    1e-4,
                    "discriminator learning rate (Adam, beta1 0.5, beta2 0.9)",
                    1e-7,
                    1.0,
                    in_loss=False,
                ),
            ),
            terms={
                **_KL_TERMS,
                "tc": "TC (discriminator)",
                "tc_term": "γ·TC",
                "disc_loss": "discriminator loss",
                "disc_accuracy": "discriminator accuracy",
            },
            loss_parts=("beta_kl", "tc_term"),
            discriminator=True,
        ),
        BetaTCVAE(
            "beta-tcvae",
            "β-TCVAE",
            "Chen et al. 2018, eq. 4 (α = γ = 1)",
            params=(
                Param("beta_tc", r"\beta_{TC}", 6.0, "weight of the total correlation (the paper's β)", 0.0, 1e5),
                Param(
                    "tc_estimator",
                    "estimator",
                    "mws",
                    "minibatch-weighted (mws) or stratified (mss) sampling",
                    kind=str,
                    choices=("mws", "mss"),
                ),
            ),
            terms={**_KL_TERMS, "tc": "TC (minibatch)", "tc_term": "(β_TC−1)·TC"},
            loss_parts=("beta_kl", "tc_term"),
        ),
        DIPVAE(
            "dip-vae-i",
            "DIP-VAE-I",
            "Kumar et al. 2018, eq. 6",
            params=(
                _LAMBDA_OD,
                Param("lambda_d_factor", r"\lambda_d/\lambda_{od}", 10.0, "λ_d = factor · λ_od", 0.0, 1e4),
            ),
            terms={**_KL_TERMS, "dip": "DIP penalty", "dip_offdiag": "Σ off-diagonal²", "dip_diag": "Σ (diagonal−1)²"},
            loss_parts=("beta_kl", "dip"),
        ),
        DIPVAEII(
            "dip-vae-ii",
            "DIP-VAE-II",
            "Kumar et al. 2018, eq. 7",
            params=(
                _LAMBDA_OD,
                Param("lambda_d_factor", r"\lambda_d/\lambda_{od}", 1.0, "λ_d = factor · λ_od", 0.0, 1e4),
            ),
            terms={**_KL_TERMS, "dip": "DIP penalty", "dip_offdiag": "Σ off-diagonal²", "dip_diag": "Σ (diagonal−1)²"},
            loss_parts=("beta_kl", "dip"),
        ),
    )
}
METHOD_NAMES = tuple(METHODS)
REDUCTIONS = {
    "study": "the study's: per-pixel mean reconstruction, KL mean over latents (no 1/2)",
    "papers": "the papers': sum over pixels, textbook KL summed over latents (disentanglement_lib)",
}
# Logged by every method, besides its own terms.
COMMON_TERMS = {k: registry.LOSS_TERMS[k] for k in ("loss", "recon", "kl", "gamma_entanglement")}


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; use one of {', '.join(METHOD_NAMES)}") from None


def all_params() -> dict[str, Param]:
    """Every method parameter by name (the first definition; used for CLI flags)."""
    out: dict[str, Param] = {}
    for m in METHODS.values():
        for p in m.params:
            out.setdefault(p.name, p)
    return out


def resolve_params(method: str, given: dict | None) -> dict:
    """The method's parameters: its defaults updated with `given`, each checked. ValueError on an
    unknown name or a bad value."""
    m = get(method)
    given = dict(given or {})
    own = {p.name: p for p in m.params}
    unknown = sorted(set(given) - set(own))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} {'is not a parameter' if len(unknown) == 1 else 'are not parameters'}"
            f" of {m.name}" + (f" (its parameters: {', '.join(own)})" if own else " (it has none)")
        )
    return {name: p.check(given.get(name, p.default)) for name, p in own.items()}


def loss_latex(method: str, params: dict, beta: float, gamma: float, entanglement_tex: str) -> str:
    m = get(method)
    p = resolve_params(method, params)
    return rf"L = L_{{\mathrm{{recon}}}} + {m.formula(p, beta)} + {_w(gamma, S_GAMMA)}\,{entanglement_tex}"


def equivalent_paper_beta(beta: float, image_pixels: int, latent_dim: int) -> float:
    """The beta of the beta-VAE papers (sum over pixels and latents, textbook KL) with the same optimum as
    `beta` under the study's reduction (mean over pixels, mean over latents of twice the KL): 2 P beta / d."""
    return 2.0 * image_pixels * beta / latent_dim


def study_beta(paper_beta: float, image_pixels: int, latent_dim: int) -> float:
    """The inverse of `equivalent_paper_beta`: the beta under the study's reduction with the same optimum as
    `paper_beta` under the papers' (sum over pixels and latents): d beta / (2 P)."""
    return paper_beta * latent_dim / (2.0 * image_pixels)


def loss_chart_terms(method: str) -> list[tuple[str, str]]:
    """(term, label) of the loss chart: total, reconstruction, the parts of R, the study's term."""
    m = get(method)
    return (
        [(t, COMMON_TERMS[t]) for t in ("loss", "recon")]
        + [(t, m.terms[t]) for t in m.loss_parts]
        + [("gamma_entanglement", COMMON_TERMS["gamma_entanglement"])]
    )


def diagnostic_terms(method: str) -> list[tuple[str, str]]:
    """(term, label) of what a method logs besides its loss parts (TC estimate, capacity, discriminator...)."""
    m = get(method)
    return [(t, label) for t, label in m.terms.items() if t not in m.loss_parts]


def logged_terms(method: str) -> dict:
    """term -> label of what a run of this method logs (the loss chart's lines)."""
    return {**COMMON_TERMS, **get(method).terms}


# The checkpoint rule (docs/measures.md): one criterion for every method.
SELECTION_RULE = (
    "validation reconstruction + KL (negative ELBO, nats per image: summed pixel BCE + "
    "textbook KL summed over latents), the same for every method"
)


def selection_loss(logs: dict, reduction: str, pixels: int, latent_dim: int, prefix: str = "val_") -> float:
    """The checkpoint rule, one for every method: reconstruction + KL of the validation split, as a
    negative ELBO in nats per image (the `papers` reduction's units: BCE summed over the `pixels`,
    textbook KL summed over the `latent_dim` latents), whatever the run's reduction and method.

    The method's own terms (β, capacity, TC, DIP, a discriminator's estimate) and γ·entanglement
    are left out, so runs of different methods are chosen by the same criterion. Under `study`
    the logged terms are a per-pixel mean and a KL mean over latents without the 1/2, so they are
    scaled by `pixels` and `latent_dim / 2`. inf when the logs lack the terms.
    """
    recon, kl = logs.get(prefix + "recon"), logs.get(prefix + "kl")
    if recon is None or kl is None:
        return math.inf
    if reduction == "study":
        return float(recon) * pixels + float(kl) * latent_dim / 2.0
    return float(recon) + float(kl)


# Published weights mean what they say (docs/methods.md): a method whose parameters come from papers runs,
# by default, with the papers' reduction and the papers' KL weight (beta = 1 where the paper uses 1).
PAPERS_METHODS = ("annealed", "factor-vae", "beta-tcvae", "dip-vae-i", "dip-vae-ii")


def papers_settings(method: str) -> dict:
    """{"reduction": "papers", "beta": 1.0} for a method whose parameters come from papers (beta only
    where the method uses it); {} for the beta-VAE, whose beta is the user's own choice."""
    m = get(method)
    if method not in PAPERS_METHODS:
        return {}
    return {"reduction": "papers", **({"beta": 1.0} if m.uses_beta else {})}


def papers_mismatch(method: str, reduction: str, beta: float) -> str:
    """A one-line warning when a papers' method runs with settings under which its published weights
    do not mean what they say; "" when they do."""
    want = papers_settings(method)
    if not want:
        return ""
    label = get(method).label
    parts = []
    if reduction != want["reduction"]:
        parts.append(
            f"the {reduction} reduction (its published weights assume the papers' sums over pixels "
            "and latents: under 'study' they act about P times stronger relative to reconstruction)"
        )
    if "beta" in want and float(beta) != want["beta"]:
        parts.append(f"β = {float(beta):g} on the KL (the paper uses 1)")
    if not parts:
        return ""
    return f"{label}'s parameters come from its paper, but this run uses " + " and ".join(parts) + "."
