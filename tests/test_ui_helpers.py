"""The widgets' number and text helpers (pages/_ui.py): the β/γ slider ladder, progress text."""

import pytest

from pages import _ui


def test_weight_ladder_is_zero_then_one_two_five_up_to_ten():
    ladder = _ui.weight_ladder()
    assert ladder[:4] == [0.0, 1e-6, 2e-6, 5e-6] and ladder[-1] == 10.0
    assert 0.001 in ladder and 0.0001 in ladder and ladder == sorted(ladder)


def test_nearest_on_ladder_is_log_nearest():
    ladder = _ui.weight_ladder()
    assert _ui.nearest_on_ladder(0, ladder) == 0
    assert _ui.nearest_on_ladder(0.0011, ladder) == 0.001
    assert _ui.nearest_on_ladder(4e-5, ladder) == 5e-5
    assert _ui.nearest_on_ladder(1e9, ladder) == 10


def test_progress_summary_counts_epochs_batches_and_time_left():
    frac, text = _ui.progress_summary(
        {"state": "running", "epochs": 4, "steps_per_epoch": 10},
        {"epoch": 2, "step": 5, "images_per_s": 123.4, "time": 15.0},
    )
    assert frac == pytest.approx(1.5 / 4)
    assert "epoch 2/4" in text and "batch 5/10" in text and "123 images/s" in text and "25 s left" in text
    assert _ui.progress_summary({"state": "finished", "epochs": 4}, None)[0] == 1.0


def test_a_widget_change_that_arrives_with_a_fragment_rerun_is_ignored(monkeypatch):
    """A live view's run_every tick carries every widget's value as the browser had it: the run picker's old run,
    sent while the Start click's rerun chose the new one. Its on_change must not undo that choice; a user's change
    (a full rerun) still goes through."""
    import streamlit.runtime.scriptrunner as scriptrunner

    class Ctx:
        fragment_ids_this_run = None

    ctx = Ctx()
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda suppress_warning=False: ctx)
    calls = []
    on_change = _ui.user_change(lambda *a: calls.append(a))
    on_change("full")  # a full rerun: the user's change
    ctx.fragment_ids_this_run = ["live-view-fragment"]  # a fragment's rerun: a stale value
    on_change("tick")
    ctx.fragment_ids_this_run = []
    on_change("full again")
    assert calls == [("full",), ("full again",)]
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda suppress_warning=False: None)
    on_change("no session")  # outside a script run (a plain call): acts
    assert calls[-1] == ("no session",)
