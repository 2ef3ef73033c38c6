"""Compare: every run of a dataset in one table, and any column against β or γ."""
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import ensure_app_navigation
from vae import jobs, runs
from vae.metrics import alignment_columns
from vae.paths import runs_root
from vae.plots import scatter_against

ensure_app_navigation()

st.title("Compare runs")
all_runs = jobs.list_runs(runs_root()) if runs_root().exists() else []
if not all_runs:
    st.info("No runs yet: start some on the Train page.")
    st.stop()
by_dataset: dict[str, list] = {}
for r in all_runs:
    by_dataset.setdefault(Path(r["config"].get("dataset", "?")).name, []).append(r)
dataset = st.selectbox("Dataset", sorted(by_dataset))


def row(r: dict) -> dict:
    cfg, final = r["config"], r.get("final") or {}
    summary = (runs.read_evaluation(r["path"]) or {}).get("summary") or {}
    out = {"name": r["name"], "state": r["state"], "beta": cfg.get("beta"), "gamma": cfg.get("gamma"),
           "entanglement": cfg.get("entanglement"), "latent_dim": cfg.get("latent_dim"), "arch": cfg.get("arch"),
           "seed": cfg.get("seed"), "epochs": final.get("epoch")}
    out.update(alignment_columns(summary, final))  # the headline, before the losses: visible without scrolling
    out.update({k: final.get(k) for k in ("loss", "val_loss", "val_recon", "val_kl", "val_entanglement",
                                          "total_correlation", "active_units")})
    out.update({k: v for k, v in summary.items() if k not in out and isinstance(v, (int, float))})
    if summary.get("dci_setting"):
        out["dci setting"] = summary["dci_setting"]
    return out


def notes_of(rs: list) -> dict:
    """evaluation.json's notes (why a number carries little information), one per metric."""
    notes = {}
    for r in rs:
        notes.update((runs.read_evaluation(r["path"]) or {}).get("notes") or {})
    return notes


table = pd.DataFrame([row(r) for r in by_dataset[dataset]])
st.caption("factor_alignment: does each ground-truth factor move the codes along its own latent axis (1 = yes, "
           "0 = at 45°); pca_alignment: the principal axes against the latent axes, empty where they are not "
           "defined (see pca_reason). Both from the training codes; 'alignment from' says whether of the "
           "evaluated best model (evaluation.json) or of the last epoch's snapshot.")
st.dataframe(table, hide_index=True)
for metric, note in sorted(notes_of(by_dataset[dataset]).items()):
    st.caption(f"**{metric}**: {note}")
numeric = [c for c in table.columns if c not in ("beta", "gamma") and pd.api.types.is_numeric_dtype(table[c])]
if numeric:
    c = st.columns(3)
    head = next((k for k in ("factor_alignment", "pca_alignment") if k in numeric), numeric[0])
    y = c[0].selectbox("Column", numeric, index=numeric.index(head))
    x = c[1].radio("Against", ["beta", "gamma"], horizontal=True)
    colour = c[2].selectbox("Colour by", ["entanglement", "latent_dim", "arch", "seed", "none"])
    st.plotly_chart(scatter_against(table.to_dict("records"), x, y, None if colour == "none" else colour))
