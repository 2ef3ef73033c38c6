"""Sweep: build a grid of settings x seeds, start and stop it, watch it, and read the answer over seeds.

The sweep runs in its own driver process (`python -m vae sweep --resume`, on Ray); this page only
writes the plan, starts that process and reads the sweep folder. Never ray.init here.
"""
import math
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import ensure_app_navigation, user_errors
from vae.base.paths import datasets_root
from vae.data import datasets
from vae.runs.config import TrainConfig
from vae.sweeps import sweep, sweep_report
from vae.sweeps.sweep_plots import distribution_figure

ensure_app_navigation()
ss = st.session_state

st.title("Sweeps")
st.caption("Every answer as a distribution over seeds: one run per setting × seed, trained as Ray tasks.")

sets = datasets.list_datasets(datasets_root()) if datasets_root().exists() else []
with st.expander("New sweep", expanded=not sweep.list_sweeps()):
    if not sets:
        st.info("No dataset yet: generate one on the Dataset page.")
    else:
        by_name = {d["name"]: d for d in sets}
        c = st.columns([2, 2, 1, 1])
        dataset = c[0].selectbox("Dataset", list(by_name), key="sweep_dataset")
        name = c[1].text_input("Sweep name", value=f"{dataset}-sweep", key="sweep_name")
        seeds = c[2].number_input("Seeds", 1, 100, 3, key="sweep_seeds")
        epochs = c[3].number_input("Epochs", 1, 10_000, TrainConfig().epochs, key="sweep_epochs")
        keys = st.multiselect("Swept settings", sweep.sweepable(), default=["gamma"], key="sweep_keys")
        grid_text = {k: st.text_input(f"{k} values (comma-separated)", value="0,1e-4,1e-3" if k == "gamma" else
                                      str(getattr(TrainConfig(), k)), key=f"sweep_values_{k}") for k in keys}
        with user_errors():
            grid = sweep.parse_grid([f"{k}={v}" for k, v in grid_text.items()])
            n_runs = int(seeds) * (1 if not grid else math.prod(len(v) for v in grid.values()))
            st.write(f"**{n_runs} runs**: " + " × ".join([f"{len(v)} {k}" for k, v in grid.items()] +
                                                         [f"{int(seeds)} seeds"]))
            if st.button("Start sweep", type="primary", icon=":material/play_arrow:", key="sweep_start"):
                out = sweep.start_sweep(by_name[dataset]["path"], grid, int(seeds),
                                        {"epochs": int(epochs), "image_size": by_name[dataset]["image_size"]},
                                        name)
                ss["sweep_selected"] = out.name
                st.rerun()

all_sweeps = sweep.list_sweeps()
if not all_sweeps:
    st.info("No sweep yet: build one above, or run `python -m vae sweep --data ... --out sweeps/NAME --grid ...`.")
    st.stop()
names = [s["name"] for s in all_sweeps]
if ss.get("sweep_selected") not in names:
    ss["sweep_selected"] = names[0]
chosen = st.selectbox("Sweep", names, key="sweep_selected",
                      format_func=lambda n: f"{n}  ({all_sweeps[names.index(n)]['state']})")
sweep_dir = Path(all_sweeps[names.index(chosen)]["path"])


@st.fragment(run_every=2.0)
def watch() -> None:
    doc, status = sweep.read_sweep(sweep_dir), sweep.sweep_state(sweep_dir)
    rows = sweep.result_rows(sweep_dir, doc, status)
    w = sweep.watch_summary(rows, status)
    c = st.columns(6)
    c[0].metric("State", status.get("state", "?"))
    c[1].metric("Done", f"{w['finished']}/{w['total']}")
    c[2].metric("Running", w["running"])
    c[3].metric("Queued", w["queued"])
    c[4].metric("Failed", w["failed"])
    c[5].metric("Time left", "-" if w["eta_s"] is None else f"{w['eta_s'] / 60:.0f} min")
    st.progress(w["finished"] / max(w["total"], 1), text=status.get("message", ""))
    with user_errors():
        if status.get("state") in ("running", "stopping"):
            if st.button("Stop sweep", icon=":material/stop:", key="sweep_stop"):
                sweep.request_stop(sweep_dir)
                st.toast("Stop requested: queued runs will not start; running runs stop after their batch.")
        elif w["finished"] < w["total"] or status.get("state") != "finished":
            if st.button("Resume sweep", icon=":material/resume:", key="sweep_resume"):
                sweep.launch_driver(sweep_dir)
                st.rerun()
    table = pd.DataFrame(rows)
    table["node"] = table["node"].astype(str).str[:8]  # Ray node ids are 56 hex digits; 8 tell them apart
    st.dataframe(table, hide_index=True, height=240)
    seen = ss.setdefault("_sweep_seen", {})
    if seen.get(str(sweep_dir)) not in (None, w["finished"]):
        seen[str(sweep_dir)] = w["finished"]
        st.rerun()  # a run finished: redraw the answer below
    seen[str(sweep_dir)] = w["finished"]


watch()

doc = sweep.read_sweep(sweep_dir)
rows = sweep_report.finished(sweep.result_rows(sweep_dir, doc))
st.subheader("The answer")
metrics = sweep_report.metric_columns(rows)
grid = doc.get("grid") or {}
if not rows or not metrics:
    st.info("No finished run yet: the answer appears as runs finish.")
    st.stop()
keys = list(grid) or ["seed"]
c = st.columns(3)
metric = c[0].selectbox("Metric", metrics, format_func=sweep_report.label, key="sweep_metric")
x = c[1].selectbox("Against", keys, key="sweep_x")
others = [k for k in keys if k != x]
colour = c[2].selectbox("Colour", ["none", *others], index=1 if "method" in others else 0, key="sweep_colour")
# The statistical answer, numbers first (vae.sweeps.sweep_report.answer; vae.measures.stats.compare_settings).
warning = sweep_report.few_seeds_warning(rows, keys)
if warning:
    st.warning(warning, icon=":material/warning:")
(answer,) = sweep_report.answer(rows, grid, [metric])
parts = sweep_report.answer_lines(answer, bold="**")
st.markdown(f"**{answer['label']}**: mean [95% t interval] over seeds, and n seeds\n\n"
            + "\n".join("- " + line for line in parts["numbers"]))
if answer["comparisons"]:
    st.markdown(f"**Does {answer['base_key']} help?** {sweep_report.family_words(answer)}\n\n"
                + "\n".join("- " + line for line in parts["verdicts"]))
    st.markdown("**What these seeds can detect**\n\n" + "\n".join("- " + line for line in parts["power"]))
band = sweep_report.chance_band(rows, metric)
event = st.plotly_chart(distribution_figure(rows, x, metric, None if colour == "none" else colour, doc.get("name", ""),
                                            chance=band),
                        on_select="rerun", selection_mode="points", key="sweep_chart")
st.caption("Each dot is one run (one seed); the diamond is the mean with its 95% t interval. "
           + ("The grey band is chance: the measure over random rotations of the runs' codes (mean and 95% band). "
              if band else "") + "Click a dot to open its run on the Embedding page.")
points = (event or {}).get("selection", {}).get("points", []) if event else []
if points and points[0].get("customdata"):
    ss["selected_run"] = f"{sweep_dir.name}/{points[0]['customdata'][0]}"
    st.switch_page("pages/embedding.py")

if grid:
    table = sweep_report.answer_table(sweep_report.answer(rows, grid), keys)
    st.markdown("**Every metric**: each against the baseline (Holm over the comparisons of one metric).")
    st.dataframe(pd.DataFrame(table), hide_index=True)
    st.markdown("**Seed or setting?** The share of the spread between settings vs between seeds of one setting, "
                "and how stable the settings' ranking is across seeds (Kendall's W: 1 = every seed ranks alike).")
    st.dataframe(pd.DataFrame([{"metric": sweep_report.label(m), **sweep_report.variance_and_ranking(rows, keys, m)}
                               for m in metrics]), hide_index=True)
corr = sweep_report.unsupervised_vs_supervised(rows, keys)
if corr:
    st.markdown("**Do the unsupervised numbers predict the supervised ones?** Spearman rank correlation **within "
                "settings** (ranks taken within each setting, then pooled), so the swept setting, which moves both, "
                "does not make it; the pooled correlation across all runs is shown beside it, confounded by the setting.")
    st.dataframe(pd.DataFrame(corr), hide_index=True)
