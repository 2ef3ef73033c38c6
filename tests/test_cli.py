"""`python -m vae`: every user mistake is one line `error: ...` naming the setting, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "vae", *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize(
    "args,setting",
    [
        (["--beta", "-1"], "beta"),
        (["--gamma", "-0.5"], "gamma"),
        (["--beta", "nan"], "beta"),
        (["--latent-dim", "1"], "latent_dim"),
        (["--latent-dim", "11"], "latent_dim"),
        (["--image-size", "24"], "image_size"),
        (["--image-size", "40"], "image_size"),  # a multiple of 8 but not of 16, which the burgess net needs
        (["--batch-size", "5000"], "batch_size"),
        (["--epochs", "0"], "epochs"),
        (["--lr", "0"], "lr"),
        (["--beta", "lots"], "--beta"),
    ],
)
def test_train_refuses_out_of_range_settings_in_one_line(tiny_dataset, tmp_path, args, setting):
    out = cli("train", "--data", tiny_dataset, "--out", tmp_path / "run", *args)
    assert_one_line_error(out, setting)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args,words",
    [
        (["generate", "--preset", "seed-full", "--n", "5", "--out", "{tmp}/d"], ["N must be between 10"]),
        (["generate", "--preset", "seed-full", "--size", "30", "--out", "{tmp}/d"], ["image size"]),
        (["generate", "--preset", "nope", "--out", "{tmp}/d"], ["nope"]),
        (["import", "{tmp}/missing", "--out", "{tmp}/d"], ["does not exist"]),
        (["train", "--data", "{tmp}/missing", "--out", "{tmp}/r"], ["no dataset folder"]),
        (["train", "--run-dir", "{tmp}"], ["no config.json"]),
        (["evaluate", "{tmp}"], ["not a run folder"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_other_mistakes_are_one_line_errors(tmp_path, args, words):
    assert_one_line_error(cli(*[a.format(tmp=tmp_path) for a in args]), *words)


def test_resume_without_a_checkpoint_says_why(fake_run):
    run = fake_run("stopped-early", state="stopped", done_epochs=0)
    from vae.jobs import launcher

    with pytest.raises(Exception, match="no checkpoint"):
        launcher.resume_run(run)


def test_import_of_a_folder_without_images_is_a_one_line_error(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"")
    (tmp_path / "junk" / "b.txt").write_text("x")
    out = cli("import", tmp_path / "junk", "--out", tmp_path / "d")
    assert_one_line_error(out, "no usable images")


def test_import_prints_each_skipped_file_with_its_reason(tmp_path):
    import numpy as np
    from PIL import Image

    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20), 50 * i, np.uint8)).save(src / f"{i}.png")
    (src / "empty.png").write_bytes(b"")
    out = cli("import", src, "--out", tmp_path / "d", "--size", "32")
    assert out.returncode == 0, out.stderr
    assert "skipped empty.png: empty file" in out.stderr and "3 images, 1 skipped" in out.stdout
