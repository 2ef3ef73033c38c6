"""Streamlit helpers shared by the pages (`_evaluation.py` holds the Evaluate button and its tables).

The navigation guard, the safety banner and the warm standby, showing a library `UserError`, the delete
confirmation, picking and ordering runs, cached datasets and models, and the widgets' number and text helpers
(the weight ladder of the β/γ sliders, progress text, sizes).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import streamlit as st

from vae.base import safety
from vae.base.errors import UserError
from vae.runs.folder import ACTIVE, IN_PROGRESS, STATES
from vae.views.labels import state_label


def ensure_app_navigation() -> None:
    """Run every page under app.py's st.navigation, also for a deep link on a fresh server.

    Streamlit treats the first request of a fresh server for /train (say) as a legacy `pages/`
    app and runs pages/train.py alone (no menu, no wide layout) until someone opens '/'. That is
    what a user's open tab gets after a server restart. Leave that mode and rerun through app.py.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def writable() -> bool:
    """False in read-only mode (VAE_LAB_READONLY=1): pages then offer no widget that changes data."""
    return not safety.readonly()


def environment_errors() -> None:
    """On every page (called by app.py): stop with one line per VAE_LAB_* environment value that is bad."""
    problems = safety.check_environment()
    if problems:
        for line in problems:
            st.error(line, icon=":material/error:")
        st.stop()


def safety_banner() -> None:
    """On every page (called by app.py): the read-only notice, or a warning when anyone on the network can
    reach this server and change data (bound to a non-loopback address, read-only off)."""
    if safety.readonly():
        st.info(
            "**Read-only viewer** (`VAE_LAB_READONLY=1`): runs, curves, reconstructions and embeddings can be "
            "looked at; nothing can be generated, imported, trained, stopped or deleted.",
            icon=":material/visibility:",
        )
        return
    address = st.get_option("server.address")
    if not safety.is_loopback_address(address):
        where = f"address {address}" if address else "every network interface"
        st.warning(
            f"**This lab listens on {where}: anyone who can reach it can change and delete data** "
            "(generate, train, delete datasets and runs). Share it read-only (`VAE_LAB_READONLY=1`), or "
            "serve it on 127.0.0.1 and use an SSH port forward (docs/sharing.md, docs/security.md). It answers only "
            f"to the host names {', '.join(safety.allowed_hosts())} (VAE_LAB_ALLOWED_HOSTS adds names).",
            icon=":material/public:",
        )


def warm_trainer() -> None:
    """Start waiting runs when a trainer is free (a queue whose trainers were killed moves on), and keep a
    warm trainer waiting while none trains (vae.jobs.standby): Start then skips the 4-5 s imports."""
    from vae.base.paths import runs_root
    from vae.jobs import launcher

    if safety.readonly():
        return
    try:
        launcher.start_waiting(runs_root(create=True))
        launcher.ensure_standby(runs_root(create=True))
    except OSError:
        pass  # a read-only or full data folder: trainers start cold, as before


def md_escape(text: str) -> str:
    """A user-chosen name shown literally in markdown (no bold, links or HTML from it)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()#!|<>~$" else ch for ch in str(text))


@contextlib.contextmanager
def user_errors():
    """Show a UserError as st.error (message only, no traceback); anything else propagates."""
    try:
        yield
    except UserError as e:
        st.error(str(e), icon=":material/error:")


CONFIRM_DELETE = "_confirm_delete"  # the identity of the one item whose delete confirmation is open


def close_delete_confirmation() -> None:
    st.session_state[CONFIRM_DELETE] = None


def delete_button(container, item_id: str, help: str | None = None) -> None:
    """A row's Delete button: opens the confirmation of this item, named by its identity (not its row)."""
    container.button(
        "Delete",
        key=f"ask_delete::{item_id}",
        icon=":material/delete:",
        help=help,
        on_click=st.session_state.update,
        kwargs={CONFIRM_DELETE: item_id, "_deleted": None},
    )


def delete_confirmation(item_id: str, name: str, question: str, consequence: str, blocked: str | None, delete) -> None:
    """The confirmation of `item_id`, drawn only while it is the open one.

    `delete()` runs on "Yes, delete <name>"; whatever happens, no confirmation stays open after it,
    so a second click on the same spot cannot confirm the next item's delete. `blocked`: why the
    item cannot be deleted now (the Yes button is then disabled).
    """
    if st.session_state.get(CONFIRM_DELETE) != item_id:
        return
    with st.container(border=True):
        st.warning(f"{question}  \n{consequence}", icon=":material/warning:")
        if blocked:
            st.error(f"Cannot delete now: {blocked}.", icon=":material/block:")
        c = st.columns([2, 1, 3])
        yes = c[0].button(
            f"Yes, delete {md_escape(name)}", key=f"confirm_delete::{item_id}", type="primary", disabled=bool(blocked)
        )
        c[1].button("Cancel", key=f"cancel_delete::{item_id}", on_click=close_delete_confirmation)
    if yes:
        close_delete_confirmation()
        with user_errors():
            delete()
            st.session_state["_deleted"] = name
            st.rerun()


def deleted_notice() -> None:
    """Say what the last delete removed (until the next Delete click)."""
    name = st.session_state.get("_deleted")
    if name:
        st.success(f"Deleted {md_escape(name)}.", icon=":material/delete:")


def stale_widget_change() -> bool:
    """True while a fragment reruns (a live view's run_every tick). A widget outside every fragment changes only in a
    full rerun, so a change that arrives with a fragment's rerun is a stale value: the tick carries every widget's
    value as the browser had it when it sent the tick, e.g. the run picker's old run, sent while the Start click's
    rerun was choosing the new run. An on_change callback that acted on it would undo what that rerun chose (the
    Train page then followed the old, finished run and never showed the new one; see bench/RESULTS.md)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def user_change(callback):
    """`callback` as an on_change that ignores stale values (`stale_widget_change`)."""

    def on_change(*args, **kwargs):
        if not stale_widget_change():
            callback(*args, **kwargs)

    return on_change


def pick_run(runs: list[dict], label: str = "Run", key: str = "run") -> dict | None:
    """A selectbox over runs; the choice is shared across pages (and set by Start) via session_state['selected_run']."""
    if not runs:
        st.info("No runs yet: start one on the Train page.", icon=":material/info:")
        return None
    names = [r["name"] for r in runs]
    states = {r["name"]: state_label(r) for r in runs}  # a resumed run waiting: "queued to resume, epoch 3/8 done"
    ss = st.session_state
    if ss.get("selected_run") not in names:
        ss["selected_run"] = names[0]
    if ss.get(key) != ss["selected_run"]:
        ss[key] = ss["selected_run"]  # a run started or picked elsewhere becomes this widget's value
    shown = f"{ss[key]}  ({states[ss[key]]})"
    if ss.get("_shown_" + key) != shown:
        # The chosen run's state changed: set the value again through session_state, or the browser keeps
        # showing the old label (a keyed selectbox keeps its element when only its labels change).
        ss[key] = ss[key]
        ss["_shown_" + key] = shown
    name = st.selectbox(
        label,
        names,
        key=key,
        format_func=lambda n: f"{n}  ({states[n]})",
        on_change=user_change(lambda: ss.update(selected_run=ss[key])),  # the next full run restores a stale value
    )
    chosen = runs[names.index(name)]
    follow_states(
        {r["path"]: r["state"] for r in runs if r["state"] in IN_PROGRESS or (r is chosen and r["state"] in STATES)}
    )
    return chosen


@st.fragment(run_every=2.0)
def follow_states(shown: dict) -> None:
    """Rerun the page when a run it shows changes state (the picker's labels, tables and buttons come from the
    state read when the page ran): runs in progress and the chosen one are read again every 2 s."""
    from vae.runs.folder import run_state

    if any(run_state(path).get("state") != state for path, state in shown.items()):
        st.rerun()


COPY_SETTINGS = "_copy_settings"  # a run's config, handed to the Train page by copy_settings_button


def copy_settings_button(run: Mapping, key: str, container=None) -> None:
    """ "Copy settings to Train": opens the Train page with this run's settings in the form (not started)."""
    where = container or st
    if (
        writable()
        and run.get("config")
        and where.button(
            "Copy settings to Train",
            key=f"{key}_copy_settings",
            icon=":material/content_copy:",
            help="Open the Train page with every setting of this run (dataset, method, β, γ, network, seed, ...) "
            "filled in, to repeat it or change one thing",
        )
    ):
        st.session_state[COPY_SETTINGS] = dict(run["config"])
        st.session_state[COPY_SETTINGS + "_from"] = run.get("name", "")
        st.switch_page("pages/train.py")


try:  # Streamlit's stop/rerun signal, raised in the script at its next st call (a closed tab, a click)
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException as _ScriptControl
except ImportError:  # a Streamlit that moved it: nothing is held, as before
    _ScriptControl = ()


class HeldProgress:
    """A progress callback for work that must finish even if the tab closes or the page reruns meanwhile
    (Generate: a stopped write would drop the whole dataset). Streamlit's stop or rerun signal, raised at
    the next widget update, is held; updates stop; `release()` raises it once the work is done."""

    def __init__(self, update):
        self.update, self.held = update, None

    def __call__(self, *args) -> None:
        if self.held is not None:
            return
        try:
            self.update(*args)
        except _ScriptControl as e:
            self.held = e

    def release(self) -> None:
        if self.held is not None:
            raise self.held


BLANK = "—"  # what a table shows in a cell with no value (Streamlit's default is the word "None")


def show_table(data, **kwargs):
    """st.dataframe with a clear blank (BLANK) for missing values; the reason a value is missing sits in a
    column beside it (pca_reason, a test's answer)."""
    kwargs.setdefault("placeholder", BLANK)
    return st.dataframe(data, **kwargs)


def shown_table(table):
    """A DataFrame as a table should show it: columns empty in every row left out, and blanks (not "None")
    for the missing values of text columns."""
    table = table.dropna(axis=1, how="all")
    text = [c for c in table.columns if table[c].dtype == object]
    if text:
        table = table.copy()
        table[text] = table[text].astype(object).where(table[text].notna(), "")
    return table


def sort_runs(runs: list[dict]) -> list[dict]:
    """Training (or starting) runs first, then those waiting in the queue, then the newest."""
    group = lambda r: 0 if r["state"] in ACTIVE else 1 if r["state"] in IN_PROGRESS else 2  # noqa: E731
    return sorted(runs, key=lambda r: (group(r), -float(r.get("created") or 0)))


@st.cache_resource(max_entries=4, show_spinner=False)
def _dataset(path: str, stamp: float):
    from vae.data import datasets

    return datasets.load_dataset(path)


def dataset_of(path) -> "object":
    """The run's dataset (cached; memory-mapped images). Raises UserError if it is gone."""
    meta = Path(path) / "dataset.json"
    if not meta.exists():
        raise UserError(f"the dataset {path} is gone (deleted or moved); regenerate it on the Dataset page")
    return _dataset(str(path), meta.stat().st_mtime)


def rows_of(ds, ids) -> "np.ndarray":
    """Positions in the dataset of the given image ids (the `id` column)."""
    id_col, ids = np.asarray(ds.columns["id"]), np.asarray(ids)
    order = np.argsort(id_col)
    pos = np.searchsorted(id_col, ids, sorter=order)
    found = order[np.minimum(pos, len(order) - 1)] if len(order) else pos
    if len(ids) and (not len(order) or not np.array_equal(id_col[found], ids)):
        raise UserError(
            f"the run's snapshot names images that are not in dataset {ds.path.name}: the snapshot is "
            "damaged, or the dataset was replaced by another of the same name"
        )
    return found


@st.cache_resource(max_entries=2, show_spinner="Loading the model (the first time also loads TensorFlow)…")
def _model(run_dir: str, stamp: float):
    from vae.model import inference  # lazy: TensorFlow loads only when a page decodes

    return inference.load_run_model(run_dir)


def model_of(run_dir):
    """The run's best model (cached until model.keras changes)."""
    from vae.base.fileio import check_model_file

    path = check_model_file(Path(run_dir) / "model.keras")
    return _model(str(run_dir), path.stat().st_mtime)


# ---------------------------------------------------------------- numbers and text for widgets


def weight_ladder(top: float = 10.0, bottom: float = 1e-6) -> list[float]:
    """0 followed by the 1-2-5 ladder from `bottom` to `top`: [0, 1e-6, 2e-6, 5e-6, ..., 10]."""
    values = [0.0]
    for exponent in range(round(math.log10(bottom)), round(math.log10(top)) + 1):
        for mantissa in (1, 2, 5):
            v = float(f"{mantissa}e{exponent}")
            if bottom <= v <= top:
                values.append(v)
    return values


def nearest_on_ladder(value: float, ladder: Sequence[float]) -> float:
    """The ladder value closest to `value` on a log scale (0 maps to 0)."""
    if value <= 0:
        return ladder[0]
    positive = [v for v in ladder if v > 0]
    return min(positive, key=lambda v: abs(math.log10(v) - math.log10(value)))


def method_param_ladder(default: float, top: float | None = None) -> list[float]:
    """Slider values for a method's weight: the 1-2-5 ladder from 1e-3 to 100x its papers' value, with that value."""
    hi = 10 ** math.ceil(math.log10(max(default, 1.0)) + 2)
    return sorted(set(weight_ladder(top=min(hi, top or hi), bottom=1e-3)) | {float(default)})


def format_weight(value: float) -> str:
    return "0" if value == 0 else f"{value:g}"


def progress_summary(status: Mapping, last: Mapping | None = None) -> tuple[float, str]:
    """(fraction done, one line of text: epoch, batch, images/s, time left) from status.json and the last metrics line."""
    epochs = int(status.get("epochs") or 0)
    epoch = int(status.get("epoch") or 0)
    steps = int(status.get("steps_per_epoch") or 0)
    step = int(status.get("step") or 0)
    if last:
        epoch = int(last.get("epoch", epoch) or epoch)
        step = int(last.get("step", step) or step)
    done_epochs = max(epoch - 1, 0) + (step / steps if steps else 0.0)
    fraction = min(max(done_epochs / epochs, 0.0), 1.0) if epochs else 0.0
    if status.get("state") == "finished":
        fraction = 1.0
    parts = [f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"]
    if steps:
        parts.append(f"batch {step}/{steps}")
    ips = (last or {}).get("images_per_s")
    if ips:
        parts.append(f"{ips:.0f} images/s")
    elapsed = (last or {}).get("time")
    if elapsed and 0 < fraction < 1 and status.get("state") == "running":  # no time left once it stopped
        parts.append(f"about {_duration(elapsed * (1 - fraction) / fraction)} left")
    return fraction, " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


format_duration = _duration  # "3 min 26 s": the public name, for the pages
