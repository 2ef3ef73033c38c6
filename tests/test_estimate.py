"""The Train page's duration estimate before Start: measured on this machine when it can be, else a default."""

from __future__ import annotations

import pytest

from vae.views import estimate


def cfg(**kw):
    return {"arch": "seed", "batch_size": 8, "image_size": 64, "precision": "mixed_bfloat16", "epochs": 10, **kw}


def earlier(seconds, epochs, steps, **kw):
    return {"config": cfg(**kw), "status": {"steps_per_epoch": steps}, "final": {"time": seconds, "epoch": epochs}}


def test_an_earlier_run_with_the_same_network_and_batch_sets_the_pace():
    # 2 epochs of 100 steps of 8 images in 160 s: 0.1 s per image; the new run: 10 epochs of 50 steps
    out = estimate.estimate_duration(cfg(), n_train=400, n_val=100, earlier_runs=[earlier(160.0, 2, 100)])
    assert out["source"] == "measured" and out["runs"] == 1
    assert out["per_epoch"] == pytest.approx(0.1 * 400) and out["seconds"] == pytest.approx(400)


def test_the_median_of_several_runs_is_used_and_other_settings_are_ignored():
    runs = [
        earlier(80.0, 1, 100),
        earlier(160.0, 1, 100),
        earlier(800.0, 1, 100),  # 0.1, 0.2, 1.0 s/image
        earlier(1.0, 1, 100, arch="burgess"),
        earlier(1.0, 1, 100, batch_size=128),
    ]
    out = estimate.estimate_duration(cfg(epochs=1), n_train=800, n_val=0, earlier_runs=runs)
    assert out["runs"] == 3 and out["seconds"] == pytest.approx(0.2 * 800)


def test_a_run_without_timing_is_skipped_and_the_default_is_used():
    runs = [{"config": cfg(), "status": {}, "final": {}}]
    out = estimate.estimate_duration(cfg(epochs=2), n_train=650, n_val=195, earlier_runs=runs)
    assert out["source"] == "default" and out["runs"] == 0
    per_epoch = (82 * 8 + 195 / 3) / 65.0 + 1.0  # 82 batches of 8, validation at a third of the cost
    assert out["seconds"] == pytest.approx(2 * per_epoch)


def test_the_default_scales_with_the_image_area_and_knows_the_fast_network():
    small = estimate.estimate_duration(cfg(image_size=32), 1000, 0)["per_epoch"]
    large = estimate.estimate_duration(cfg(image_size=64), 1000, 0)["per_epoch"]
    assert (large - 1.0) == pytest.approx(4 * (small - 1.0))
    fast = estimate.estimate_duration(cfg(arch="burgess", batch_size=128, epochs=1), 1000, 0)["seconds"]
    assert fast == pytest.approx(8 * 128 / 1400.0 + 1.0)  # 8 batches of 128 at the burgess default speed
