"""The headline alignment on Train and Compare: the factor alignment (PCA beside it) of the training
codes, named as such; old runs' `alignment_score` keeps its own name (docs/measures.md)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from vae.views.compare import alignment_columns
from vae.views.plots import analysis_curves

ROOT = Path(__file__).resolve().parent.parent


def _with_new_metrics(run: Path, values: dict) -> None:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for row in lines:
        if row["kind"] == "epoch":
            row.pop("alignment_score", None)
            row.update(values, alignment_codes="train")
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_alignment_columns_prefer_evaluation_then_last_epoch():
    final = {"factor_alignment": 0.2, "pca_alignment": 0.9, "pca_alignment_reason": ""}
    assert alignment_columns({}, final)["alignment from"] == "last epoch"
    ev = alignment_columns(
        {"factor_alignment": 0.3, "pca_alignment": None, "pca_alignment_reason": "principal axes not defined: x"}, final
    )
    assert ev["factor_alignment"] == 0.3 and ev["pca_alignment"] is None and ev["pca_reason"].endswith("x")
    old = alignment_columns({}, {"alignment_score": 0.42})
    assert old["alignment_score (old: PCA, validation codes)"] == 0.42 and old["factor_alignment"] is None


def test_train_chart_names_the_alignments_and_their_codes():
    rows = [
        {"kind": "epoch", "epoch": e, "factor_alignment": 0.1 * e, "pca_alignment": None if e == 2 else 0.9}
        for e in (1, 2, 3)
    ]
    fig = analysis_curves(rows)
    names = [t.name for t in fig.data]
    assert names == [
        "factor alignment (training codes)",
        "principal axes on latent axes (PCA alignment, training codes)",
    ]
    assert list(fig.data[1].y) == [0.9, None, 0.9]  # a gap where the principal axes are not defined
    assert "undefined" in fig.layout.title.text


def test_compare_shows_factor_alignment_with_pca_beside_it(fake_run):
    run = fake_run("new", beta=0.001)
    _with_new_metrics(run, {"factor_alignment": 0.25, "pca_alignment": 0.88, "pca_alignment_reason": ""})
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["factor_alignment"][0] == 0.25 and table["pca_alignment"][0] == 0.88
    assert table["alignment from"][0] == "last epoch"
    column = next(s for s in at.selectbox if s.label == "Column")
    assert column.value == "factor_alignment"
    assert any("training codes" in str(c.value) for c in at.caption)


def test_compare_puts_notes_and_the_dci_setting_next_to_the_numbers(fake_run):
    run = fake_run("evaluated")
    (run / "evaluation.json").write_text(
        json.dumps(
            {
                "summary": {
                    "factor_alignment": 0.5,
                    "pca_alignment": 0.7,
                    "factor_vae": 1.0,
                    "dci_disentanglement": 0.3,
                    "dci_setting": "fast",
                },
                "notes": {"factor_vae": "FactorVAE saturates near 1.0 with 2 factor(s)"},
            }
        )
    )
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60).run()
    table = at.dataframe[0].value
    assert table["dci setting"][0] == "fast" and table["factor_vae"][0] == 1.0
    assert any("FactorVAE saturates" in str(c.value) for c in at.caption)
