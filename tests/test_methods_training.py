"""Every disentanglement method trains, logs its own terms, saves, reloads and resumes, on TensorFlow and on
JAX (the GPU machine's backend); FactorVAE's discriminator learns with its own optimizer on both."""

import textwrap

import pytest

from tests.backend_sections import SECTIONS, run_section, uses_section

BACKENDS = ["tensorflow", "jax"]

# (method, its parameters, reduction, beta): small values so a 32x32 run of 2 epochs stays finite.
CASES = [
    ("beta-vae", {}, "study", 0.001),
    ("annealed", {"gamma_c": 1.0, "c_max": 5.0, "c_steps": 40}, "papers", 1.0),
    ("factor-vae", {"gamma_tc": 10.0, "disc_units": 64, "disc_layers": 2}, "papers", 1.0),
    ("beta-tcvae", {"beta_tc": 6.0, "tc_estimator": "mss"}, "papers", 1.0),
    ("dip-vae-i", {"lambda_od": 10.0}, "papers", 1.0),
    ("dip-vae-ii", {"lambda_od": 10.0}, "study", 0.001),
]


# One Python process per backend runs this file's sections and those of the other backend tests
# (tests/backend_sections.py): a TensorFlow or JAX start-up is paid once per backend, not once per test.
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@uses_section("methods")  # 12 short trainings with graph builds
def test_every_method_trains_logs_its_terms_reloads_and_resumes(request, backend):
    out = run_section(request, backend, "methods")
    assert out.count("ok ") == len(CASES), out


METHODS = textwrap.dedent(f"""
        import json, math
        import keras, numpy as np
        import os
        assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
        from vae.data import datasets
        from vae.model import methods
        from vae.runs import folder
        from vae.runs.config import TrainConfig
        from vae.data.presets import preset_spec
        from vae.base.fileio import atomic_write_json, read_json
        from vae.runs.folder import write_run_config
        from vae.training.train import train_run

        # 301 draws (seed 1): 256 training images, 8 full batches of 32, so each fit compiles (JAX) or traces (TensorFlow)
        # its train step once, not twice (a last, partial batch is a new shape)
        data = datasets.write_dataset(preset_spec("seed-punctured", n=301, image_size=32, seed=1), "tiny")
        for method, params, reduction, beta in {CASES!r}:
            cfg = TrainConfig(dataset=str(data), image_size=32, epochs=1, batch_size=32, log_every=2, method=method,
                              method_params=params, reduction=reduction, beta=beta, gamma=0.001, variance="learned",
                              precision="float32")
            run = write_run_config(method, cfg.validate())
            assert train_run(run)["state"] == "finished"
            model = keras.models.load_model(run / "last.keras", safe_mode=True)
            assert model.method == method and model.reduction == reduction
            steps_1 = folder.read_metrics(run, "epoch")[-1]["global_step"]
            # Resume for a second epoch: the run continues from last.keras with the method's own state.
            doc = read_json(run / "config.json"); doc["config"]["epochs"] = 2
            atomic_write_json(run / "config.json", doc)
            assert train_run(run, resume=True)["state"] == "finished"
            rows = folder.read_metrics(run, "epoch")
            assert [r["epoch"] for r in rows] == [1, 2], rows
            for term in methods.logged_terms(method):
                assert term in rows[-1] and "val_" + term in rows[-1], (method, term)
                assert all(math.isfinite(r[term]) for r in rows), (method, term)
            batch = folder.read_metrics(run, "batch")[-1]
            assert all(t in batch for t in methods.get(method).terms), (method, batch)
            last = rows[-1]
            assert abs(last["val_loss"] - (last["val_recon"] + sum(last["val_" + t] for t in ("capacity_term", "beta_kl",
                       "tc_term", "dip") if "val_" + t in last) + last["val_gamma_entanglement"])) < 1e-3 * abs(last["val_loss"])
            model = keras.models.load_model(run / "last.keras", safe_mode=True)
            x = np.asarray(datasets.load_dataset(data).images[:4])
            assert np.isfinite(np.asarray(model(x)["recon"])).all()
            steps_2 = rows[-1]["global_step"]
            if method == "annealed":  # the step counter went on from epoch 1: C = 5 * steps / 40
                assert float(np.asarray(model.train_steps.value)) == steps_2, (model.train_steps.value, steps_2)
                assert last["val_capacity"] == min(5.0, 5.0 * steps_2 / 40)
            if method == "factor-vae":  # its own Adam took one step per batch, across the resume
                assert int(np.asarray(model.discriminator.adam.iterations.value)) == steps_2
            print("ok", method, steps_1, steps_2)
    """)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@uses_section("discriminator")
def test_factor_vae_discriminator_learns_to_tell_codes_from_permuted_codes(request, backend):
    """Codes whose first two dimensions are equal have a large total correlation: a discriminator trained
    with its own steps learns to separate them from their permutation, and its TC estimate grows."""
    assert run_section(request, backend, "discriminator").strip() == "ok"


DISCRIMINATOR = textwrap.dedent("""
        import keras, numpy as np
        from keras import ops
        from vae.model import losses
        from vae.model.networks import Discriminator
        keras.utils.set_random_seed(0)
        d = Discriminator(3, units=64, hidden_layers=2, lr=1e-3, seed=0)
        a = np.random.default_rng(0).normal(size=(256, 1)).astype("float32")
        z = np.hstack([a, a, np.random.default_rng(1).normal(size=(256, 1)).astype("float32")])
        accuracies = []
        for step in range(300):
            logits, loss, acc = d.logits_and_train(ops.convert_to_tensor(z))
            accuracies.append(float(acc))
        assert np.mean(accuracies[:5]) < 0.7, accuracies[:5]
        assert np.mean(accuracies[-20:]) > 0.85, accuracies[-20:]
        assert float(losses.factor_tc(d.logits(z))) > 1.0
        assert int(np.asarray(d.adam.iterations.value)) == 300
        print("ok")
    """)
for _backend in BACKENDS:
    SECTIONS[_backend, "methods"] = METHODS
    SECTIONS[_backend, "discriminator"] = DISCRIMINATOR
