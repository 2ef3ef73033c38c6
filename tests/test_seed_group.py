"""Several seeds as one grouped model (vae.model.seed_group, vae.training.grouped): a grouped step is K
separate steps, each seed starts from its own run's weights and sees its own run's batches."""

import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from vae.base.errors import UserError
from vae.model.seed_group import member_logs
from vae.runs.config import TrainConfig
from tests.backend_sections import SECTIONS, run_section, uses_section
from vae.training import grouped

ROOT = Path(__file__).resolve().parent.parent


def _batches(k, n=16, size=32, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, k, size, size), np.uint8)
    for i in range(n):
        for j in range(k):
            r, c = rng.integers(0, size - 12, 2)
            x[i, j, r : r + 12, c : c + 12] = 255
    return x


def _cfgs(seeds, **kw):
    return [
        TrainConfig(
            dataset="x", arch="burgess", image_size=32, batch_size=16, lr=3e-3, precision="float32", seed=s, **kw
        )
        for s in seeds
    ]


def _weights(model):
    return [np.asarray(v) for v in model.trainable_variables]


@pytest.mark.slow  # builds and traces three Keras models: about 9 s each on the 2-core machine
@pytest.mark.parametrize("method", ["beta-vae", "annealed"])
def test_a_grouped_step_equals_separate_steps(method):
    """Same init (each seed's own), same batches -> the same weights after two steps, to float tolerance."""
    cfgs = _cfgs([3, 7], method=method)
    x = _batches(2)
    keras.mixed_precision.set_global_policy("float32")
    group = grouped.build_group(cfgs, n_train=16)
    singles = []
    for c in cfgs:
        m = grouped.build_member(c, 16)
        m.compile(optimizer=keras.optimizers.Adam(c.lr))
        singles.append(m)
    for g, s in zip(group.members, singles):  # each seed's init is its own run's
        for a, b in zip(_weights(g), _weights(s)):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(_weights(group.members[0])[0], _weights(group.members[1])[0])
    # The sampling noise is per member (its own seed generator), so compare with it switched off: z = mu.
    for m in group.members + singles:
        m.sampling.call = lambda mu, logvar=None, training=None: mu
    before = [_weights(m) for m in group.members]
    for _ in range(2):
        logs = group.train_on_batch(x, return_dict=True)
        single_logs = [s.train_on_batch(x[:, k], return_dict=True) for k, s in enumerate(singles)]
    for k, (g, s) in enumerate(zip(group.members, singles)):
        for a, b, a0 in zip(_weights(g), _weights(s), before[k]):
            assert not np.allclose(a, a0)  # the step moved the weights
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
        mine = member_logs(logs, k)
        for key in ("loss", "recon"):
            assert abs(float(mine[key]) - float(single_logs[k][key])) < 1e-4 * max(1.0, abs(float(single_logs[k][key])))
    assert abs(float(logs["loss"]) - sum(float(s["loss"]) for s in single_logs)) < 1e-3


def test_member_logs_names_a_runs_own_terms():
    logs = {"loss": 3.0, "s0/loss": 1.0, "s1/loss": 2.0, "s1/recon": 0.5, "val_s1/loss": 2.5, "val_loss": 9.0}
    assert member_logs(logs, 1) == {"loss": 2.0, "recon": 0.5, "val_loss": 2.5}
    assert member_logs(logs, 0) == {"loss": 1.0}


def test_a_group_refuses_runs_that_differ_in_more_than_the_seed():
    with pytest.raises(UserError, match="differ only in their seed; these differ in beta"):
        grouped._same_setting(
            _cfgs([0])
            + [
                TrainConfig(
                    dataset="x",
                    arch="burgess",
                    image_size=32,
                    batch_size=16,
                    lr=3e-3,
                    precision="float32",
                    seed=1,
                    beta=0.5,
                )
            ]
        )
    with pytest.raises(UserError, match="names a seed twice"):
        grouped._same_setting(_cfgs([1, 1]))


def test_each_seed_sees_its_own_runs_batches():
    """The group's member k gets, batch by batch over two epochs, the batches train_run's pipeline gives seed k."""
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the tf.data pipelines are TensorFlow's")
    import tensorflow as tf

    from vae.training.train import _fit_data

    n, b = 20, 8
    x = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    cfgs = [TrainConfig(dataset="x", image_size=32, batch_size=b, seed=s) for s in (0, 5)]
    steps = 3
    g = grouped.group_fit_data(cfgs, x, None, None, steps)["x"]
    got = [np.asarray(t[0])[:, :, 0, 0] for t in g.take(2 * steps)]  # (B, K) ids per batch
    for k, c in enumerate(cfgs):
        tf.random.set_seed(c.seed)
        own = _fit_data(c, x, None, None, steps)["x"]
        want = [np.asarray(t[0])[:, 0, 0] for t in own.take(2 * steps)]
        for a, w in zip(got, want):
            np.testing.assert_array_equal(a[:, k], w)
    assert not np.array_equal(got[0][:, 0], got[0][:, 1])  # the seeds' orders differ


@pytest.mark.slow
@uses_section("grouped_step")  # run in the session's one JAX process (tests/backend_sections.py)
def test_a_grouped_step_runs_on_the_jax_backend(request):
    assert run_section(request, "jax", "grouped_step").strip() == "ok"


SECTIONS["jax", "grouped_step"] = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    from vae.runs.config import TrainConfig
    from vae.training import grouped
    keras.mixed_precision.set_global_policy("float32")
    cfgs = [TrainConfig(dataset="x", image_size=32, batch_size=8, precision="float32", seed=s) for s in (0, 1)]
    g = grouped.build_group(cfgs, 16)
    x = np.zeros((16, 2, 32, 32), np.uint8); x[:, :, 8:20, 8:20] = 255
    first = g.evaluate(x, verbose=0, return_dict=True)
    g.fit(x, epochs=3, batch_size=8, verbose=0)
    last = g.evaluate(x, verbose=0, return_dict=True)
    assert last["s0/loss"] < first["s0/loss"] and last["s1/loss"] < first["s1/loss"], (first, last)
    print("ok")
""")


def test_plan_tasks_groups_a_settings_seeds_and_per_run_keeps_one_run_a_task():
    from vae.sweeps.engine import plan_tasks

    runs = [{"name": f"g{g}-s{s}", "settings": {"gamma": g}, "seed": s} for g in (0.0, 0.1) for s in range(7)]
    tasks = plan_tasks(runs, "grouped", 5)
    assert sorted(len(t) for t in tasks) == [3, 3, 4, 4]  # 7 seeds in groups of at most 5: 4 + 3, per setting
    for t in tasks:
        assert len({r["settings"]["gamma"] for r in t}) == 1  # a group is one setting
    assert sorted(r["name"] for t in tasks for r in t) == sorted(r["name"] for r in runs)
    assert plan_tasks(runs, "per-run") == [[r] for r in runs]
    with pytest.raises(UserError, match="engine must be one of"):
        plan_tasks(runs, "fast")


@pytest.mark.slow
def test_a_grouped_sweep_writes_the_runs_the_per_run_engine_writes(tiny_dataset, tmp_workspace):
    """Two seeds through execute_group and the same two through execute_run: the run-folder files a per-run
    run has, and the same training (each seed's per-epoch losses agree to float tolerance). The per-run twins
    are compared on their training only, so they skip the evaluation (two quick evaluations fewer)."""
    from vae.runs.folder import read_metrics
    from vae.sweeps import sweep
    from vae.sweeps.engine import execute_group, execute_run

    fixed = {"epochs": 2, "batch_size": 32, "image_size": 32, "precision": "float32"}
    a = sweep.plan_sweep(tmp_workspace / "sweeps" / "a", tiny_dataset, {}, seeds=2, fixed=fixed, evaluate="quick")
    b = sweep.plan_sweep(tmp_workspace / "sweeps" / "b", tiny_dataset, {}, seeds=2, fixed=fixed, evaluate="none")
    runs_a = [sweep.run_dir_of(a, r) for r in sweep.read_sweep(a)["runs"]]
    runs_b = [sweep.run_dir_of(b, r) for r in sweep.read_sweep(b)["runs"]]
    out = execute_group([str(r) for r in runs_a], "quick")
    assert {v["state"] for v in out.values()} == {"finished"} and {v["group"] for v in out.values()} == {2}
    for r in runs_b:
        assert execute_run(str(r), "none")["state"] == "finished"
    for ra, rb in zip(runs_a, runs_b):
        for name in (
            "config.json",
            "metrics.jsonl",
            "status.json",
            "model.keras",
            "last.keras",
            "evaluation.json",
            "latents.csv",
            "snapshots/epoch_0002.npz",
        ):
            assert (ra / name).exists(), name
        ea, eb = read_metrics(ra, "epoch"), read_metrics(rb, "epoch")
        assert [r["epoch"] for r in ea] == [1, 2]
        for x, y in zip(ea, eb):
            for key in ("loss", "val_loss", "val_recon"):
                assert abs(x[key] - y[key]) <= 1e-3 * abs(y[key]), (ra.name, key, x[key], y[key])
        assert sweep.run_done(ra, "quick")
    assert read_metrics(runs_a[0], "epoch")[-1]["val_loss"] != read_metrics(runs_a[1], "epoch")[-1]["val_loss"]


def test_results_name_the_node_of_a_run_whose_group_result_never_reached_the_driver(tiny_dataset, tmp_workspace):
    """A driver killed while a group evaluated: the group's finished runs were never recorded in the sweep's
    status; results.csv takes their node, host and time from the run's own status.json."""
    from vae.base.fileio import atomic_write_json
    from vae.sweeps import sweep

    out = sweep.plan_sweep(tmp_workspace / "sweeps" / "g", tiny_dataset, {}, seeds=2, fixed={"image_size": 32})
    runs = sweep.read_sweep(out)["runs"]
    atomic_write_json(
        sweep.run_dir_of(out, runs[0]) / "status.json",
        {"state": "finished", "pid": 1, "started": 100.0, "finished": 130.5, "node": "abc", "host": "h1"},
    )
    rows = {r["run"]: r for r in sweep.result_rows(out)}
    assert (rows[runs[0]["name"]]["node"], rows[runs[0]["name"]]["host"], rows[runs[0]["name"]]["wall_s"]) == (
        "abc",
        "h1",
        30.5,
    )
    assert rows[runs[1]["name"]]["node"] is None and rows[runs[1]["name"]]["wall_s"] is None  # not run yet
    sweep.write_status(out, {"state": "running", "runs": {runs[0]["name"]: {"node": "n2", "wall_s": 12.0}}})
    row = {r["run"]: r for r in sweep.result_rows(out)}[runs[0]["name"]]
    assert (row["node"], row["wall_s"]) == ("n2", 12.0)  # the driver's record wins where it has one
