"""Compare: every run of a dataset in one table, and any column against β or γ."""
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import ensure_app_navigation
from vae import run_index
from vae.plots import scatter_against

ensure_app_navigation()

st.title("Compare runs")
all_runs = run_index.list_runs()
if not all_runs:
    st.info("No runs yet: start some on the Train page.")
    st.stop()
by_dataset: dict[str, list] = {}
for r in all_runs:
    by_dataset.setdefault(Path(r["config"].get("dataset", "?")).name, []).append(r)
dataset = st.selectbox("Dataset", sorted(by_dataset))


def row(r: dict) -> dict:
    cfg, final = r["config"], r.get("final") or {}
    summary = r.get("evaluation") or {}  # from the run index (vae.run_index)
    alignment = summary.get("alignment_score")
    out = {"name": r["name"], "state": r["state"], "beta": cfg.get("beta"), "gamma": cfg.get("gamma"),
           "entanglement": cfg.get("entanglement"), "latent_dim": cfg.get("latent_dim"), "arch": cfg.get("arch"),
           "seed": cfg.get("seed"), "epochs": final.get("epoch")}
    out.update({k: final.get(k) for k in ("loss", "val_loss", "val_recon", "val_kl", "val_entanglement",
                                          "total_correlation", "active_units")})
    out["alignment_score"] = alignment if alignment is not None else final.get("alignment_score")
    out["alignment from"] = "evaluation.json" if alignment is not None else "last epoch"
    out.update({k: v for k, v in summary.items() if k != "alignment_score" and isinstance(v, (int, float))})
    return out


table = pd.DataFrame([row(r) for r in by_dataset[dataset]])
st.dataframe(table, hide_index=True)
numeric = [c for c in table.columns if c not in ("beta", "gamma") and pd.api.types.is_numeric_dtype(table[c])]
if numeric:
    c = st.columns(3)
    y = c[0].selectbox("Column", numeric, index=numeric.index("alignment_score") if "alignment_score" in numeric else 0)
    x = c[1].radio("Against", ["beta", "gamma"], horizontal=True)
    colour = c[2].selectbox("Colour by", ["entanglement", "latent_dim", "arch", "seed", "none"])
    st.plotly_chart(scatter_against(table.to_dict("records"), x, y, None if colour == "none" else colour))
