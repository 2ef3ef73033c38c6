"""Compare: comparable runs side by side (filters, convergence flags), any column against a setting.

Which runs are comparable, and which have converged, is decided by vae.views.compare; this page lays it out.
"""

import pandas as pd
import streamlit as st

from pages._evaluation import evaluation_panel
from pages._ui import copy_settings_button, ensure_app_navigation, show_table, shown_table
from vae.runs import run_index
from vae.sweeps import export
from vae.views import compare
from vae.views.labels import RUN_COLUMNS
from vae.views.plots import scatter_against

ensure_app_navigation()

st.title("Compare runs")
all_runs = run_index.list_runs()
if not all_runs:
    st.info("No runs yet: start some on the Train page.")
    st.stop()
by_name = {r["name"]: r for r in all_runs}
rows = [compare.run_row(r) for r in all_runs]
against, group = compare.default_group(rows)
default_of = {k: compare.options(group or rows, k) for k in compare.FILTERS}

st.caption(
    "Shown by default: the largest group of finished runs whose settings are equal except "
    f"**{against or 'one'}** (replicates by seed included). Widen the filters to see the others."
)
# Two rows of filters, so no chip (a long dataset name, "finished") is clipped at 1280 px.
c = [*st.columns([2, 1]), *st.columns(3)]
chosen = {
    k: c[i].multiselect(k.capitalize(), compare.options(rows, k), default=default_of[k], key=f"filter_{k}")
    for i, k in enumerate(compare.FILTERS)
}
shown = compare.filter_rows(rows, **chosen)
if not shown:
    st.warning("No run matches these filters.")
    st.stop()

flags = compare.flag_counts(shown)
notes = []
if flags["still falling"]:
    notes.append(
        f"{flags['still falling']} run(s) have **not converged**: their validation loss would still fall "
        f"by more than {compare.TOLERANCE:.0%} over {compare.WINDOW} more epochs (straight line through the "
        f"last {compare.WINDOW + 1})"
    )
if flags["too short to tell"]:
    notes.append(
        f"{flags['too short to tell']} finished run(s) have fewer than {compare.WINDOW + 1} epochs: "
        "too short to tell whether they converged"
    )
if flags["stopped"]:
    notes.append(f"{flags['stopped']} run(s) were **stopped** or failed before their last epoch")
if notes:
    st.warning("  \n".join(notes), icon=":material/warning:")
varying = compare.varying_settings(shown)
if len(varying) > 1:
    st.warning(
        f"These runs differ in more than one setting ({', '.join(varying)}): a trend along one of them "
        "may be another's.",
        icon=":material/warning:",
    )

table = pd.DataFrame(shown)
first = [
    "name",
    "method",
    "seed",
    "beta",
    "gamma",
    "val_loss",
    "loss",
    "val_recon",
    "factor_alignment",
    "pca_alignment",
    "pca_reason",  # why the principal axes have no alignment (one active latent...): beside the blank
    "alignment_score",
    "evaluated epoch",
    "active_units",
    "collapsed",
    "converged",
    "state",
    "epochs",
    "epochs_done",
    "arch",
]
table = table[[k for k in first if k in table] + [k for k in table if k not in first]]
st.caption(
    "factor alignment: does each ground-truth factor move the codes along its own latent axis (1 = yes, "
    "0 = at 45°); PCA alignment: the principal axes against the latent axes, empty where they are not "
    "defined (see pca_reason). Both of the training codes; 'alignment from' says whether of the evaluated "
    "best model (evaluation.json) or of the last epoch's snapshot."
)
show_table(
    shown_table(table.drop(columns=["flag"])),
    hide_index=True,
    column_config={
        **RUN_COLUMNS,
        "factor_alignment": st.column_config.NumberColumn(
            "factor alignment",
            format="%.3f",
            width="small",
            help="Factor alignment of the training codes (1: each factor on its own latent axis)",
        ),
        "active_units": st.column_config.NumberColumn(
            "active units", format="%d", width="small", help="Latents whose mean varies over the images (Var > 0.01)"
        ),
        "collapsed": st.column_config.CheckboxColumn(
            "collapsed", width="small", help="Fewer active latents than the data has factors"
        ),
        "pca_alignment": st.column_config.NumberColumn(
            "principal axes on latent axes",
            format="%.3f",
            width="small",
            help="PCA alignment of the training codes; empty where the principal axes are not defined",
        ),
        "alignment_score": st.column_config.NumberColumn(
            "alignment (old: PCA, validation codes)", format="%.3f", width="small"
        ),
        "converged": st.column_config.TextColumn("converged", width="small"),
        "epochs": st.column_config.NumberColumn("epochs", width="small"),
        "epochs_done": st.column_config.NumberColumn("done", width="small", help="Epochs completed"),
    },
)
for metric, note in sorted(compare.evaluation_notes([by_name[r["name"]] for r in shown]).items()):
    st.caption(f"**{metric}**: {note}")

settings = [k for k in compare.SETTINGS if k in table] + ["seed", "state", "converged"]
numeric = [k for k in table.columns if k not in settings + ["epochs_done"] and pd.api.types.is_numeric_dtype(table[k])]
if numeric:
    c = st.columns(4)
    head = next((k for k in ("factor_alignment", "pca_alignment", "alignment_score") if k in numeric), numeric[0])
    y = c[0].selectbox("Column", numeric, index=numeric.index(head))
    candidates = [k for k in compare.SETTINGS if k in table]
    x = c[1].selectbox(
        "Against",
        candidates,
        index=candidates.index(against) if against in candidates else 0,
        help="Defaults to the setting that varies among the runs shown",
    )
    colour = c[2].selectbox("Colour by", ["none", *settings], index=0)
    facet = c[3].selectbox("Facet by", ["none", *settings], index=0, help="One panel per value")
    band = compare.chance_band([by_name[n] for n in table["name"]], y)
    figure = scatter_against(
        table.to_dict("records"),
        x,
        y,
        None if colour == "none" else colour,
        log_x=x in ("beta", "gamma", "lr"),
        facet=None if facet == "none" else facet,
        symbol="flag",
        chance=band,
    )
    st.plotly_chart(figure, key="compare_scatter")
    if band:
        st.caption("Grey band: chance, the measure over random rotations of the runs' codes (mean and 95% band).")
    diffs = compare.differences(table.to_dict("records"), x, y)
    if diffs:
        st.markdown(
            f"**{y}: each {x} against the smallest**, by the Sweeps page's test (paired t on per-seed "
            "differences where the seeds match, else Welch; p adjusted by Holm over these rows)."
        )
        show_table(pd.DataFrame(diffs), hide_index=True)
    shown_paths = [by_name[n]["path"] for n in table["name"]]
    st.download_button(
        "Export this view (zip)",
        file_name="compare-export.zip",
        mime="application/zip",
        data=lambda: export.bundle(table.to_dict("records"), shown_paths, {f"{y}_vs_{x}": figure}),
        icon=":material/download:",
        key="compare_export",
        help="The table shown (results.csv), every shown run's config.json, this figure (SVG and PNG "
        "for a paper, plotly JSON and an offline HTML page) and the versions of "
        "the lab and its packages",
    )

st.divider()
pick = st.selectbox("Run to evaluate", list(table["name"]), key="compare_eval_run")
copy_settings_button(by_name[pick], key="compare")
evaluation_panel(by_name[pick], key="compare")
