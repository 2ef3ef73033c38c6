"""Generation speed: images per second, rendering alone and writing a whole dataset folder.

`python bench/bench_generate.py` prints medians of a few repeats. Never run from the tests.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae.data.datasets import write_dataset  # noqa: E402
from vae.data.presets import plan, preset_spec, render_rows  # noqa: E402


def _median_rate(fn, n_images, repeats):
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n_images / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_generation(n: int = 5000, image_size: int = 64, repeats: int = 3) -> dict:
    """Median images/s for: starfish rendering in memory, starfish write_dataset with 1 and with
    2 processes (PNGs + images.npy + factors.csv), and dsprites write_dataset."""
    out = {"n": n, "image_size": image_size, "cpus": os.cpu_count()}
    spec = preset_spec("seed-full", n=n, image_size=image_size)
    cols = plan(spec)
    total = len(cols["id"])
    out["starfish_render"] = _median_rate(lambda: render_rows(spec, cols), total, repeats)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):

            def write(w=workers):
                write_dataset(spec, Path(tmp) / "ds", overwrite=True, workers=w)

            out[f"starfish_write_{workers}proc"] = _median_rate(write, total, repeats)
        sprites = preset_spec("dsprites", n=min(n, 2000), image_size=image_size)
        out["dsprites_write"] = _median_rate(
            lambda: write_dataset(sprites, Path(tmp) / "sp", overwrite=True), sprites.n, repeats
        )
    return out


if __name__ == "__main__":
    for key, value in bench_generation().items():
        print(f"{key:24s} {value:,.0f}" if isinstance(value, float) else f"{key:24s} {value}")
