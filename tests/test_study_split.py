"""The study's punctured split (docs/study.md, "The data"): of the 4510 covered draws, in data_full order, the
first 4299 train and the last 211 validate; the 490 draws in the hole are held out."""

import csv
from pathlib import Path

import numpy as np
import pytest

from vae.data.presets import plan, preset_spec

REF = Path(__file__).parent / "data" / "study"  # the study's own files (tests/data/README.md)


def _study_rows():
    return list(csv.DictReader(open(REF / "parameters_full.csv")))


def test_seed_exact_with_the_hole_is_the_studys_punctured_split():
    c = plan(preset_spec("seed-exact", hole=True))
    rows = _study_rows()
    split = c["split"][:5000]
    in_hole = np.array([r["in_hole"] == "1" for r in rows])
    assert (split == "hole").sum() == 490 and (split[in_hole] == "hole").all()
    covered = split[~in_hole]  # the study's data_punctured, in data_full order
    assert len(covered) == 4510
    assert (covered[:4299] == "train").all() and (covered[4299:] == "validation").all()
    # the validation images are the study's files 04300-04510: the last 211 covered draws
    covered_ids = np.flatnonzero(~in_hole)
    assert covered_ids[4299] == np.flatnonzero(split == "validation")[0]


def test_seed_punctured_uses_the_studys_proportions():
    c = plan(preset_spec("seed-punctured"))
    drawn = c["split"] != "transects"
    covered = c["split"][drawn & (c["split"] != "hole")]
    n_val = int((covered == "validation").sum())
    assert n_val == round(len(covered) * 211 / 4510)
    assert (covered[-n_val:] == "validation").all() and (covered[:-n_val] == "train").all()


def test_full_set_keeps_its_own_split():
    c = plan(preset_spec("seed-exact"))
    assert (c["split"][:5000] == "validation").sum() == 501


@pytest.mark.slow  # renders 5,045 images in a subprocess (~10 s on the shared machine): out of the fast lane
def test_the_cli_generates_the_studys_punctured_split(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "exact-hole"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vae",
            "generate",
            "--preset",
            "seed-exact",
            "--hole",
            "--size",
            "32",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    assert "hole 490" in proc.stdout and "train 4299" in proc.stdout and "validation 211" in proc.stdout


def test_the_dataset_page_uses_the_punctured_proportions_when_the_hole_is_ticked(tmp_workspace):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "dataset.py"), default_timeout=120).run()
    preset = next(s for s in at.selectbox if s.label.lower().startswith("preset"))
    preset.set_value("seed-exact").run()
    assert next(s for s in at.slider if s.label == "Validation fraction").value == pytest.approx(501 / 5000)
    next(c for c in at.checkbox if c.label == "Hole").check().run()
    assert not at.exception
    assert next(s for s in at.slider if s.label == "Validation fraction").value == pytest.approx(211 / 4510)
