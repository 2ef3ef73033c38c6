"""Deleting is safe: a confirmation belongs to the item it names, closes after any delete, says what
depends on the item, and a dataset that a run trains on cannot be deleted (library and page)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.base.errors import UserError
from vae.data import datasets
from vae.data import presets
from vae.jobs import deletes

ROOT = Path(__file__).resolve().parent.parent


def _small(home: Path, name: str) -> Path:
    return datasets.write_dataset(presets.preset_spec("seed-full", n=12, image_size=32), home / "datasets" / name)


@pytest.fixture
def three(tmp_workspace):
    return [_small(tmp_workspace, n) for n in ("ds-a", "ds-b", "ds-c")]


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "dataset.py"), default_timeout=60)


def _open_confirmations(at: AppTest) -> list[str]:
    return [b.key.split("::", 1)[1] for b in at.button if (b.key or "").startswith("confirm_delete::")]


def test_a_confirmation_deletes_only_the_item_it_names_and_closes(three):
    a, b, c = three
    at = _page().run()
    assert _open_confirmations(at) == []  # nothing asks before a Delete click
    at.button(key="ask_delete::dataset:ds-a").click().run()
    assert _open_confirmations(at) == ["dataset:ds-a"]
    yes = at.button(key="confirm_delete::dataset:ds-a")
    assert yes.label == "Yes, delete ds-a"
    yes.click().run()
    assert not at.exception
    assert not a.exists() and b.exists() and c.exists()
    assert _open_confirmations(at) == []  # the next row's confirmation did not open in its place
    assert any("Deleted ds-a" in s.value for s in at.success)


def test_only_one_confirmation_is_open_and_cancel_closes_it(three):
    at = _page().run()
    at.button(key="ask_delete::dataset:ds-b").click().run()
    at.button(key="ask_delete::dataset:ds-c").click().run()
    assert _open_confirmations(at) == ["dataset:ds-c"]
    at.button(key="cancel_delete::dataset:ds-c").click().run()
    assert _open_confirmations(at) == [] and all(p.exists() for p in three)


def test_the_confirmation_says_which_runs_use_the_dataset(three, fake_run):
    a = three[0]
    fake_run("r1", dataset=str(a))
    fake_run("r2", dataset=str(a))
    fake_run("other", dataset=str(three[1]))
    usage = deletes.dataset_usage(a, a.parent.parent / "runs")
    assert sorted(usage["runs"]) == ["r1", "r2"] and usage["active"] == []
    at = _page().run()
    at.button(key="ask_delete::dataset:ds-a").click().run()
    text = at.warning[0].value
    assert "Used by 2 runs" in text and "r1" in text and "r2" in text and "other" not in text
    assert "reconstructions and embedding will no longer open" in text
    at.button(key="ask_delete::dataset:ds-c").click().run()
    assert "No run uses it" in at.warning[0].value


def test_a_dataset_a_run_trains_on_cannot_be_deleted(three, fake_run):
    a = three[0]
    fake_run("live", state="running", pid=os.getpid(), done_epochs=1, epochs=5, dataset=str(a))
    with pytest.raises(UserError, match="live is training on it"):
        deletes.delete_dataset(a, a.parent, a.parent.parent / "runs")
    assert (a / "dataset.json").exists()
    at = _page().run()
    at.button(key="ask_delete::dataset:ds-a").click().run()
    assert at.button(key="confirm_delete::dataset:ds-a").disabled
    assert "live" in at.error[0].value and "Cannot delete now" in at.error[0].value
    assert a.exists()


def test_a_finished_run_does_not_block_the_delete(three, fake_run):
    a = three[0]
    fake_run("done", dataset=str(a))
    deletes.delete_dataset(a, a.parent, a.parent.parent / "runs")
    assert not a.exists() and three[1].exists()


def test_a_dead_trainer_does_not_block_the_delete(three, fake_run):
    """A run whose status says running but whose trainer is gone is failed, not active."""
    a = three[0]
    fake_run("ghost", state="running", pid=2**22 + 12345, dataset=str(a))
    deletes.delete_dataset(a, a.parent, a.parent.parent / "runs")
    assert not a.exists()
