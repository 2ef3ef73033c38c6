"""Each list of names is defined once (vae.base.registry, vae.runs.folder.STATE_INFO): what is added there reaches the
config validation, the CLI and the Train page without touching them."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.base import registry
from vae.base.errors import UserError
from vae.cli import build_parser
from vae.runs import folder
from vae.runs.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def toy_entries(monkeypatch):
    """A toy architecture and a toy entanglement term, registered for one test."""
    monkeypatch.setitem(registry.ARCHITECTURES, "toy-net", registry.Architecture(32, "a toy network for the test"))
    monkeypatch.setitem(
        registry.ENTANGLEMENT_TERMS,
        "toy-ent",
        registry.EntanglementTerm("ent_toy", r"\mathrm{toy}", "a toy term for the test"),
    )


def _train_help() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices["train"].format_help().split())  # argparse wraps long help lines


def test_a_registered_architecture_and_entanglement_term_appear_in_the_cli_help_and_choices(toy_entries):
    text = _train_help()
    assert "toy-net" in text and "a toy network for the test" in text
    assert "toy-ent" in text and "a toy term for the test" in text
    args = build_parser().parse_args(["train", "--arch", "toy-net", "--entanglement", "toy-ent"])
    assert (args.arch, args.entanglement) == ("toy-net", "toy-ent")


def test_without_the_toy_entries_the_cli_refuses_them():
    assert "toy-net" not in _train_help()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--arch", "toy-net"])


def test_a_registered_architecture_and_entanglement_term_appear_on_the_train_page(toy_entries, tiny_dataset):
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    assert not at.exception
    assert "toy-net" in at.selectbox(key="arch").options
    assert "toy-ent" in at.selectbox(key="entanglement").options
    at.selectbox(key="entanglement").set_value("toy-ent").run()
    assert any(r"\mathrm{toy}" in el.value for el in at.get("latex"))  # the loss formula reads the registry too


def test_config_validation_reads_the_registry_and_its_image_size_rule(toy_entries):
    TrainConfig(dataset="d", arch="toy-net", image_size=64, entanglement="toy-ent").validate()
    with pytest.raises(UserError, match="multiple of 32 for the toy-net network"):
        TrainConfig(dataset="d", arch="toy-net", image_size=48).validate()
    with pytest.raises(UserError, match="arch must be one of burgess, seed, toy-net"):
        TrainConfig(dataset="d", arch="nope").validate()


def test_every_registered_entry_has_its_implementation():
    """The implementing modules name the same entries as the registry (one side cannot be forgotten)."""
    pytest.importorskip("keras")
    import numpy as np

    from vae.model import losses
    from vae.model import networks

    assert set(networks.NETWORKS) == set(registry.ARCHITECTURES)
    mu = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    terms = losses.vae_loss_terms(
        np.zeros((16, 8, 8, 1), "float32"), np.zeros((16, 8, 8, 1), "float32"), mu, beta=1.0, gamma=1.0
    )
    assert set(terms) == set(registry.logged_terms())
    for name in registry.ENTANGLEMENT_TERMS:
        float(losses.entanglement(mu, name))


def test_run_states_are_one_table_read_by_the_rules():
    assert folder.ACTIVE == ("queued", "running")
    assert folder.ERRORS == ("failed", "diverged") and folder.RESUMABLE == ("stopped", "failed")
    assert set(folder.STATES) == {
        "waiting",
        "queued",
        "running",
        "finished",
        "stopped",
        "failed",
        "diverged",
    }  # docs/formats.md
    assert folder.ENDED == ("finished", "stopped", "failed", "diverged")  # a run in the queue has not ended
