"""Dataset specs and presets: what to make, its factor table and its ground truth (numpy only).

`starfish` is the study's family: one closed polar curve r(θ) = b·cos(5θ) + a
(docs/study.md, "The data"; the study's MATLAB `Generate_latent_space.m`) over (a, b) with the study's
ranges, hole and transects. `sprites` is a dSprites-like family (Matthey et al.
2017, github.com/deepmind/dsprites-dataset): square, ellipse and heart with
scale, rotation and position. The images themselves are drawn by vae.data.render.

A `DatasetSpec` says what to make; `plan(spec)` gives the factor table (cheap,
no images); `generate(spec)` renders it; `vae.data.datasets.write_dataset` writes it
to disk. Everything is a pure function of the spec and its seed.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from vae.base.errors import UserError
from vae.base.fileio import dataclass_from_dict
from vae.data.render import SHAPES, render_sprites, render_starfish_batch  # noqa: F401  (SHAPES: the pages' names)

# ---------------------------------------------------------------- factor ranges
B_RANGE = (0.0, 2.0)
A_RANGE = (0.5, 2.0)
HOLE_CENTER = (1.25, 1.0)
HOLE_RADIUS = 0.3
STUDY_VALIDATION_FRACTION = 501 / 5000  # the study's full set: 4499 train, 501 validation
STUDY_PUNCTURED_VALIDATION_FRACTION = 211 / 4510  # the study's punctured set: 4299 train, 211 validation
TRANSECT_POINTS = 15

SPRITE_FACTORS = ("shape", "scale", "rotation", "x", "y")
MAX_IMAGES = 1_000_000

PRESETS = ("seed-full", "seed-punctured", "seed-exact", "dsprites", "seed-correlated", "seed-correlated-punctured")
# The correlated starfish presets (docs/measures.md): corr(a, b) = 0.6 on an elliptic support, so the
# principal axes of a perfect factor code are not the factor axes.
CORRELATED_RHO = 0.6
FAMILIES = ("starfish", "sprites", "imported")


# ------------------------------------------------------------------ the spec
def _default_sprite_axes():
    return {"scale": (0.5, 1.0, 6), "rotation": (0.0, 2 * math.pi, 40), "x": (0.0, 1.0, 32), "y": (0.0, 1.0, 32)}


@dataclass
class DatasetSpec:
    """Everything that determines a dataset; with the seed, the files are a pure function of it.

    Sprite axes (`scale`, `rotation`, `x`, `y`) are (lo, hi, count) grids; count 1 fixes the
    factor at lo. A rotation grid spanning a full turn leaves out the end point (2π = 0).
    `n`: for starfish, the number of (a, b) draws (transects come on top); for sprites, the
    number of images (None = the whole grid, grid sampling only).
    Starfish sampling `ellipse`: (a, b) uniform on the ellipse inscribed in the a x b box, tilted
    along its diagonal so that corr(a, b) = `ab_correlation` (a non-rectangular support: the
    principal axes of the factors are the box's diagonals, not the factor axes).
    `correlate=(f1, f2, rho)` (sprites, iid sampling): with probability |rho| the index of f2
    copies the index of f1 (rescaled to f2's grid, mirrored when rho < 0), otherwise it is drawn
    independently; both marginals stay uniform, so the indices' correlation is rho in expectation.
    """

    family: str = "starfish"
    preset: str | None = None
    n: int | None = 5000
    seed: int = 0
    image_size: int = 64
    fit: str = "stretch"
    sampling: str | None = None  # starfish: uniform|exact; sprites: grid|iid
    validation_fraction: float | None = None  # last fraction of rows; default 501/5000 (starfish),
    #                                           211/4510 of the covered draws (starfish with a hole), 0.1
    noise_std: float = 0.0  # Gaussian pixel noise, intensity units (0..255)
    # starfish
    a_range: tuple = A_RANGE
    b_range: tuple = B_RANGE
    hole: bool = False
    hole_center: tuple = HOLE_CENTER
    hole_radius: float = HOLE_RADIUS
    transects: bool = True
    ab_correlation: float = 0.0  # starfish "ellipse" sampling: corr(a, b) of the draws
    # sprites
    shapes: tuple = (0, 1, 2)
    scale: tuple = (0.5, 1.0, 6)
    rotation: tuple = (0.0, 2 * math.pi, 40)
    x: tuple = (0.0, 1.0, 32)
    y: tuple = (0.0, 1.0, 32)
    correlate: tuple | None = None
    name: str | None = field(default=None, compare=False)  # free text for listings

    def __post_init__(self):
        if self.sampling is None:
            self.sampling = "grid" if self.family == "sprites" else "uniform"
        if self.validation_fraction is None:
            self.validation_fraction = default_validation_fraction(self.family, self.hole)
        for key in ("a_range", "b_range", "hole_center", "shapes", "scale", "rotation", "x", "y"):
            value = getattr(self, key)
            if isinstance(value, list):
                setattr(self, key, tuple(value))
        if isinstance(self.correlate, list):
            self.correlate = tuple(self.correlate)

    # -- serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        return dataclass_from_dict(cls, d, "dataset")

    @property
    def factor_names(self) -> list[str]:
        if self.family == "starfish":
            return ["a", "b"]
        if self.family == "sprites":
            return list(SPRITE_FACTORS)
        return []

    def sprite_values(self) -> dict[str, np.ndarray]:
        """Each sprite factor's grid of values."""
        vals = {"shape": np.array(sorted(self.shapes), dtype=np.float64)}
        for f in ("scale", "rotation", "x", "y"):
            lo, hi, count = getattr(self, f)
            full_turn = f == "rotation" and math.isclose(hi - lo, 2 * math.pi, rel_tol=1e-9)
            vals[f] = np.linspace(lo, hi, int(count), endpoint=not full_turn) if count > 1 else np.array([lo], float)
        return vals

    # -- validation
    def validate(self) -> "DatasetSpec":
        if self.family not in FAMILIES:
            raise UserError(f"family must be one of {', '.join(FAMILIES)}, not {self.family!r}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise UserError(f"seed must be a whole number >= 0, not {self.seed!r}")
        if (
            not isinstance(self.image_size, (int, np.integer))
            or not 32 <= self.image_size <= 256
            or self.image_size % 8
        ):
            raise UserError(f"image size must be 32..256 and a multiple of 8, not {self.image_size!r}")
        if self.fit not in ("stretch", "pad"):
            raise UserError(f"fit must be 'stretch' or 'pad', not {self.fit!r}")
        if not 0.0 <= float(self.validation_fraction) <= 0.5:
            raise UserError(f"validation fraction must be between 0 and 0.5, not {self.validation_fraction!r}")
        if not 0.0 <= float(self.noise_std) <= 255.0:
            raise UserError(f"noise std must be between 0 and 255 (intensity units), not {self.noise_std!r}")
        if self.n is not None and (not isinstance(self.n, (int, np.integer)) or isinstance(self.n, bool)):
            raise UserError(f"N must be a whole number, not {self.n!r}")
        if self.family == "starfish":
            self._validate_starfish()
        elif self.family == "sprites":
            self._validate_sprites()
        return self

    def _validate_starfish(self):
        if self.sampling not in ("uniform", "exact", "ellipse"):
            raise UserError(f"starfish sampling must be 'uniform', 'exact' or 'ellipse', not {self.sampling!r}")
        if not _is_number(self.ab_correlation) or not -0.95 <= float(self.ab_correlation) <= 0.95:
            raise UserError(
                f"the correlation of a and b must be a number in [-0.95, 0.95], not {self.ab_correlation!r}"
            )
        if self.n is None or not 10 <= self.n <= MAX_IMAGES:
            raise UserError(f"N must be between 10 and {MAX_IMAGES:,}, not {self.n!r}")
        if self.sampling == "exact" and self.n > 5000:
            raise UserError(f"N must be at most 5000 with the study's exact draws (seed-exact), not {self.n}")
        for key in ("a_range", "b_range"):
            _check_range(key.replace("_", " "), getattr(self, key))
        if self.b_range[1] <= self.b_range[0]:
            raise UserError("b range must have lo < hi (the sample weight divides by its width)")
        if len(self.hole_center) != 2 or not all(_is_number(c) for c in self.hole_center):
            raise UserError(f"hole centre must be two numbers (a, b), not {self.hole_center!r}")
        if not _is_number(self.hole_radius) or self.hole_radius <= 0:
            raise UserError(f"hole radius must be > 0, not {self.hole_radius!r}")

    def _validate_sprites(self):
        if self.sampling not in ("grid", "iid"):
            raise UserError(f"sprites sampling must be 'grid' or 'iid', not {self.sampling!r}")
        shapes = list(self.shapes)
        if not shapes or len(set(shapes)) != len(shapes) or not all(s in (0, 1, 2) for s in shapes):
            raise UserError(
                f"shapes must be distinct codes from 0 (square), 1 (ellipse), 2 (heart), not {self.shapes!r}"
            )
        for f in ("scale", "rotation", "x", "y"):
            axis = getattr(self, f)
            if len(axis) != 3:
                raise UserError(f"{f} must be (lo, hi, count), not {axis!r}")
            _check_range(f, axis[:2])
            if not isinstance(axis[2], (int, np.integer)) or axis[2] < 1:
                raise UserError(f"{f} count must be a whole number >= 1, not {axis[2]!r}")
        if self.scale[0] <= 0:
            raise UserError(f"scale must be > 0, not {self.scale[0]!r}")
        grid = self.grid_size()
        if self.sampling == "grid" and self.n is not None and self.n > grid:
            raise UserError(
                f"N={self.n:,} exceeds the grid's {grid:,} combinations; lower N or leave it empty for the whole grid"
            )
        count = grid if self.n is None else self.n
        if self.n is None and self.sampling == "iid":
            raise UserError("N must be given with iid sampling")
        if not 10 <= count <= MAX_IMAGES:
            raise UserError(f"N must be between 10 and {MAX_IMAGES:,}, not {count:,}")
        if self.correlate is not None:
            if self.sampling != "iid":
                raise UserError("correlate needs iid sampling (a full grid has no correlation to set)")
            if len(self.correlate) != 3:
                raise UserError(f"correlate must be (factor1, factor2, rho), not {self.correlate!r}")
            f1, f2, rho = self.correlate
            sizes = dict(zip(SPRITE_FACTORS, self.grid_shape()))
            for f in (f1, f2):
                if f not in sizes:
                    raise UserError(f"correlate: unknown factor {f!r}; choose from {', '.join(SPRITE_FACTORS)}")
                if sizes[f] < 2:
                    raise UserError(f"correlate: factor {f!r} is fixed (one value); give it a count >= 2")
            if f1 == f2:
                raise UserError("correlate needs two different factors")
            if not _is_number(rho) or not -1.0 <= rho <= 1.0:
                raise UserError(f"correlate: rho must be between -1 and 1, not {rho!r}")

    def grid_shape(self) -> tuple[int, ...]:
        return (len(self.shapes),) + tuple(int(getattr(self, f)[2]) for f in ("scale", "rotation", "x", "y"))

    def grid_size(self) -> int:
        return int(np.prod(self.grid_shape()))


def default_validation_fraction(family: str, hole: bool = False) -> float:
    """The study's proportions: 501/5000 of the full set; 211/4510 of the covered draws with the hole."""
    if family == "starfish":
        return STUDY_PUNCTURED_VALIDATION_FRACTION if hole else STUDY_VALIDATION_FRACTION
    return 0.1


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def _check_range(name, rng):
    if len(rng) != 2 or not all(_is_number(v) for v in rng):
        raise UserError(f"{name} must be two numbers (lo, hi), not {rng!r}")
    if rng[0] > rng[1]:
        raise UserError(f"{name} must have lo <= hi, not {tuple(rng)!r}")


def preset_spec(name: str, **overrides) -> DatasetSpec:
    """A preset's spec, with settings overridden (e.g. n=500, seed=3, image_size=128)."""
    base = {
        "seed-full": dict(family="starfish", sampling="uniform"),
        "seed-punctured": dict(family="starfish", sampling="uniform", hole=True),
        "seed-exact": dict(family="starfish", sampling="exact"),
        "dsprites": dict(family="sprites", sampling="grid", n=10_000, **_default_sprite_axes()),
        "seed-correlated": dict(family="starfish", sampling="ellipse", ab_correlation=CORRELATED_RHO),
        "seed-correlated-punctured": dict(
            family="starfish", sampling="ellipse", ab_correlation=CORRELATED_RHO, hole=True
        ),
    }
    if name not in base:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(DatasetSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(f"unknown dataset setting(s) for preset {name}: {', '.join(unknown)}")
    spec = DatasetSpec(**{**base[name], **overrides, "preset": name})
    return spec.validate()


# ------------------------------------------------------------------ planning (the factor table)
def _read_resource_csv(name: str) -> list[dict]:
    text = resources.files("vae").joinpath("resources", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def study_draws() -> np.ndarray:
    """The study's 5000 (a, b) draws, float64 (5000, 2), in data_full order."""
    rows = _read_resource_csv("parameters_full.csv")
    return np.array([[float(r["a"]), float(r["b"])] for r in rows])


def transect_points(spec: DatasetSpec | None = None) -> list[tuple[str, int, float, float]]:
    """P1 (a fixed, b rising), P2 (b fixed, a rising), P3 (from (a_lo, b_hi) to (a_hi, b_lo) in
    direction): 15 equally spaced points each on a line through the hole centre, clipped to the
    parameter rectangle. With the study's settings these are transects.csv exactly."""
    spec = spec or DatasetSpec()
    (alo, ahi), (blo, bhi) = spec.a_range, spec.b_range
    ca, cb = spec.hole_center
    out = []
    for name, (da, db) in (("P1", (0.0, 1.0)), ("P2", (1.0, 0.0)), ("P3", (ahi - alo, blo - bhi))):
        ts = []
        for c, d, lo, hi in ((ca, da, alo, ahi), (cb, db, blo, bhi)):
            if d != 0:
                ts.append(sorted(((lo - c) / d, (hi - c) / d)))
        t0 = max(t[0] for t in ts)
        t1 = min(t[1] for t in ts)
        for k, t in enumerate(np.linspace(t0, t1, TRANSECT_POINTS), start=1):
            out.append((name, k, round(ca + t * da, 6) + 0.0, round(cb + t * db, 6) + 0.0))
    return out


def _split_train_validation(count: int, fraction: float) -> np.ndarray:
    n_val = int(round(count * fraction))
    if count >= 2 and fraction > 0:
        n_val = min(max(n_val, 1), count - 1)
    split = np.full(count, "train", dtype=object)
    if n_val:
        split[count - n_val :] = "validation"
    return split


def plan(spec: DatasetSpec) -> dict[str, np.ndarray]:
    """The factors.csv columns of a spec, without rendering: id, split, factors, weight, transect, point.

    Factor values are rounded to 6 decimals (as written to factors.csv) before anything is rendered.
    """
    spec.validate()
    if spec.family == "starfish":
        return _plan_starfish(spec)
    if spec.family == "sprites":
        return _plan_sprites(spec)
    raise UserError("imported datasets are made with import_images, not generated")


def ellipse_draws(n: int, rho: float, a_range, b_range, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) draws uniform on the ellipse inscribed in the a x b box with corr(a, b) = rho.

    In box coordinates scaled to [-1, 1]^2 the ellipse has semi-axes 1 along (1, 1)/sqrt(2) and
    sqrt((1 - |rho|) / (1 + |rho|)) across (mirrored for rho < 0): for a uniform ellipse the
    correlation is (s1^2 - s2^2) / (s1^2 + s2^2) = rho, and the ellipse touches the box's sides.
    """
    s1, s2 = 1.0, math.sqrt((1.0 - abs(rho)) / (1.0 + abs(rho)))
    r = np.sqrt(rng.random(n))
    t = rng.random(n) * 2.0 * math.pi
    u, v = s1 * r * np.cos(t), s2 * r * np.sin(t)
    scale = 1.0 / math.sqrt((s1**2 + s2**2) / 2.0)  # the box's half-width in these units
    x = (u - v) / math.sqrt(2.0) * scale
    y = (u + v) / math.sqrt(2.0) * scale * (1.0 if rho >= 0 else -1.0)
    (alo, ahi), (blo, bhi) = a_range, b_range
    return np.round(np.column_stack([(alo + ahi) / 2 + (ahi - alo) / 2 * x, (blo + bhi) / 2 + (bhi - blo) / 2 * y]), 6)


def _plan_starfish(spec):
    if spec.sampling == "exact":
        ab = study_draws()[: spec.n]
    elif spec.sampling == "ellipse":
        ab = ellipse_draws(
            spec.n, float(spec.ab_correlation), spec.a_range, spec.b_range, np.random.default_rng(spec.seed)
        )
    else:
        u = np.random.default_rng(spec.seed).random((spec.n, 2))
        (alo, ahi), (blo, bhi) = spec.a_range, spec.b_range
        ab = np.round(np.column_stack([alo + (ahi - alo) * u[:, 0], blo + (bhi - blo) * u[:, 1]]), 6)
    split = np.empty(spec.n, dtype=object)
    in_hole = np.zeros(spec.n, dtype=bool)
    if spec.hole:
        in_hole = np.hypot(ab[:, 0] - spec.hole_center[0], ab[:, 1] - spec.hole_center[1]) <= spec.hole_radius
        split[in_hole] = "hole"
    split[~in_hole] = _split_train_validation(int((~in_hole).sum()), spec.validation_fraction)
    transect = np.full(spec.n, "", dtype=object)
    point = np.zeros(spec.n, dtype=np.int64)
    if spec.transects:
        pts = transect_points(spec)
        ab = np.vstack([ab, [[p[2], p[3]] for p in pts]])
        split = np.concatenate([split, np.full(len(pts), "transects", dtype=object)])
        transect = np.concatenate([transect, np.array([p[0] for p in pts], dtype=object)])
        point = np.concatenate([point, np.array([p[1] for p in pts], dtype=np.int64)])
    blo, bhi = spec.b_range
    weight = np.round((bhi - ab[:, 1]) / (bhi - blo), 6)
    return {
        "id": np.arange(len(ab), dtype=np.int64),
        "split": split.astype(str),
        "a": ab[:, 0].copy(),
        "b": ab[:, 1].copy(),
        "weight": weight,
        "transect": transect.astype(str),
        "point": point,
    }


def _sprite_indices(spec, rng):
    shape = spec.grid_shape()
    total = spec.grid_size()
    if spec.sampling == "grid":
        if spec.n is None or spec.n >= total:
            flat = rng.permutation(total)
        else:
            flat = rng.choice(total, size=spec.n, replace=False)
        return np.column_stack(np.unravel_index(flat, shape))
    n = spec.n
    idx = np.column_stack([rng.integers(0, k, n) for k in shape])
    if spec.correlate is not None:
        f1, f2, rho = spec.correlate
        i1, i2 = SPRITE_FACTORS.index(f1), SPRITE_FACTORS.index(f2)
        k1, k2 = shape[i1], shape[i2]
        copied = np.rint(idx[:, i1] * (k2 - 1) / (k1 - 1)).astype(np.int64)
        if rho < 0:
            copied = (k2 - 1) - copied
        tie = rng.random(n) < abs(rho)
        idx[tie, i2] = copied[tie]
    return idx


def _plan_sprites(spec):
    rng = np.random.default_rng(spec.seed)
    idx = _sprite_indices(spec, rng)
    values = spec.sprite_values()
    n = len(idx)
    cols = {
        "id": np.arange(n, dtype=np.int64),
        "split": _split_train_validation(n, spec.validation_fraction).astype(str),
    }
    for k, f in enumerate(SPRITE_FACTORS):
        v = values[f][idx[:, k]]
        cols[f] = v.astype(np.int64) if f == "shape" else np.round(v, 6)
    cols.update(weight=np.ones(n), transect=np.full(n, "", dtype=str), point=np.zeros(n, dtype=np.int64))
    return cols


# ------------------------------------------------------------------ rendering a plan
def render_rows(spec: DatasetSpec, columns: dict, rows=None) -> np.ndarray:
    """Render the given rows (default all) of a plan: uint8 (len(rows), S, S), with noise if set."""
    ids = columns["id"] if rows is None else columns["id"][rows]
    sel = slice(None) if rows is None else rows
    size = spec.image_size
    if spec.family == "starfish":
        imgs = render_starfish_batch(columns["a"][sel], columns["b"][sel], size, spec.fit)
    else:
        imgs = render_sprites(
            columns["shape"][sel],
            columns["scale"][sel],
            columns["rotation"][sel],
            columns["x"][sel],
            columns["y"][sel],
            size,
        )
    if spec.noise_std > 0:
        imgs = _add_noise(imgs, ids, spec.noise_std, spec.seed)
    return imgs


def _add_noise(imgs, ids, std, seed):
    out = np.empty_like(imgs)
    for k, (img, i) in enumerate(zip(imgs, ids)):
        noise = np.random.default_rng([int(seed), 7919, int(i)]).normal(0.0, std, img.shape)
        out[k] = np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)
    return out


@dataclass
class Generated:
    spec: DatasetSpec
    images: np.ndarray
    columns: dict
    factor_names: list

    @property
    def counts(self) -> dict:
        splits, counts = np.unique(self.columns["split"], return_counts=True)
        return {str(s): int(c) for s, c in zip(splits, counts)}


CHUNK = 512


def generate(spec: DatasetSpec, progress=None) -> Generated:
    """Render a whole spec in memory; `progress(done, total)` is called after each chunk."""
    columns = plan(spec)
    n = len(columns["id"])
    images = np.empty((n, spec.image_size, spec.image_size), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        images[start:stop] = render_rows(spec, columns, np.arange(start, stop))
        if progress is not None:
            progress(stop, n)
    return Generated(spec, images, columns, spec.factor_names)


def preview(spec: DatasetSpec, n: int = 16) -> np.ndarray:
    """n images spread evenly over the spec's rows (the dataset's own images), uint8 (n, S, S)."""
    columns = plan(spec)
    total = len(columns["id"])
    rows = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(np.int64))
    return render_rows(spec, columns, rows)


# ------------------------------------------------------------------ ground truth for metrics
class GroundTruth:
    """A discrete factor grid that can render any combination (for FactorVAE / BetaVAE scores).

    Only factors that vary are listed; fixed sprite factors are held at their value. Starfish a and
    b are discretised into 20 values each over their ranges. `render(idx, rng=None)` adds the
    spec's pixel noise only when an rng is given.
    """

    def __init__(self, spec: DatasetSpec, starfish_steps: int = 20):
        spec.validate()
        self.spec = spec
        if spec.family == "starfish":
            self.values = {
                "a": np.linspace(*spec.a_range, starfish_steps),
                "b": np.linspace(*spec.b_range, starfish_steps),
            }
        elif spec.family == "sprites":
            self.values = {f: v for f, v in spec.sprite_values().items() if len(v) > 1}
            self._fixed = {f: v[0] for f, v in spec.sprite_values().items() if len(v) == 1}
        else:
            raise UserError("an imported dataset has no ground-truth factors")
        self.factor_names = list(self.values)
        self.factor_sizes = [len(v) for v in self.values.values()]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.column_stack([rng.integers(0, k, n) for k in self.factor_sizes]).astype(np.int64)

    def factor_values(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1, len(self.factor_names))
        return {f: self.values[f][idx[:, k]] for k, f in enumerate(self.factor_names)}

    def render(self, idx: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        vals = self.factor_values(idx)
        spec = self.spec
        if spec.family == "starfish":
            imgs = render_starfish_batch(vals["a"], vals["b"], spec.image_size, spec.fit)
        else:
            n = len(next(iter(vals.values()))) if vals else len(np.atleast_2d(idx))
            full = {f: vals.get(f, np.full(n, self._fixed.get(f, 0.0))) for f in SPRITE_FACTORS}
            imgs = render_sprites(full["shape"], full["scale"], full["rotation"], full["x"], full["y"], spec.image_size)
        if rng is not None and spec.noise_std > 0:
            noise = rng.normal(0.0, spec.noise_std, imgs.shape)
            imgs = np.clip(np.rint(imgs + noise), 0, 255).astype(np.uint8)
        return imgs


def ground_truth(spec: DatasetSpec) -> GroundTruth:
    return GroundTruth(spec)
