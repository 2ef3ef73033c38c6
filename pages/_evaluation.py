"""The Evaluate button and its results, shared by the Embedding and Compare pages.

The evaluation runs as its own process (vae.jobs.evaluation_jobs); this panel starts it, polls its
progress file with a fragment, and draws evaluation.json: which latent tracks which factor.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import show_table, user_errors, writable
from vae.base.errors import UserError
from vae.jobs import evaluation_jobs
from vae.runs import folder
from vae.views.evaluation import evaluation_views
from vae.views.plots import heatmap

ACTIVE = "running"


@st.fragment(run_every=1.0)
def _progress(run_dir: str, key: str) -> None:
    status = evaluation_jobs.evaluation_state(run_dir)
    seen = st.session_state.setdefault("_evaluation_state", {})
    before, seen[key] = seen.get(key), status.get("state")
    if status.get("state") == ACTIVE:
        st.progress(
            float(status.get("fraction") or 0.0), text=f"Evaluating: {evaluation_jobs.read_progress_text(status)}"
        )
    elif status.get("state") == "failed":
        st.error(f"The last evaluation failed: {status.get('message')}", icon=":material/error:")
    if before == ACTIVE and status.get("state") != ACTIVE:
        st.rerun()  # finished (or failed): redraw the page with the new evaluation.json


def evaluation_panel(run: dict, key: str) -> None:
    """Evaluate button, live progress, then the factor-based scores of `run` (a jobs.list_runs entry)."""
    run_dir = Path(run["path"])
    st.subheader("Which latent tracks which factor")
    status = evaluation_jobs.evaluation_state(run_dir)
    try:
        evaluation = folder.read_evaluation(run_dir)
    except UserError as e:  # a damaged evaluation.json: say why, and offer Evaluate to write it again
        st.error(str(e), icon=":material/error:")
        evaluation = None
    running = status.get("state") == ACTIVE
    c = st.columns([1.2, 1.2, 3])
    fast = writable() and c[1].checkbox(
        "Fast DCI",
        key=f"{key}_fast_dci",
        help="DCI with 20 boosting stages on up to 2,000 points: minutes faster, labelled 'fast' and "
        "not comparable with published DCI. Off: disentanglement_lib's reference settings.",
    )
    if writable() and c[0].button(
        "Evaluate again" if evaluation else "Evaluate",
        key=f"{key}_evaluate",
        disabled=running,
        icon=":material/analytics:",
        help="Runs `python -m vae evaluate` on this run's best model in its own process "
        "(a minute or more on 2 cores; you can leave the page meanwhile): MIG, DCI, SAP, "
        "modularity, FactorVAE and BetaVAE scores.",
    ):
        with user_errors():
            evaluation_jobs.start_evaluation(run_dir, fast=fast)
            st.session_state.setdefault("_evaluation_state", {})[key] = ACTIVE
            st.rerun()  # draw the button disabled and the progress bar at once
    c[2].caption(
        f"Run **{run['name']}**. Factor-based scores of its best model (model.keras): the metrics are "
        "fitted on the training split's latent means and tested on the validation split's."
    )
    _progress(str(run_dir), key)
    views = evaluation_views(evaluation)
    if not views:
        if not running:
            st.info(
                "Not evaluated yet: press Evaluate." if writable() else "Not evaluated yet.", icon=":material/info:"
            )
        return
    if views["summary"]:
        show_table(pd.DataFrame([views["summary"]]), hide_index=True)
    if "factor_alignment" in views:
        fa = views["factor_alignment"]
        left, right = st.columns(2)
        score = f" (score {fa['score']:.3f})" if isinstance(fa["score"], (int, float)) else ""
        left.markdown(
            f"**Factor alignment{score}**: the latent each factor is assigned to, and how closely the "
            "codes move along it when the factor changes"
        )
        left.dataframe(pd.DataFrame(fa["rows"]), hide_index=True)
        left.caption(f"Settings: {fa['settings']}")
        right.plotly_chart(
            heatmap(
                fa["abs_cos"],
                fa["factors"],
                "|cos(factor direction, latent axis)|",
                col_labels=fa["latents"],
                zmid=None,
                colorscale="Blues",
                zmin=0,
                zmax=1,
            ),
            key=f"{key}_factor_alignment",
        )
    for title, rows in views["tables"].items():
        st.markdown(f"**{title.replace('_', ' ').capitalize()}**")
        show_table(pd.DataFrame(rows), hide_index=True)
        if title in views["settings"]:
            st.caption(f"Settings: {views['settings'][title]}")
    left, right = st.columns(2)
    if "mig_per_factor" in views:
        left.markdown(
            "**MIG per factor**: the gap in mutual information between the two latents most "
            "informative about the factor, over the factor's entropy (1: one latent alone tracks it)"
        )
        left.dataframe(pd.DataFrame(views["mig_per_factor"]), hide_index=True)
        left.caption(f"Settings: {views['mig_settings']}")
    if "dci_importance" in views:
        d = views["dci_importance"]
        scores = " · ".join(f"{k} {v:.3f}" for k, v in views["dci_scores"].items())
        right.plotly_chart(
            heatmap(
                d["matrix"],
                d["latents"],
                "DCI importance: latent (rows) × factor (columns)",
                col_labels=d["factors"],
                zmid=None,
                colorscale="Blues",
                zmin=0,
            ),
            key=f"{key}_dci",
        )
        right.caption(f"{scores}. Settings: {views['dci_settings']}")
