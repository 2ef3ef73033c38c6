"""Train: every setting, the loss formula, Start/Stop, live progress and loss curves, the runs table.

State lives on disk (run folders), not in session_state: a reload, a second tab or a
server restart finds a running run again. The trainer is its own process (vae.jobs.launcher).
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import (
    COPY_SETTINGS,
    ensure_app_navigation,
    format_duration,
    format_weight,
    md_escape,
    method_param_ladder,
    nearest_on_ladder,
    pick_run,
    progress_summary,
    show_table,
    sort_runs,
    user_change,
    user_errors,
    warm_trainer,
    weight_ladder,
    writable,
)
from vae.base import safety
from vae.base.paths import datasets_root, runs_root
from vae.base.registry import ARCHITECTURES, ENTANGLEMENT_TERMS
from vae.data import datasets
from vae.jobs import launcher
from vae.model import methods
from vae.runs import folder
from vae.runs import run_index
from vae.runs.config import FORM_KEYS, VARIANCE_MODES, TrainConfig, settings_from_query, settings_to_query
from vae.runs.folder import ERRORS, IN_PROGRESS, RESUMABLE, STATES, WAITING
from vae.sweeps import sweep
from vae.views.estimate import estimate_duration
from vae.views.labels import RUN_COLUMNS, curves_caption
from vae.views.plots import analysis_curves, entanglement_diagnostics, loss_curves, loss_latex, method_curves

ensure_app_navigation()

LADDER = weight_ladder()
ss = st.session_state

st.title("Train")
sets = [
    d for d in (datasets.list_datasets(datasets_root()) if datasets_root().exists() else []) if not d.get("error")
]  # a damaged dataset cannot be trained on (the Dataset page says why)
if not sets:
    st.info("No dataset yet: generate one on the Dataset page (or press Quick start on Home).")
    st.stop()
by_name = {d["name"]: d for d in sets}
warm_trainer()


def sync(name: str, from_slider: bool) -> None:
    """Keep a weight's log slider and its exact number input in step."""
    if from_slider:
        ss[name] = float(ss[name + "_slider"])
    else:
        ss[name + "_slider"] = nearest_on_ladder(float(ss[name]), LADDER)


def study_settings() -> None:
    study = TrainConfig.study()
    for key in ("beta", "gamma", "arch", "batch_size", "lr", "variance", "entanglement", "latent_dim", "epochs"):
        ss[key] = getattr(study, key)
    ss["beta_slider"], ss["gamma_slider"] = (
        nearest_on_ladder(study.beta, LADDER),
        nearest_on_ladder(study.gamma, LADDER),
    )
    ss["method"], ss["reduction"] = study.method, study.reduction


def papers_defaults() -> None:
    """Choosing a method whose parameters come from papers switches to the papers' reduction and KL weight."""
    for key, value in methods.papers_settings(ss["method"]).items():
        ss[key] = value
        if key == "beta":
            ss["beta_slider"] = nearest_on_ladder(value, LADDER)


def param_key(method: str, name: str) -> str:
    return f"mp_{method}_{name}"


defaults = TrainConfig()
for key in (
    "beta",
    "gamma",
    "arch",
    "batch_size",
    "lr",
    "variance",
    "entanglement",
    "latent_dim",
    "epochs",
    "seed",
    "sample_weights",
    "method",
    "reduction",
):
    ss.setdefault(key, getattr(defaults, key))
for spec in methods.METHODS.values():
    for p in spec.params:
        ss.setdefault(param_key(spec.name, p.name), p.default)


def apply_settings(values: dict) -> None:
    """Put settings (copied from a run, or read from the URL) into the form's widgets."""
    valid = {
        "arch": ARCHITECTURES,
        "entanglement": ENTANGLEMENT_TERMS,
        "variance": VARIANCE_MODES,
        "method": methods.METHOD_NAMES,
        "reduction": methods.REDUCTIONS,
    }
    for key in FORM_KEYS:
        if key in values and (key not in valid or values[key] in valid[key]):
            ss[key] = values[key]
    for key in ("beta", "gamma"):
        ss[key + "_slider"] = nearest_on_ladder(float(ss[key]), LADDER)
    spec = methods.METHODS.get(ss["method"])
    for p in spec.params if spec else ():
        if p.name in (values.get("method_params") or {}):
            v = values["method_params"][p.name]
            ss[param_key(spec.name, p.name)] = v if p.kind is str else p.kind(v)
    if values.get("dataset") in by_name:
        ss["dataset"] = values["dataset"]


copied = ss.pop(COPY_SETTINGS, None)
if copied:  # "Copy settings to Train" on another page
    apply_settings(settings_from_query(settings_to_query(copied)))
    st.info(
        f"Settings copied from run **{md_escape(ss.pop(COPY_SETTINGS + '_from', ''))}**; change what you like "
        "and press Start.",
        icon=":material/content_copy:",
    )
elif not ss.get("_train_form_restored"):  # a reload or a shared link: the settings in the URL
    apply_settings(settings_from_query(st.query_params.to_dict()))
ss["_train_form_restored"] = True
for key in ("beta", "gamma"):
    ss.setdefault(key + "_slider", nearest_on_ladder(ss[key], LADDER))

with st.expander("Settings", expanded=writable()):
    c = st.columns([2, 1, 1])
    dataset = c[0].selectbox("Dataset", list(by_name), key="dataset")
    c[1].number_input(
        "Image size", value=int(by_name[dataset].get("image_size") or 64), disabled=True, help="Set by the dataset"
    )
    c[2].button(
        "Study settings",
        on_click=study_settings,
        icon=":material/history_edu:",
        help="β=0.001, γ=0.0001, seed architecture, batch 8, lr 1e-4, constant variance, latent 3, 10 epochs",
    )
    for name, symbol in (("beta", "β (KL weight)"), ("gamma", "γ (entanglement weight)")):
        left, right = st.columns([3, 1])
        left.select_slider(
            symbol,
            LADDER,
            key=name + "_slider",
            format_func=format_weight,
            on_change=user_change(sync),
            args=(name, True),
        )
        right.number_input(
            f"{symbol.split()[0]} exact",
            min_value=0.0,
            format="%g",
            key=name,
            on_change=user_change(sync),
            args=(name, False),
        )
    size = int(by_name[dataset].get("image_size") or 64)
    c = st.columns([2, 2, 3])
    c[0].selectbox(
        "Method",
        methods.METHOD_NAMES,
        key="method",
        format_func=lambda n: methods.get(n).label,
        help="; ".join(f"{m.label}: {m.paper}" for m in methods.METHODS.values())
        + ". Choosing a method whose parameters come from papers switches to the papers' reduction "
        "and KL weight (β = 1).",
        on_change=user_change(papers_defaults),
    )
    c[1].selectbox(
        "Reduction",
        tuple(methods.REDUCTIONS),
        key="reduction",
        help="; ".join(f"{k}: {v}" for k, v in methods.REDUCTIONS.items())
        + ". Published values (β = 4, γ_TC = 10, C_max = 25) "
        "mean what they say with the papers' reduction.",
    )
    spec = methods.get(ss["method"])
    mismatch = methods.papers_mismatch(ss["method"], ss["reduction"], ss["beta"])
    if mismatch:
        st.warning(mismatch, icon=":material/warning:")
    if ss["reduction"] == "study":
        c[2].markdown(
            f"β = {ss['beta']:g} here is **β = {methods.equivalent_paper_beta(ss['beta'], size * size, ss['latent_dim']):.4g}** "
            f"of the β-VAE papers (sum over {size}×{size} pixels and {ss['latent_dim']} latents: 2·P·β/d)"
            + ("" if spec.uses_beta else f"; {spec.label} does not use β")
        )
    else:
        c[2].markdown(
            f"β = {ss['beta']:g} is the papers' β (sum over pixels and latents); the study's reduction would "
            f"need β = {methods.study_beta(ss['beta'], size * size, ss['latent_dim']):.3g}"
            + ("" if spec.uses_beta else f"; {spec.label} does not use β")
        )
    if spec.params:
        cols = st.columns(len(spec.params))
        for col, p in zip(cols, spec.params):
            key = param_key(spec.name, p.name)
            label = f"{p.name} (${p.symbol}$)" if p.symbol.startswith("\\") or "_" in p.symbol else p.name
            if p.kind is str:
                col.selectbox(label, p.choices, key=key, help=p.help)
            elif p.kind is int:
                col.number_input(label, int(p.lo), int(p.hi), step=1, key=key, help=p.help)
            else:
                col.select_slider(
                    label,
                    method_param_ladder(p.default, p.hi),
                    key=key,
                    format_func=format_weight,
                    help=f"{p.help} (papers: {p.default:g})",
                )
    c = st.columns(4)
    c[0].selectbox("Entanglement", list(ENTANGLEMENT_TERMS), key="entanglement")
    c[1].slider("Latent dimensions", 2, 10, key="latent_dim")
    c[2].selectbox("Architecture", list(ARCHITECTURES), key="arch")
    c[3].selectbox("Variance", VARIANCE_MODES, key="variance")
    c = st.columns(5)
    c[0].number_input("Epochs", 1, 10_000, key="epochs")
    c[1].number_input("Batch size", 1, 4096, key="batch_size")
    c[2].number_input("Learning rate", 1e-6, 1.0, key="lr", format="%g")
    c[3].number_input("Seed", 0, 2**31 - 1, key="seed")
    c[4].checkbox("Sample weights", key="sample_weights")
method_params = {p.name: ss[param_key(ss["method"], p.name)] for p in methods.get(ss["method"]).params}
st.query_params.from_dict(
    settings_to_query({**{k: ss[k] for k in FORM_KEYS}, "method_params": method_params, "dataset": dataset})
)  # a reload keeps the settings
st.latex(loss_latex(ss["beta"], ss["gamma"], ss["entanglement"], ss["method"], method_params))
counts = by_name[dataset].get("counts") or {}
guess_cfg = {
    **defaults.to_dict(),
    **{k: ss[k] for k in ("arch", "batch_size", "epochs", "method")},
    "image_size": int(by_name[dataset].get("image_size") or 64),
}
guess = estimate_duration(
    guess_cfg, counts.get("train", 0), counts.get("validation", 0), run_index.list_runs(include_sweeps=False)
)
if guess["source"] != "measured":  # no run of its own: a sweep's runs (they shared the cores: an upper bound)
    guess = estimate_duration(guess_cfg, counts.get("train", 0), counts.get("validation", 0), run_index.list_runs())
st.caption(
    f"Estimated duration: **about {format_duration(guess['seconds'])}** "
    f"({ss['epochs']} epochs × {format_duration(guess['per_epoch'])}; "
    + (
        f"measured by {guess['runs']} earlier run(s) of this method, network, batch size and image size on "
        "this machine)"
        if guess["source"] == "measured"
        else "a default speed for this network from the development machine: no earlier run with these settings here)"
    )
)

if writable():
    need = safety.estimate_run_bytes(
        TrainConfig(
            image_size=int(by_name[dataset].get("image_size") or 64),
            **{k: ss[k] for k in ("arch", "latent_dim", "variance", "epochs", "batch_size")},
        ),
        by_name[dataset].get("counts") or {},
    )
    st.caption(
        f"On disk: about {safety.human_bytes(need['total'])} for this run (checkpoints "
        f"{safety.human_bytes(need['checkpoints'])}, snapshots {safety.human_bytes(need['snapshots'])}); "
        f"{safety.human_bytes(safety.free_bytes(runs_root()))} free."
    )
    n_seeds = st.number_input(
        "Seeds",
        1,
        100,
        1,
        key="n_seeds",
        help="More than 1 starts a sweep over seeds 0..N-1 with these settings (Sweeps page)",
    )
if writable() and st.button("Start", type="primary", icon=":material/play_arrow:"):
    with user_errors():
        cfg = TrainConfig(
            dataset=str(by_name[dataset]["path"]),
            image_size=int(by_name[dataset]["image_size"]),
            method_params=method_params,
            **{
                k: ss[k]
                for k in (
                    "arch",
                    "latent_dim",
                    "beta",
                    "gamma",
                    "entanglement",
                    "variance",
                    "epochs",
                    "batch_size",
                    "lr",
                    "seed",
                    "sample_weights",
                    "method",
                    "reduction",
                )
            },
        ).validate()
        if n_seeds > 1:
            out = sweep.start_seeds(cfg, int(n_seeds))
            st.success(f"Started sweep {out.name} over {n_seeds} seeds: watch it on the Sweeps page.")
        else:
            ss["selected_run"] = launcher.start_run(cfg, runs_root=str(runs_root(create=True))).name

all_runs = sort_runs(run_index.list_runs())
st.subheader("Run")
chosen = pick_run(all_runs, key="train_run")  # a fresh session (reload, new tab) attaches to a running run


@st.fragment(run_every=1.0)
def live(run_dir: Path, method: str, shown: str, reduction: str = "study") -> None:
    status = launcher.run_state(run_dir)
    metrics = folder.read_metrics(run_dir)
    fraction, text = progress_summary(status, metrics[-1] if metrics else None)
    if status["state"] == WAITING:
        text = f"{queue_position(run_dir)}: starts when a trainer is free"
    st.progress(fraction, text=f"**{status['state']}** · {text}")
    if status["state"] in IN_PROGRESS and writable():
        waiting = status["state"] == WAITING
        if st.button("Remove from queue" if waiting else "Stop", icon=":material/stop:", key="stop"):
            launcher.request_stop(run_dir)
            st.toast(
                "Removed from the queue." if waiting else "Stop requested: the trainer stops after the current batch."
            )
    else:
        if status.get("message"):
            (st.error if status["state"] in ERRORS else st.info)(status["message"])
        if status["state"] in RESUMABLE and (run_dir / "last.keras").exists() and writable():
            if st.button("Resume", icon=":material/resume:", key="resume"):
                with user_errors():
                    launcher.resume_run(run_dir)
    log_y = st.toggle("Log scale", key="log_y")
    steps = status.get("steps_per_epoch")
    st.plotly_chart(
        loss_curves(
            metrics,
            steps,
            log_y,
            methods.loss_chart_terms(method),
            title=f"Losses ({methods.get(method).label})",
            reduction=reduction,
        ),
        key="loss_chart",
    )
    if methods.diagnostic_terms(method):
        st.plotly_chart(method_curves(metrics, method, steps, log_y), key="method_chart")
    left, right = st.columns(2)
    left.plotly_chart(entanglement_diagnostics(metrics, steps, log_y=True), key="ent_chart")
    right.plotly_chart(analysis_curves(metrics), key="analysis_chart")
    if status["state"] != shown and shown in STATES:
        st.rerun()  # waiting -> queued -> running -> ended: refresh the page (run picker, queue, runs table)


def queue_position(run_dir: Path) -> str:
    names = [r["name"] for r in waiting_runs]
    return (
        f"position {names.index(run_dir.name) + 1} of {len(names)} in the queue"
        if run_dir.name in names
        else "in the queue"
    )


waiting_runs = launcher.queue(runs_root()) if runs_root().exists() else []
if chosen and chosen["state"] == folder.DAMAGED:  # config.json or status.json: say which, and why
    st.error(chosen["message"], icon=":material/error:")
if chosen:
    method = chosen.get("config", {}).get("method", "beta-vae")
    live(
        Path(chosen["path"]),
        method if method in methods.METHODS else "beta-vae",
        chosen["state"],
        chosen["config"].get("reduction", "study"),
    )
    st.caption(curves_caption(chosen["config"]))

if waiting_runs:
    st.subheader("Queue")
    st.caption(
        f"Each starts when a trainer is free (at most {launcher.max_trainers()} at a time: VAE_LAB_MAX_TRAINERS), "
        "first requested first; the trainer that finishes starts the next one."
    )
    show_table(
        pd.DataFrame(
            [
                {
                    "position": k + 1,
                    "name": r["name"],
                    "dataset": Path(r["config"].get("dataset", "")).name,
                    "epochs": r["config"].get("epochs"),
                    "resume": bool(r["status"].get("resume")),
                    "waiting since": pd.Timestamp(r["status"].get("queued_at") or 0, unit="s", tz="UTC").strftime(
                        "%H:%M:%S UTC"
                    ),
                }
                for k, r in enumerate(waiting_runs)
            ]
        ),
        hide_index=True,
    )

st.subheader("All runs")
if all_runs:
    keys = ("method", "reduction", "entanglement", "latent_dim", "arch", "epochs", "batch_size", "lr", "seed")
    # β, γ and the final losses first, the name narrow: all visible at 1280 px without scrolling sideways
    show_table(
        pd.DataFrame(
            [
                {
                    "name": r["name"],
                    "state": r["state"],
                    "beta": r["config"].get("beta"),
                    "gamma": r["config"].get("gamma"),
                    **{k: (r.get("final") or {}).get(k) for k in ("val_loss", "loss", "val_recon")},
                    "dataset": Path(r["config"].get("dataset", "")).name,
                    **{k: r["config"].get(k) for k in keys},
                }
                for r in all_runs
            ]
        ),
        hide_index=True,
        column_config=RUN_COLUMNS,
    )
