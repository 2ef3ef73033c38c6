"""Export bundles: a sweep's (or a Compare view's) results, figures and provenance in one zip, for a paper.

A bundle holds:
  results.csv          one row per run (a sweep's results.csv, rewritten from the run folders first;
                       for a Compare view, the table shown)
  configs/RUN.json     every run's config.json, as the trainer wrote it (`python -m vae train --config`
                       repeats a run from it)
  figures/NAME.json    each figure as plotly JSON (plotly.io.read_json reads it back)
  figures/figures.html every figure on one self-contained page (plotly.js inside: opens offline)
  figures/NAME.svg/.png  static images of the same figures, drawn by matplotlib (vae.views.static: no browser,
                       works offline); `versions.json` says for each figure whether they were written and,
                       if not, why
  versions.json        the lab's version, Python's and every package the results depend on
  sweep.json, status.json  (a sweep) the plan and the driver's record: attempts, wall times, errors
  README.txt           what each file is

Never imports TensorFlow, Ray or streamlit: the versions of TensorFlow, Keras and Ray are read from the
installed packages' metadata.
"""

from __future__ import annotations

import io
import json
import platform
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "plotly",
    "streamlit",
    "tensorflow",
    "keras",
    "ray",
    "psutil",
    "matplotlib",
)


def versions(static: dict | None = None) -> dict:
    """The lab's version, Python's, the installed versions of PACKAGES (None: not installed), and the
    static image engine's state."""
    import vae

    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {
        "lab": vae.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": pkgs,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "static_images": static or {},
    }


def static_image(fig, fmt: str) -> tuple[bytes | None, str]:
    """(image bytes, '') drawn by matplotlib (vae.views.static), or (None, why not)."""
    try:
        from vae.views import static
    except ImportError as e:  # matplotlib missing: say so, export the rest
        return None, f"matplotlib is not installed ({e}): `pip install -r requirements.txt` for SVG/PNG files"
    try:
        return static.render(fig, fmt), ""
    except static.Unsupported as e:
        return None, f"no static drawing: {e}"
    except Exception as e:  # a drawing failure must not lose the rest of the bundle: say so
        return None, f"the static drawing failed ({type(e).__name__}: {str(e)[:200]})"


def figure_files(name: str, fig, static: bool = True) -> tuple[dict[str, bytes], str]:
    """{path in the bundle: bytes} for one figure (JSON, and SVG and PNG when the static engine works),
    and why SVG/PNG are missing ('' if present)."""
    files = {f"figures/{name}.json": fig.to_json().encode()}
    why = "static images not asked for"
    if static:
        for fmt in ("svg", "png"):
            data, why = static_image(fig, fmt)
            if data is None:
                break
            files[f"figures/{name}.{fmt}"] = data
    return files, ("" if f"figures/{name}.svg" in files else why)


def figures_html(figures: Mapping) -> str:
    """Every figure on one self-contained page (plotly.js once, inside: opens offline); each figure's
    camera button saves it as SVG."""
    import plotly.io as pio

    parts = [
        pio.to_html(
            fig,
            include_plotlyjs=(k == 0),
            full_html=False,
            config={"toImageButtonOptions": {"format": "svg", "filename": _safe(name)}},
        )
        for k, (name, fig) in enumerate(figures.items())
    ]
    heads = "".join(f"<h2>{_safe(name)}</h2>{part}" for name, part in zip(figures, parts))
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>figures</title></head><body>{heads}</body></html>"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in str(name))[:120] or "figure"


def _zip(files: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data.encode() if isinstance(data, str) else data)
    return buf.getvalue()


README = """What is in this bundle (VAE Disentanglement Lab export)
results.csv        one row per run
configs/RUN.json   each run's config.json; `python -m vae train --config configs/RUN.json --out runs/NEW` repeats it
figures/*.json     plotly figures (plotly.io.read_json); figures.html all of them, self-contained, opens
                   offline (interactive: hover shows each run)
figures/*.svg/png  the same figures as static images for a paper (drawn by matplotlib; text in the SVG is
                   text); versions.json's static_images says if one could not be drawn, and why
versions.json      the lab's and the packages' versions
"""


def bundle(
    rows: Sequence[Mapping],
    run_paths: Sequence,
    figures: Mapping,
    extra: Mapping[str, bytes | str] = (),
    static: bool = True,
) -> bytes:
    """A zip (bytes) of rows as results.csv, each run folder's config.json, the figures and versions.json."""
    from vae.sweeps.sweep import table_csv

    files: dict = {"README.txt": README, "results.csv": table_csv(list(rows))}
    for path in run_paths:
        p = Path(path) / "config.json"
        if p.is_file():
            files[f"configs/{_safe(Path(path).name)}.json"] = p.read_bytes()
    why = {}
    for name, fig in figures.items():
        out, reason = figure_files(_safe(name), fig, static=static)
        files.update(out)
        if reason:
            why[_safe(name)] = reason
    if figures:
        files["figures/figures.html"] = figures_html(figures)
    files.update(dict(extra))
    files["versions.json"] = json.dumps(versions({"missing": why} if why else {"all": "svg and png written"}), indent=2)
    return _zip(files)


def sweep_figures(rows: Sequence[Mapping], grid: Mapping, name: str = "") -> dict:
    """One distribution figure per metric against the first swept setting (coloured by the second)."""
    from vae.sweeps.plots import distribution_figure
    from vae.sweeps.report import finished, metric_columns

    done = finished(list(rows))
    keys = list(grid) or ["seed"]
    x = "gamma" if "gamma" in keys else keys[0]
    others = [k for k in keys if k != x]
    return {
        f"{m}_vs_{x}": distribution_figure(done, x, m, others[0] if others else None, name)
        for m in metric_columns(done)
    }


def sweep_bundle(sweep_dir, static: bool = True) -> bytes:
    """The export of one sweep: results.csv (rewritten from its run folders), configs, figures, versions,
    sweep.json and status.json."""
    from vae.sweeps import sweep

    sweep_dir = Path(sweep_dir)
    doc = sweep.read_sweep(sweep_dir)
    rows = sweep.result_rows(sweep_dir, doc)
    extra = {n: (sweep_dir / n).read_bytes() for n in ("sweep.json", "status.json") if (sweep_dir / n).is_file()}
    return bundle(
        rows,
        [sweep.run_dir_of(sweep_dir, r) for r in doc["runs"]],
        sweep_figures(rows, doc.get("grid") or {}, doc.get("name", "")),
        extra,
        static=static,
    )
