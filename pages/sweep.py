"""Sweep: build a grid of settings x seeds, start and stop it, watch it, and read the answer over seeds.

The sweep runs in its own driver process (`python -m vae sweep --resume`, on Ray); this page only
writes the plan, starts that process and reads the sweep folder. Never ray.init here.
"""

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import ensure_app_navigation, format_duration, show_table, shown_table, user_errors, writable
from vae.base.paths import datasets_root
from vae.data import datasets
from vae.runs.config import TrainConfig
from vae.runs import run_index
from vae.sweeps import export, sweep, report, review
from vae.sweeps.plots import distribution_figure

ensure_app_navigation()
ss = st.session_state

st.title("Sweeps")
st.caption("Every answer as a distribution over seeds: one run per setting × seed, trained as Ray tasks.")

sets = [
    d for d in (datasets.list_datasets(datasets_root()) if datasets_root().exists() else []) if not d.get("error")
]  # a damaged dataset cannot be swept (the Dataset page says why)
with st.expander("New sweep", expanded=not sweep.list_sweeps()) if writable() else st.container():
    if not writable():
        st.caption("Read-only viewer: sweeps can be watched, not started, stopped or resumed.")
    elif not sets:
        st.info("No dataset yet: generate one on the Dataset page.")
    else:
        by_name = {d["name"]: d for d in sets}
        c = st.columns([2, 2, 1, 1])
        dataset = c[0].selectbox(
            "Dataset", list(by_name), key="sweep_dataset", help="Every run of the sweep trains on this dataset"
        )
        name = c[1].text_input(
            "Sweep name",
            value=f"{dataset}-sweep",
            key="sweep_name",
            help="The folder under sweeps/: letters, digits, '.', '_' or '-'",
        )
        seeds = c[2].number_input(
            "Seeds",
            1,
            100,
            3,
            key="sweep_seeds",
            help="Runs per setting, seeds 0..N-1: the spread over seeds is the answer's error bar",
        )
        epochs = c[3].number_input(
            "Epochs", 1, 10_000, TrainConfig().epochs, key="sweep_epochs", help="Epochs of every run"
        )
        keys = st.multiselect(
            "Swept settings",
            sweep.sweepable(),
            default=["gamma"],
            key="sweep_keys",
            help="The settings the grid varies; every other setting is fixed (listed below)",
        )
        grid_text = {
            k: st.text_input(
                f"{k} values (comma-separated)",
                value="0,1e-4,1e-3" if k == "gamma" else str(getattr(TrainConfig(), k)),
                key=f"sweep_values_{k}",
                help="One run per value (× seeds); numbers like 1e-3 are fine",
            )
            for k in keys
        }
        with user_errors():
            grid = sweep.parse_grid([f"{k}={v}" for k, v in grid_text.items()])
            n_runs = int(seeds) * (1 if not grid else math.prod(len(v) for v in grid.values()))
            st.write(
                f"**{n_runs} runs**: "
                + " × ".join([f"{len(v)} {k}" for k, v in grid.items()] + [f"{int(seeds)} seeds"])
            )
            plan_fixed = {"epochs": int(epochs), "image_size": by_name[dataset]["image_size"]}
            shared = review.fixed_settings(plan_fixed, grid)
            st.caption("Fixed in every run: " + ", ".join(f"{k} = {review.fmt_setting(v)}" for k, v in shared.items()))
            counts = by_name[dataset].get("counts") or {}
            guess = review.sweep_estimate(
                {**TrainConfig().to_dict(), **plan_fixed},
                n_runs,
                review.default_workers(),
                counts.get("train", 0),
                counts.get("validation", 0),
                run_index.list_runs(),
            )
            st.caption(
                f"Estimated duration: **about {format_duration(guess['seconds'])}** ({n_runs} runs of about "
                f"{format_duration(guess['per_run'])}, {guess['workers']} at a time; "
                + (
                    f"measured by {guess['runs']} earlier run(s) with these settings)"
                    if guess["source"] == "measured"
                    else "a default speed: no earlier run with these settings here)"
                )
                + "; evaluation adds about a minute per run."
            )
            if writable() and st.button("Start sweep", type="primary", icon=":material/play_arrow:", key="sweep_start"):
                out = sweep.start_sweep(
                    by_name[dataset]["path"],
                    grid,
                    int(seeds),
                    {"epochs": int(epochs), "image_size": by_name[dataset]["image_size"]},
                    name,
                )
                ss["sweep_selected"] = out.name
                st.rerun()

all_sweeps = sweep.list_sweeps()
if not all_sweeps:
    st.info("No sweep yet: build one above, or run `python -m vae sweep --data ... --out sweeps/NAME --grid ...`.")
    st.stop()
names = [s["name"] for s in all_sweeps]
if ss.get("sweep_selected") not in names:
    ss["sweep_selected"] = names[0]
chosen = st.selectbox(
    "Sweep", names, key="sweep_selected", format_func=lambda n: f"{n}  ({all_sweeps[names.index(n)]['state']})"
)
sweep_dir = Path(all_sweeps[names.index(chosen)]["path"])
if all_sweeps[names.index(chosen)]["state"] == sweep.DAMAGED:
    st.error(all_sweeps[names.index(chosen)]["message"], icon=":material/error:")
    st.stop()


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
        if not writable():
            pass  # a read-only viewer watches; it cannot start, stop or resume
        elif status.get("state") in ("running", "stopping"):
            if st.button("Stop sweep", icon=":material/stop:", key="sweep_stop"):
                sweep.request_stop(sweep_dir)
                st.toast("Stop requested: queued runs will not start; running runs stop after their batch.")
        elif w["finished"] < w["total"] or status.get("state") != "finished":
            if st.button("Resume sweep", icon=":material/resume:", key="sweep_resume"):
                sweep.launch_driver(sweep_dir)
                st.rerun()
    table = pd.DataFrame(rows)
    table["node"] = table["node"].map(lambda v: str(v)[:8] if v else None)  # Ray node ids: 56 hex digits; 8 do
    show_table(shown_table(table), hide_index=True, height=240)
    seen = ss.setdefault("_sweep_seen", {})
    if seen.get(str(sweep_dir)) not in (None, w["finished"]):
        seen[str(sweep_dir)] = w["finished"]
        st.rerun()  # a run finished: redraw the answer below
    seen[str(sweep_dir)] = w["finished"]


watch()

doc = sweep.read_sweep(sweep_dir)
sweep_status = sweep.read_status(sweep_dir)
all_rows = sweep.result_rows(sweep_dir, doc, sweep_status)
rows = report.finished(all_rows)
st.subheader("The answer")
st.download_button(
    "Export bundle (zip)",
    data=lambda: export.sweep_bundle(sweep_dir),
    file_name=f"{sweep_dir.name}-export.zip",
    mime="application/zip",
    icon=":material/download:",
    key="sweep_export",
    help="results.csv, every run's config.json, the figures (SVG and PNG for a paper, plotly JSON and one "
    "offline HTML page), sweep.json, status.json and the versions of the lab "
    f"and its packages. Also: `python -m vae sweep --export {sweep_dir}`",
)
metrics = report.metric_columns(rows)
grid = doc.get("grid") or {}
if not rows or not metrics:
    st.info("No finished run yet: the answer appears as runs finish.")
    st.stop()
keys = list(grid) or ["seed"]
flagged = review.run_flags(sweep_dir, all_rows, sweep_status)
base_key = "gamma" if "gamma" in grid else keys[0]
cost_rows = review.costs(
    rows,
    base_key,
    report.baseline_of(grid[base_key]) if grid else None,
    (doc.get("fixed") or {}).get("latent_dim") or TrainConfig().latent_dim,
)
review_lines = review.flag_lines(flagged) + review.cost_lines(
    cost_rows, base_key, report.baseline_of(grid[base_key]) if grid else None
)
if review_lines:
    st.warning("  \n".join(review_lines), icon=":material/warning:")
st.caption(
    "Fixed in every run: "
    + ", ".join(
        f"{k} = {review.fmt_setting(v)}"
        for k, v in review.fixed_settings(doc.get("fixed") or {}, grid, doc.get("evaluate", "quick")).items()
    )
)
c = st.columns(3)
metric = c[0].selectbox("Metric", metrics, format_func=report.label, key="sweep_metric")
x = c[1].selectbox("Against", keys, key="sweep_x")
others = [k for k in keys if k != x]
colour = c[2].selectbox("Colour", ["none", *others], index=1 if "method" in others else 0, key="sweep_colour")
# The statistical answer, numbers first (vae.sweeps.report.answer; vae.measures.stats.compare_settings).
warning = report.few_seeds_warning(rows, keys)
if warning:
    st.warning(warning, icon=":material/warning:")
(answer,) = report.answer(rows, grid, [metric])
parts = report.answer_lines(answer, bold="**")
st.markdown(
    f"**{answer['label']}**: mean [95% t interval] over seeds, and n seeds\n\n"
    + "\n".join("- " + line for line in parts["numbers"])
)
if answer["comparisons"]:
    st.markdown(
        f"**Does {answer['base_key']} help?** {report.family_words(answer)}\n\n"
        + "\n".join("- " + line for line in parts["verdicts"])
    )
    st.markdown("**What these seeds can detect**\n\n" + "\n".join("- " + line for line in parts["power"]))
band = report.chance_band(rows, metric)
event = st.plotly_chart(
    distribution_figure(rows, x, metric, None if colour == "none" else colour, doc.get("name", ""), chance=band),
    on_select="rerun",
    selection_mode="points",
    key="sweep_chart",
)
st.caption(
    "Each dot is one run (one seed); the diamond is the mean with its 95% t interval. "
    + (
        "The grey band is chance: the measure over random rotations of the runs' codes (mean and 95% band). "
        if band
        else ""
    )
    + "Click a dot to open its run on the Embedding page."
)
points = (event or {}).get("selection", {}).get("points", []) if event else []
if points and points[0].get("customdata"):
    ss["selected_run"] = f"{sweep_dir.name}/{points[0]['customdata'][0]}"
    st.switch_page("pages/embedding.py")

if grid:
    table = report.answer_table(report.answer(rows, grid), keys)
    st.markdown("**Every metric**: each against the baseline (Holm over the comparisons of one metric).")
    show_table(pd.DataFrame(table), hide_index=True)
    st.markdown(
        "**Seed or setting?** The share of the spread between settings vs between seeds of one setting, "
        "and how stable the settings' ranking is across seeds (Kendall's W: 1 = every seed ranks alike)."
    )
    show_table(
        pd.DataFrame([{"metric": report.label(m), **report.variance_and_ranking(rows, keys, m)} for m in metrics]),
        hide_index=True,
    )
corr = report.unsupervised_vs_supervised(rows, keys)
if corr:
    st.markdown(
        "**Do the unsupervised numbers predict the supervised ones?** Spearman rank correlation **within "
        "settings** (ranks taken within each setting, then pooled), so the swept setting, which moves both, "
        "does not make it; the pooled correlation across all runs is shown beside it, confounded by the setting."
    )
    show_table(pd.DataFrame(corr), hide_index=True)
