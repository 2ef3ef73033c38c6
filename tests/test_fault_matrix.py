"""The fault matrix: every file of a run, a dataset, a sweep and an evaluation, damaged in each of several
ways (empty, truncated, null, wrong types, random bytes, a folder in its place), all at once in one data
folder beside good runs. Every page then opens (one AppTest session per page, picking each damaged item in
turn) and every CLI command that reads runs, datasets or sweeps runs on it: each case gives a clear message,
no traceback, and every other run is still listed.

One data folder holds every case (each damaged file in its own run, dataset or sweep folder), so each page
and each listing runs once for all of them; only the pages that show one chosen item rerun per item.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import _metric_line

ROOT = Path(__file__).resolve().parent.parent
RNG_BYTES = np.random.default_rng(20).bytes(300)

# ---------------------------------------------------------------- the damage

GENERIC = ("empty", "truncated", "random", "folder")  # every file
JSON_KINDS = GENERIC + ("null", "list")  # + wrong types per file, below

# file -> {kind: content} for the wrong-types cases (JSON documents, or bytes)
RUN_WRONG = {
    "config.json": {
        "created_text": lambda d: {**d, "created": "yesterday"},
        "config_list": lambda d: {**d, "config": []},
        "no_dataset": lambda d: {**d, "config": {k: v for k, v in d["config"].items() if k != "dataset"}},
        "dataset_number": lambda d: {**d, "config": {**d["config"], "dataset": 5}},
        "setting_types": lambda d: {
            **d,
            "config": {**d["config"], "beta": "high", "latent_dim": "three", "epochs": None, "method": 7, "gamma": [1]},
        },
        "dataset_meta_list": lambda d: {**d, "dataset": [1, 2]},
    },
    "status.json": {
        "heartbeat_text": lambda d: {**d, "state": "running", "pid": 1, "heartbeat": "soon"},
        "state_number": lambda d: {**d, "state": 5},
        "field_types": lambda d: {
            **d,
            "epoch": "one",
            "epochs": [3],
            "step": {},
            "steps_per_epoch": "x",
            "message": 12,
            "started": "then",
            "pid": "abc",
        },
    },
    "metrics.jsonl": {
        "value_types": "lines",
    },
    "evaluation.json": {
        "summary_list": lambda d: {**d, "summary": [1, 2]},
        "summary_text": lambda d: {**d, "summary": {"mig": "high", "dci": None}},
        "metric_types": lambda d: {
            **d,
            "metrics": {
                "mig": {"per_factor": ["a", "b"], "mutual_info": "x"},
                "dci": {"importance_matrix": [[1, "b"], [2]]},
            },
        },
        "metrics_list": lambda d: {**d, "metrics": [1], "factor_alignment": {"abs_cos": [["a", 1]]}},
        "alignment_types": lambda d: {
            **d,
            "factor_alignment": {"abs_cos": [[0.9, 0.1]], "assigned_axis": "x", "score": "good", "per_factor": 3},
        },
    },
    "evaluation_progress.json": {
        "field_types": lambda d: {**d, "fraction": "half", "updated": "now", "started": [1], "stage": 5},
        "running_bad_pid": lambda d: {**d, "state": "running", "pid": "abc", "fraction": None},
    },
    "snapshots/epoch_0002.npz": {
        "text_arrays": "npz_text",
        "missing_arrays": "npz_missing",
        "shape_mismatch": "npz_shapes",
    },
    "model.keras": {},
}
DATASET_WRONG = {
    "dataset.json": {
        "image_size_text": lambda d: {**d, "image_size": "abc"},
        "counts_list": lambda d: {**d, "counts": [1, 2]},
        "factor_names_number": lambda d: {**d, "factor_names": 5},
        "n_text": lambda d: {**d, "n": "many", "spec": "x"},
    },
    "factors.csv": {"text_values": "csv_text"},
    "images.npy": {"wrong_shape": "npy_shape"},
}
SWEEP_WRONG = {
    "sweep.json": {
        "runs_strings": lambda d: {**d, "runs": ["a", 5]},
        "grid_list": lambda d: {**d, "grid": [1], "created": "yesterday", "seeds": "x"},
        "run_settings": lambda d: {**d, "runs": [{"name": r["name"], "settings": [], "seed": "x"} for r in d["runs"]]},
    },
    "status.json": {
        "running_heartbeat_text": lambda d: {**d, "state": "running", "heartbeat": "soon", "driver_pid": "x"},
        "runs_list": lambda d: {**d, "runs": [1, 2], "state": 4, "workers": "many"},
    },
    "results.csv": {},
}


def _cases(
    wrong: dict,
    non_json=("model.keras", "snapshots/epoch_0002.npz", "metrics.jsonl", "factors.csv", "images.npy", "results.csv"),
) -> list[tuple[str, str]]:
    out = []
    for file, extra in wrong.items():
        kinds = GENERIC if file in non_json else JSON_KINDS
        if file == "metrics.jsonl":
            kinds = GENERIC + ("null",)
        out += [(file, k) for k in kinds] + [(file, k) for k in extra]
    return out


RUN_CASES = _cases(RUN_WRONG)
DATASET_CASES = _cases(DATASET_WRONG)
SWEEP_CASES = _cases(SWEEP_WRONG)


def _slug(file: str, kind: str) -> str:
    return (file.replace("/", "_").replace(".", "_") + "-" + kind).replace("__", "_")


def damage(path: Path, kind: str, wrong: dict) -> None:
    """Replace the file at `path` by its damaged version (`wrong`: the file's wrong-types makers)."""
    good = path.read_bytes() if path.is_file() else b""
    if path.is_file():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir()
        (path / "inside").write_text("x")
        return
    data = {
        "empty": b"",
        "truncated": good[: max(1, len(good) // 2)],
        "random": RNG_BYTES,
        "null": b"null" if path.suffix != ".jsonl" else b"null\nnull\n",
        "list": b"[]",
    }.get(kind)
    if data is None:
        maker = wrong[kind]
        if callable(maker):
            data = json.dumps(maker(json.loads(good))).encode()
        elif maker == "lines":
            rows = [json.loads(line) for line in good.decode().splitlines()]
            bad = [
                {**r, "loss": "abc", "val_loss": [1], "epoch": "one", "step": None, "time": "t", "images_per_s": {}}
                for r in rows[:3]
            ] + [{**rows[-1], "kind": 3}, [1, 2], "text", 5]
            data = "".join(json.dumps(r) + "\n" for r in bad).encode()
        elif maker == "npz_text":
            np.savez(
                path.with_suffix(""),
                recon=np.array(["a", "b"]),
                recon_index=np.array(["x"]),
                mu_train=np.array(["q"]),
                index_train=np.array(["z"]),
            )
            return
        elif maker == "npz_missing":
            np.savez(path.with_suffix(""), something=np.zeros(3))
            return
        elif maker == "npz_shapes":
            np.savez(
                path.with_suffix(""),
                recon=np.zeros((3, 5, 5), np.uint8),
                recon_index=np.arange(7),
                mu_train=np.zeros((4, 3), np.float32),
                index_train=np.arange(9),
                mu_validation=np.zeros((2,), np.float32),
                index_validation=np.arange(2),
            )
            return
        elif maker == "csv_text":
            lines = good.decode().splitlines()
            head = lines[0].split(",")
            data = "\n".join([lines[0]] + [",".join("abc" for _ in head) for _ in lines[1:]]).encode()
        elif maker == "npy_shape":
            np.save(path, np.array(["a", "b", "c"]))
            return
    path.write_bytes(data)


# ---------------------------------------------------------------- the good folders


def _evaluation() -> dict:
    return {
        "format": "vae-lab-evaluation",
        "factor_names": ["a", "b"],
        "summary": {"mig": 0.5, "dci_disentanglement": 0.7, "factor_alignment": 0.8},
        "metrics": {
            "mig": {
                "score": 0.5,
                "per_factor": [0.6, 0.4],
                "mutual_info": [[2, 0], [0, 1.5], [0.1, 0.1]],
                "num_bins": 20,
            },
            "dci": {
                "disentanglement": 0.7,
                "completeness": 0.8,
                "importance_matrix": [[0.9, 0.05], [0.05, 0.9], [0.05, 0.05]],
            },
        },
        "factor_alignment": {
            "abs_cos": [[0.99, 0.1, 0.05], [0.2, 0.95, 0.1]],
            "assigned_axis": [0, 1],
            "angles_deg": [8.1, 18.2],
            "r2": [0.9, 0.8],
            "per_factor": [0.97, 0.83],
            "score": 0.9,
        },
    }


def good_run(run: Path, dataset: Path, created: float) -> Path:
    """A finished 2-epoch run of `dataset` with a snapshot per epoch and an evaluation."""
    from vae.data.datasets import load_dataset
    from vae.runs.config import TrainConfig

    ds = load_dataset(dataset)
    ids = {s: ds.indices(s) for s in ds.splits}
    cfg = TrainConfig.study(str(dataset), epochs=2, image_size=32, latent_dim=3).to_dict()
    (run / "snapshots").mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps(
            {
                "format": "vae-lab-run",
                "format_version": 1,
                "config": cfg,
                "versions": {},
                "dataset": {"path": str(dataset)},
                "created": created,
            }
        )
    )
    rng = np.random.default_rng(0)
    lines = []
    for epoch in (1, 2):
        lines += [_metric_line("batch", epoch, s, 4, rng, cfg["beta"], cfg["gamma"], epoch + s / 10) for s in (2, 4)]
        lines.append(_metric_line("epoch", epoch, 4, 4, rng, cfg["beta"], cfg["gamma"], epoch + 0.5))
        snap = {
            "recon_index": ids["validation"][:20],
            "recon": rng.integers(0, 255, (len(ids["validation"][:20]), 32, 32), dtype=np.uint8),
        }
        for split, split_ids in ids.items():
            snap[f"index_{split}"] = split_ids
            snap[f"mu_{split}"] = rng.normal(size=(len(split_ids), 3)).astype(np.float32)
        np.savez_compressed(run / "snapshots" / f"epoch_{epoch:04d}.npz", **snap)
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    now = time.time()
    (run / "status.json").write_text(
        json.dumps(
            dict(
                state="finished",
                pid=None,
                heartbeat=now,
                message="",
                epoch=2,
                epochs=2,
                step=4,
                steps_per_epoch=4,
                started=now - 10,
                updated=now,
            )
        )
    )
    (run / "evaluation.json").write_text(json.dumps(_evaluation()))
    (run / "evaluation_progress.json").write_text(
        json.dumps(
            {
                "state": "finished",
                "stage": "done",
                "fraction": 1.0,
                "pid": 1,
                "started": now - 5,
                "updated": now,
                "message": "",
            }
        )
    )
    (run / "model.keras").write_bytes(b"")  # replaced by each model.keras case; removed from the good runs
    (run / "model.keras").unlink()
    return run


def good_sweep(sweep_dir: Path, dataset: Path, runs: int = 2) -> Path:
    from vae.sweeps import sweep

    sweep.plan_sweep(sweep_dir, dataset, {"gamma": [0.0, 1e-4][:runs]}, 1, {"epochs": 2, "batch_size": 8})
    return sweep_dir


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The data folder with every case: {'home', 'good_runs', 'run_cases': {name: (file, kind)}, ...}."""
    from vae.data import datasets
    from vae.data import presets

    home = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    mp.setenv("VAE_LAB_HOME", str(home))
    for d in ("datasets", "runs", "sweeps"):
        (home / d).mkdir()
    good_ds = datasets.write_dataset(
        presets.preset_spec("seed-punctured", n=120, image_size=32), home / "datasets" / "good"
    )
    t = time.time() - 1000
    good_runs = [good_run(home / "runs" / f"good-{k}", good_ds, t + k) for k in range(2)]
    run_cases = {}
    for k, (file, kind) in enumerate(RUN_CASES):
        name = "bad-" + _slug(file, kind)
        run = good_run(home / "runs" / name, good_ds, t + 10 + k)
        damage(run / file, kind, RUN_WRONG[file])
        run_cases[name] = (file, kind)
    dataset_cases = {}
    for k, (file, kind) in enumerate(DATASET_CASES):
        name = "ds-" + _slug(file, kind)
        ds = home / "datasets" / name
        shutil.copytree(good_ds, ds, ignore=shutil.ignore_patterns("images"))  # the PNGs: not read by the lab
        good_run(home / "runs" / name, ds, t + 200 + k)
        damage(ds / file, kind, DATASET_WRONG[file])
        dataset_cases[name] = (file, kind)
    good_sweeps = [good_sweep(home / "sweeps" / "sweep-good", good_ds)]
    sweep_cases = {}
    for file, kind in SWEEP_CASES:
        name = "sw-" + _slug(file, kind)
        s = good_sweep(home / "sweeps" / name, good_ds, runs=1)
        damage(s / file, kind, SWEEP_WRONG[file])
        sweep_cases[name] = (file, kind)
    yield {
        "home": home,
        "good_runs": [r.name for r in good_runs],
        "run_cases": run_cases,
        "dataset_cases": dataset_cases,
        "sweep_cases": sweep_cases,
        "good_sweeps": [s.name for s in good_sweeps],
    }
    mp.undo()


# ---------------------------------------------------------------- the checks


def no_traceback(at: AppTest, what: str) -> None:
    assert not at.exception, f"{what}: {[e.value for e in at.exception]}"


def messages(at: AppTest) -> str:
    return "\n".join(str(m.value) for kind in ("error", "warning", "info") for m in at.get(kind))


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=120)


def names_in_tables(at: AppTest) -> set:
    out = set()
    for df in at.dataframe:
        if "name" in df.value:
            out |= set(df.value["name"])
    return out


@pytest.mark.slow
def test_every_list_shows_every_run_and_the_damaged_ones_as_damaged(lab):
    """Home, Train and `python -m vae runs`: all runs listed; a damaged one with its state and reason."""
    from vae.runs import folder, run_index

    everyone = set(lab["good_runs"]) | set(lab["run_cases"]) | set(lab["dataset_cases"])
    for lister in (run_index.list_runs, lambda: folder.list_runs(lab["home"] / "runs")):
        rows = {r["name"]: r for r in lister() if "/" not in r["name"]}
        assert set(rows) == everyone
        for name, (file, kind) in lab["run_cases"].items():
            if file in ("config.json", "status.json"):
                assert rows[name]["state"] == "damaged", (name, rows[name]["state"], rows[name].get("message"))
                assert file in rows[name]["message"] and "\n" not in rows[name]["message"], rows[name]["message"]
    for name in ("home", "train", "compare"):
        at = page(name).run()
        no_traceback(at, name)
        if name != "compare":
            assert everyone <= names_in_tables(at), (name, everyone - names_in_tables(at))


# The files a page reads of the run it shows (every page lists all runs: test_every_list_...); "dataset": the
# run's dataset. A page reruns once per run whose damage is in a file it reads. The evaluation panel is one
# function (pages/_evaluation.py) on Embedding and Compare: Compare meets every evaluation case, Embedding two.
PAGE_READS = {
    "train": ("config.json", "status.json", "metrics.jsonl"),
    "reconstructions": ("config.json", "snapshots/epoch_0002.npz", "dataset"),
    "embedding": (
        "config.json",
        "snapshots/epoch_0002.npz",
        ("evaluation.json", "summary_list"),
        ("evaluation.json", "random"),
        ("evaluation_progress.json", "field_types"),
        "dataset",
    ),
    "compare": ("evaluation.json", "evaluation_progress.json"),
}


def said(lab, page_name: str, run: str) -> str | None:
    """What the page's message about `run` must name: the damaged file, or the damaged dataset's folder."""
    if run in lab["dataset_cases"]:
        return run
    file = (lab["run_cases"].get(run) or (None,))[0]
    if file in (None, "metrics.jsonl"):
        return None  # bad metric lines are skipped
    return Path(file).name


def runs_read_by(lab, name: str) -> list[str]:
    reads = PAGE_READS[name]
    return (
        [lab["good_runs"][0]]
        + [run for run, case in lab["run_cases"].items() if case[0] in reads or case in reads]
        + ([run for run in lab["dataset_cases"]] if "dataset" in reads else [])
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train", "reconstructions", "embedding"])
def test_each_damaged_run_opens_with_a_clear_message(lab, name):
    """One session per page: each run picked in turn; its damage is one message, never a traceback."""
    at = page(name).run()
    no_traceback(at, name)
    key = "train_run" if name == "train" else "run"
    for run in runs_read_by(lab, name):
        at.session_state["selected_run"] = run
        at.run()
        no_traceback(at, f"{name} page, run {run} {lab['run_cases'].get(run) or lab['dataset_cases'].get(run)}")
        assert at.selectbox(key=key).value == run
        if said(lab, name, run):
            assert said(lab, name, run) in messages(at), (name, run, messages(at))


@pytest.mark.slow
def test_compare_evaluates_each_run_without_a_traceback(lab):
    at = page("compare").run()
    no_traceback(at, "compare")
    for ms in at.multiselect:  # widen every filter: every run in the table
        ms.set_value(ms.options)
    at.run()
    shown = at.selectbox(key="compare_eval_run").options
    for run in runs_read_by(lab, "compare"):
        assert run in shown, run
        at.selectbox(key="compare_eval_run").set_value(run).run()
        no_traceback(at, f"compare, run {run}")
        if said(lab, "compare", run):
            assert said(lab, "compare", run) in messages(at), (run, messages(at))


@pytest.mark.slow
def test_each_damaged_sweep_is_listed_and_opens_with_a_clear_message(lab):
    from vae.sweeps import sweep

    listed = {s["name"]: s for s in sweep.list_sweeps()}
    assert set(listed) == set(lab["good_sweeps"]) | set(lab["sweep_cases"])
    for name, (file, kind) in lab["sweep_cases"].items():
        if file == "sweep.json":
            assert listed[name]["state"] == "damaged" and "sweep.json" in listed[name]["message"], listed[name]
    at = page("sweep").run()
    no_traceback(at, "sweep page")
    for name in [*lab["good_sweeps"], *lab["sweep_cases"]]:
        at.session_state["sweep_selected"] = name
        at.run()
        no_traceback(at, f"sweep page, sweep {name} {lab['sweep_cases'].get(name)}")


@pytest.mark.slow
def test_the_dataset_page_lists_every_dataset_and_its_delete_guard_opens(lab):
    at = page("dataset").run()
    no_traceback(at, "dataset page")
    for name in ["good", *lab["dataset_cases"]]:
        at.session_state["_confirm_delete"] = "dataset:" + name
        at.run()
        no_traceback(at, f"dataset page, delete {name}")
        assert any("Delete" in str(m.value) for m in at.warning), name  # the confirmation opened


# ---------------------------------------------------------------- the CLI, generated from its parser

READERS = {"runs", "train", "evaluate", "sweep"}  # commands that read runs, datasets or sweeps
WRITERS_ONLY = {
    "generate",
    "import",
    "import-benchmark",
    "standby",
}  # make new folders from other input; read none of these


def cli_calls(lab) -> list[list[str]]:
    from vae.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == READERS | WRITERS_ONLY, "a new command: say whether it reads runs (and test it)"
    home = lab["home"]
    calls = [["runs", "--root", str(home / "runs")]]
    for name, (file, _) in {**lab["run_cases"], **lab["dataset_cases"]}.items():
        if file in ("config.json", *DATASET_WRONG):  # reads that stop before TensorFlow: the folder's own check
            calls.append(["evaluate", str(home / "runs" / name)])
            calls.append(["train", "--run-dir", str(home / "runs" / name)])
    for name in lab["dataset_cases"]:
        calls.append(["train", "--data", str(home / "datasets" / name), "--out", str(home / "new" / name)])
    for name, (file, _) in lab["sweep_cases"].items():
        calls.append(["sweep", "--report", str(home / "sweeps" / name)])
        if file == "sweep.json":
            calls.append(["sweep", "--resume", str(home / "sweeps" / name)])
    assert {c[0] for c in calls} == READERS
    return calls


@pytest.mark.slow
def test_every_reading_command_gives_one_line_on_each_damaged_folder(lab, capsys):
    from vae.cli import main

    for argv in cli_calls(lab):
        code = main(argv)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, (argv, err)
        if argv[0] == "runs":
            assert code == 0
            for name in lab["run_cases"]:
                assert name in out
            continue
        assert code == 2 or (argv[0] == "sweep" and argv[1] == "--report" and code == 0), (argv, code, out, err)
        if code == 2:
            assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)


@pytest.mark.parametrize("kind", ["empty", "random", "truncated", "folder"])
def test_a_damaged_model_file_is_called_damaged_not_missing(tmp_path, kind):
    """Keras reports any file that is not a .keras archive as "File not found"; the lab says what it is."""
    import zipfile

    from vae.base.errors import UserError
    from vae.base.fileio import check_model_file

    path = tmp_path / "run" / "model.keras"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}" * 1000)
    check_model_file(path)  # a whole archive passes
    damage(path, kind, {})
    with pytest.raises(UserError, match="folder" if kind == "folder" else "damaged: not a Keras model archive"):
        check_model_file(path)


@pytest.mark.parametrize("kind", GENERIC + ("null", "list", "bad_entries", "old_version"))
def test_a_damaged_run_index_is_rebuilt(tmp_workspace, fake_run, kind):
    """runs/.index.json is a cache: damaged, hand-edited or written by an older version, it is read again from
    the run folders (an old file's rows could hold a relative dataset path or a textual `created`)."""
    from vae.runs import run_index

    fake_run("r1")
    fake_run("r2")
    index = tmp_workspace / "runs" / run_index.INDEX_FILE
    run_index.list_runs()
    doc = json.loads(index.read_text())
    run_index._CACHE.clear()  # a new server process: reads the file
    if kind == "bad_entries":
        first, second = sorted(doc["runs"])
        doc["runs"][first] = [1]
        doc["runs"][second]["row"]["created"] = "yesterday"
        index.write_text(json.dumps(doc))
    elif kind == "old_version":
        for entry in doc["runs"].values():
            entry["row"]["config"]["dataset"] = "relative/elsewhere"
        index.write_text(json.dumps({**doc, "version": 1}))
    else:
        index.write_text(json.dumps(doc))
        damage(index, kind, {})
    rows = run_index.list_runs()
    assert sorted(r["name"] for r in rows) == ["r1", "r2"]
    assert all(Path(r["config"]["dataset"]).is_absolute() and isinstance(r["created"], float) for r in rows)


def test_metric_lines_keep_their_words_and_lose_only_wrong_values():
    """A metrics line's reason and codes stay (Compare shows them); a number written as text is dropped, and a
    line whose epoch is not a whole number is skipped."""
    from vae.runs.folder import metrics_row

    row = metrics_row(
        {
            "kind": "epoch",
            "epoch": 2,
            "step": 5,
            "loss": 0.5,
            "val_loss": "abc",
            "kl": [1],
            "pca_alignment": None,
            "pca_alignment_reason": "PC1 and PC2 are tied",
            "alignment_codes": "train",
        }
    )
    assert row == {
        "kind": "epoch",
        "epoch": 2,
        "step": 5,
        "loss": 0.5,
        "pca_alignment": None,
        "pca_alignment_reason": "PC1 and PC2 are tied",
        "alignment_codes": "train",
    }
    assert metrics_row({"kind": "epoch", "epoch": "two"}) is None and metrics_row([1]) is None
