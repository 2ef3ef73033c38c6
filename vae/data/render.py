"""The renderers: starfish curves and sprites as uint8 images (numpy and pillow only).

`render_starfish(a, b)` draws the study's processed image: one closed polar curve
r(θ) = b·cos(5θ) + a, white on black at the study's 229x172 px, with the geometry
fitted to the study's own transect images: 17.5 px per unit, origin at row 83,
the curve's horizontal bounding box centred at column 118.5 (MATLAB `axis
equal`), a 2 px anti-aliased stroke whose coverage is scaled by 1.3 (the study's
Fiji-processed strokes are saturated). `render_starfish_batch` draws many at the
training size directly; `render_sprites` draws dSprites-like shapes. vae.data.presets
says what to draw (specs, presets, factor tables).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from vae.base.errors import UserError

# ---------------------------------------------------------------- study geometry
STUDY_H, STUDY_W = 172, 229  # rows, cols of the study's processed images
PX_PER_UNIT = 17.5  # fitted to the P1 transect images
ORIGIN_ROW = 83.0  # the curve origin's row (y points up)
CENTER_COL = 118.5  # the curve's horizontal bounding box is centred here
LINE_WIDTH = 2.0  # study px (MATLAB 'linewidth', 2)
GAIN = 1.3  # coverage -> intensity, clipped at 255 (fitted)
N_THETA = 500  # θ = linspace(0, 2π, 500)
SHAPES = ("square", "ellipse", "heart")
SPRITE_MARGIN = 0.22  # position 0..1 maps to centre margin..1-margin of the image
SPRITE_HALF_SIZE = 0.15  # half-size at scale 1, as a fraction of the image side


# ------------------------------------------------------------------ rendering
def _stroke(cols, rows, out_h, out_w, rx, ry, ss=4, step=0.5):
    """Anti-aliased thick polylines: coverage in [0, 1], float32 (B, out_h, out_w).

    `cols`, `rows`: (B, P) vertex positions in output pixels (pixel centres at
    integers). `rx`, `ry`: half line width in output pixels along x and y (an
    ellipse when the image is stretched). The polyline is sampled every `step`
    sub-pixels on an `ss`x`ss` supersampled grid; every sub-pixel within the
    half width of a sample is lit; the sub-pixels are box-averaged.
    """
    cols = np.asarray(cols, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64)
    bsz, npts = cols.shape
    hs, ws = out_h * ss, out_w * ss
    u = (cols + 0.5) * ss - 0.5
    v = (rows + 0.5) * ss - 0.5
    du, dv = np.diff(u, axis=1), np.diff(v, axis=1)
    k = np.maximum(1, np.ceil(np.hypot(du, dv) / step).astype(np.int64)).ravel()
    seg = np.repeat(np.arange(k.size), k)
    start = np.cumsum(k) - k
    t = (np.arange(seg.size) - start[seg]) / k[seg]
    img_of_seg = np.repeat(np.arange(bsz), npts - 1)
    uf, vf = u[:, :-1].ravel(), v[:, :-1].ravel()
    uu = uf[seg] + t * du.ravel()[seg]
    vv = vf[seg] + t * dv.ravel()[seg]
    bb = img_of_seg[seg]
    uu = np.concatenate([uu, u[:, -1]])
    vv = np.concatenate([vv, v[:, -1]])
    bb = np.concatenate([bb, np.arange(bsz)])

    big_rx, big_ry = rx * ss, ry * ss
    kx, ky = int(math.floor(big_rx + 0.5)), int(math.floor(big_ry + 0.5))  # |offset| <= r + 0.5 suffices
    oy, ox = np.mgrid[-ky : ky + 1, -kx : kx + 1]
    ox, oy = ox.ravel(), oy.ravel()
    cu, cv = np.rint(uu).astype(np.int64), np.rint(vv).astype(np.int64)
    jj = cu[:, None] + ox[None, :]
    ii = cv[:, None] + oy[None, :]
    inside = ((jj - uu[:, None]) / big_rx) ** 2 + ((ii - vv[:, None]) / big_ry) ** 2 <= 1.0
    inside &= (jj >= 0) & (jj < ws) & (ii >= 0) & (ii < hs)
    flat = (bb[:, None] * (hs * ws) + ii * ws + jj)[inside]
    buf = np.zeros(bsz * hs * ws, dtype=np.uint8)
    buf[flat] = 1
    if ss == 4:  # sum each run of 4 horizontal sub-pixels as one uint32 (bytes are 0/1)
        quad = (buf.view(np.uint32) * np.uint32(0x01010101)) >> np.uint32(24)
        cov = quad.reshape(bsz, out_h, ss, out_w).sum(axis=2, dtype=np.uint16)
    else:
        cov = buf.reshape(bsz, out_h, ss, out_w, ss).sum(axis=(2, 4), dtype=np.uint16)
    return cov.astype(np.float32) / (ss * ss)


def _to_uint8(coverage, gain=GAIN):
    return np.clip(np.rint(coverage * (gain * 255.0)), 0, 255).astype(np.uint8)


def _starfish_study_coords(a, b):
    """Vertex positions (cols, rows) of starfish curves in study pixels, (B, 500) each."""
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))[:, None]
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))[:, None]
    theta = np.linspace(0.0, 2.0 * np.pi, N_THETA)[None, :]
    r = b * np.cos(5.0 * theta) + a
    x, y = r * np.cos(theta), r * np.sin(theta)
    mid = (x.min(axis=1, keepdims=True) + x.max(axis=1, keepdims=True)) / 2.0
    cols = CENTER_COL + PX_PER_UNIT * (x - mid)
    rows = ORIGIN_ROW - PX_PER_UNIT * y
    return cols, rows


def render_starfish(a: float, b: float) -> np.ndarray:
    """The study's image of r(θ) = b·cos(5θ) + a: uint8 (172, 229), white curve on black."""
    cols, rows = _starfish_study_coords(a, b)
    half = LINE_WIDTH / 2.0
    return _to_uint8(_stroke(cols, rows, STUDY_H, STUDY_W, half, half, ss=8))[0]


def _fit_mapping(in_h, in_w, size, fit):
    """(scale_x, scale_y, pad_top, pad_left) taking input pixel centres to output pixel centres."""
    if fit == "stretch":
        return size / in_w, size / in_h, 0, 0
    side = max(in_h, in_w)
    return size / side, size / side, (side - in_h) // 2, (side - in_w) // 2


def to_training_size(img: np.ndarray, size: int = 64, fit: str = "stretch") -> np.ndarray:
    """Resize a uint8 (H, W) image to (size, size), bilinear (PIL, anti-aliased when shrinking).

    fit="stretch" ignores the aspect ratio, as the study's TF 2.3 loader did (256 reproduces the
    study); fit="pad" keeps it by centring the image on a black square first.
    """
    if fit not in ("stretch", "pad"):
        raise UserError(f"fit must be 'stretch' or 'pad', not {fit!r}")
    img = np.asarray(img, dtype=np.uint8)
    pil = Image.fromarray(img)
    if fit == "pad":
        h, w = img.shape
        side = max(h, w)
        canvas = Image.new("L", (side, side), 0)
        canvas.paste(pil, ((side - w) // 2, (side - h) // 2))
        pil = canvas
    return np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def render_starfish_batch(a, b, size: int = 64, fit: str = "stretch") -> np.ndarray:
    """Starfish images rendered straight at the training size: uint8 (B, size, size).

    The same curve, stroke and intensity as render_starfish→to_training_size, drawn in one
    supersampled pass on the output grid (the stroke becomes an ellipse when stretched).
    """
    cols, rows = _starfish_study_coords(a, b)
    sx, sy, top, left = _fit_mapping(STUDY_H, STUDY_W, size, fit)
    cols = (cols + left + 0.5) * sx - 0.5
    rows = (rows + top + 0.5) * sy - 0.5
    half = LINE_WIDTH / 2.0
    gain = GAIN * _direct_gain_correction(size, fit)
    out = np.empty((cols.shape[0], size, size), dtype=np.uint8)
    step = max(1, 2_000_000 // (size * size * 16))  # keep the supersampled buffer small
    for i in range(0, cols.shape[0], step):
        out[i : i + step] = _to_uint8(
            _stroke(cols[i : i + step], rows[i : i + step], size, size, half * sx, half * sy, ss=4), gain
        )
    return out


# Brightness factor making the direct render's total intensity equal the study path's
# (render_starfish -> to_training_size), which clips 1.3 x coverage per study pixel before
# resizing. Measured on 16 fixed (a, b) shapes per size (see _measure_direct_gain); interpolated.
_GAIN_SIZES = (32, 48, 64, 96, 128, 160, 192, 256)
_GAIN_TABLE = {
    "stretch": (0.8638, 0.8717, 0.8698, 0.9105, 0.9501, 0.9811, 0.9975, 1.0225),
    "pad": (0.8688, 0.8767, 0.8684, 0.8889, 0.9330, 0.9645, 0.9842, 1.0123),
}


def _direct_gain_correction(size, fit):
    return float(np.interp(size, _GAIN_SIZES, _GAIN_TABLE[fit]))


def _measure_direct_gain(size, fit):
    """Re-measure one _GAIN_TABLE entry (slow: renders 16 study images)."""
    a, b = np.array([(a, b) for a in (0.5, 1.0, 1.5, 2.0) for b in (0.0, 0.7, 1.4, 2.0)]).T
    slow = sum(float(to_training_size(render_starfish(ai, bi), size, fit).sum()) for ai, bi in zip(a, b))
    cols, rows = _starfish_study_coords(a, b)
    sx, sy, top, left = _fit_mapping(STUDY_H, STUDY_W, size, fit)
    cov = _stroke(
        (cols + left + 0.5) * sx - 0.5,
        (rows + top + 0.5) * sy - 0.5,
        size,
        size,
        LINE_WIDTH / 2 * sx,
        LINE_WIDTH / 2 * sy,
        ss=4,
    )
    return round(slow / float(_to_uint8(cov).astype(np.float64).sum()), 4)


def _sprite_inside(shape_code, u, v):
    if shape_code == 0:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape_code == 1:  # ellipse, 2:1
        return u * u + 4.0 * v * v <= 1.0
    x, y = 1.2 * u, 1.2 * v + 0.12  # heart, point down
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0


def render_sprites(shape, scale, rotation, x, y, size: int = 64, ss: int = 4) -> np.ndarray:
    """dSprites-like shapes, anti-aliased (ss x ss supersampling), white on black: uint8 (B, size, size).

    x runs left to right and y bottom to top over [0, 1]; rotation is in radians, counter-clockwise.
    """
    shape = np.atleast_1d(np.asarray(shape, dtype=np.int64))
    scale, rotation, x, y = (np.atleast_1d(np.asarray(t, dtype=np.float64)) for t in (scale, rotation, x, y))
    n = shape.size
    grid = (np.arange(size * ss) + 0.5) / (size * ss)  # sub-pixel centres in [0, 1]
    gx = grid[None, None, :]
    gy = (1.0 - grid)[None, :, None]  # y points up
    out = np.empty((n, size, size), dtype=np.uint8)
    step = max(1, 4_000_000 // (size * size * ss * ss))
    for i in range(0, n, step):
        sl = slice(i, i + step)
        cx = (SPRITE_MARGIN + (1 - 2 * SPRITE_MARGIN) * x[sl])[:, None, None]
        cy = (SPRITE_MARGIN + (1 - 2 * SPRITE_MARGIN) * y[sl])[:, None, None]
        half = (SPRITE_HALF_SIZE * scale[sl])[:, None, None]
        c, s = np.cos(rotation[sl])[:, None, None], np.sin(rotation[sl])[:, None, None]
        dx, dy = gx - cx, gy - cy
        u = (c * dx + s * dy) / half
        v = (-s * dx + c * dy) / half
        mask = np.zeros(u.shape, dtype=bool)
        for code in range(len(SHAPES)):
            sel = shape[sl] == code
            if sel.any():
                mask[sel] = _sprite_inside(code, u[sel], v[sel])
        cov = mask.reshape(-1, size, ss, size, ss).mean(axis=(2, 4))
        out[sl] = np.rint(cov * 255.0).astype(np.uint8)
    return out
