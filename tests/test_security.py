"""Safe against a hostile web page, a hostile upload and a careless setting (issue #20, items 1-4, 7, 8).

The browser checks (a hostile upload name, DNS rebinding) are in tests/e2e/test_security_e2e.py; here:
the Host allow-list as ASGI middleware, the local Ray's sockets, read-only mode for every CLI command
(generated from the parser) and every page including Sweeps, bounded names and imports, and the
environment values.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import os
import re
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.test_safety import lab, tree  # noqa: F401 (the read-only fixture: a dataset, runs, an import folder)
from vae import cli
from vae.base import safety
from vae.base.errors import UserError
from vae.data import datasets
from vae.jobs import evaluation_jobs, standby
from vae.sweeps import sweep

ROOT = Path(__file__).resolve().parent.parent
READONLY = "read-only mode \\(VAE_LAB_READONLY=1\\)"


def _png(value: int, size: int = 20) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# ================================================================== 2. the Host allow-list (ASGI)


def _asgi(guard, scope_type: str, host: str | None):
    """Send one request (or websocket handshake) with this Host through `guard`; (messages sent, app called)."""
    called, sent = [], []
    headers = [] if host is None else [(b"host", host.encode())]

    async def app(scope, receive, send):
        called.append(scope["type"])

    async def receive():
        return {"type": "websocket.connect"} if scope_type == "websocket" else {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    # A fresh event loop in its own thread: a session's Playwright (the e2e tests) keeps a loop running in the
    # main thread, where asyncio.run refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, guard(app)({"type": scope_type, "headers": headers, "path": "/"}, receive, send)
        ).result(timeout=30)
    return sent, bool(called)


@pytest.mark.parametrize("kind", ["http", "websocket"])
@pytest.mark.parametrize(
    "host,passes",
    [
        ("localhost:8501", True),
        ("127.0.0.1:8501", True),
        ("[::1]:8501", True),
        ("LOCALHOST", True),
        ("localhost.:8501", True),
        ("rebind.test:8501", False),
        ("evil.localhost.example", False),
        ("127.0.0.1.nip.io", False),
        ("192.168.1.5:8501", False),
        ("", False),
        (None, False),
        ("localhost:99999", False),
        ("user@localhost", False),
    ],
)
def test_only_loopback_host_names_reach_the_app_by_default(monkeypatch, kind, host, passes):
    monkeypatch.delenv(safety.HOSTS_ENV, raising=False)
    sent, called = _asgi(lambda app: safety.HostGuard(app), kind, host)
    assert called is passes
    if not passes and kind == "http":
        assert sent[0]["status"] == 403 and b"VAE_LAB_ALLOWED_HOSTS" in sent[1]["body"]
    if not passes and kind == "websocket":
        assert sent == [{"type": "websocket.close", "code": 1008}]  # refused before it is accepted


def test_names_listed_in_the_environment_are_added(monkeypatch):
    monkeypatch.setenv(safety.HOSTS_ENV, " lab.example.org, 10.0.0.5 ,*.corp.example,[fd00::1]")
    hosts = safety.allowed_hosts()
    assert hosts[:3] == ["localhost", "127.0.0.1", "::1"]
    for host, passes in [
        ("lab.example.org:8501", True),
        ("10.0.0.5", True),
        ("a.corp.example", True),
        ("[fd00::1]:8501", True),
        ("corp.example.evil", False),
        ("rebind.test", False),
    ]:
        assert safety.host_allowed(host, hosts) is passes, host


@pytest.mark.parametrize("bad", ["http://lab.example.org", "lab.example.org:8501", "a b", "lab/x", "*evil"])
def test_a_malformed_allowed_host_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(safety.HOSTS_ENV, bad)
    with pytest.raises(UserError, match="VAE_LAB_ALLOWED_HOSTS entry .* is not a host name or IP address"):
        safety.allowed_hosts()


def test_app_py_serves_streamlit_behind_the_host_guard():
    """`streamlit run app.py` finds an st.App in app.py (Streamlit's public ASGI entry) with HostGuard on it."""
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.app_name == "app"
    source = (ROOT / "app.py").read_text()
    assert "Middleware(HostGuard" in source


# ================================================================== 3. the local Ray listens on loopback only


@pytest.mark.slow
@pytest.mark.ray
def test_a_local_sweep_s_ray_listens_on_loopback_only(tiny_dataset, tmp_workspace):
    """Every listening socket of the sweep driver's process tree (GCS, raylet, workers, agents) is loopback."""
    import tempfile

    from tests.test_sweep_engine import _kill_ray

    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must fit in 107 bytes
    env = {
        **os.environ,
        "VAE_LAB_HOME": str(tmp_workspace),
        "PYTHONPATH": str(ROOT),
        "RAY_TMPDIR": tmp,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vae",
            "sweep",
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_workspace / "sweeps" / "net"),
            "--grid",
            "gamma=0",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--image-size",
            "32",
            "--evaluate",
            "none",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: dict = {}
    try:
        deadline = time.time() + 400
        while driver.poll() is None and time.time() < deadline:
            try:
                procs = [psutil.Process(driver.pid), *psutil.Process(driver.pid).children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    for c in p.net_connections(kind="inet"):
                        if c.status == psutil.CONN_LISTEN:
                            seen[(c.laddr.ip, c.laddr.port)] = p.name()
                except psutil.Error:
                    pass
            time.sleep(0.3)
        out = driver.communicate(timeout=60)[0]
    finally:
        if driver.poll() is None:
            driver.kill()
        _kill_ray(tmp, str(tmp_workspace))
        subprocess.run(["rm", "-rf", tmp])
    assert driver.returncode == 0, out
    names = set(seen.values())
    assert any("gcs_server" in n for n in names) and any("raylet" in n for n in names), seen  # Ray was watched
    exposed = {
        addr: name
        for addr, name in seen.items()
        if not ipaddress.ip_address(addr[0].removeprefix("::ffff:")).is_loopback
    }
    assert exposed == {}, f"listening on a network address: {exposed}"


# ================================================================== 4. read-only is complete: the CLI


def _subcommands() -> dict:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def _cli_cases(home: Path, sweep_dir: Path) -> dict:
    """For every subcommand of the parser: the calls a user might make, and whether each only reads."""
    ds, runs = home / "datasets" / "tiny", home / "runs"
    return {
        "generate": [
            (
                [
                    "generate",
                    "--preset",
                    "seed-full",
                    "--n",
                    "12",
                    "--size",
                    "32",
                    "--out",
                    str(home / "datasets" / "x"),
                ],
                False,
            )
        ],
        "import": [(["import", str(home / "incoming"), "--out", str(home / "datasets" / "y"), "--size", "32"], False)],
        "import-benchmark": [
            (
                [
                    "import-benchmark",
                    "dsprites",
                    str(home / "incoming"),
                    "--out",
                    str(home / "datasets" / "b"),
                    "--no-verify",
                ],
                False,
            ),
            (["import-benchmark", "dsprites", "--download", "--out", str(home / "datasets" / "b")], False),
        ],
        "train": [
            (["train", "--data", str(ds), "--out", str(runs / "cli-run"), "--epochs", "1"], False),
            (["train", "--run-dir", str(runs / "done")], False),
            (["train", "--run-dir", str(runs / "stopped"), "--resume"], False),
        ],
        "evaluate": [(["evaluate", str(runs / "done")], False)],
        "standby": [(["standby", "--runs-root", str(runs)], False)],
        "sweep": [
            (["sweep", "--data", str(ds), "--out", str(home / "sweeps" / "new"), "--grid", "gamma=0,1"], False),
            (
                [
                    "sweep",
                    "--data",
                    str(ds),
                    "--out",
                    str(home / "sweeps" / "plan"),
                    "--grid",
                    "gamma=0",
                    "--plan-only",
                ],
                False,
            ),
            (["sweep", "--resume", str(sweep_dir)], False),
            (["sweep", "--stop", str(sweep_dir)], False),
            (["sweep", "--report", str(sweep_dir)], True),
        ],
        "runs": [(["runs", "--root", str(runs)], True)],
    }


@pytest.fixture
def lab_with_sweep(lab):  # noqa: F811
    return lab, sweep.plan_sweep(
        lab / "sweeps" / "planned", lab / "datasets" / "tiny", {"gamma": [0.0, 1.0]}, fixed={"epochs": 1}
    )


def test_every_cli_command_has_a_read_only_case():
    """A new subcommand fails this until its read-only behaviour is tested below."""
    assert set(_subcommands()) == set(_cli_cases(Path("/x"), Path("/x/s")))


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_read_only_every_cli_command_reads_or_refuses_and_leaves_the_data_tree_unchanged(
    lab_with_sweep, monkeypatch, capsys, command
):
    home, sweep_dir = lab_with_sweep
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    for argv, reads in _cli_cases(home, sweep_dir)[command]:
        before = tree(home)
        code = cli.main(argv)
        err = capsys.readouterr().err
        if reads:
            assert code == 0, (argv, err)
        else:
            assert code == 2 and re.search(READONLY, err), (argv, err)
            assert "Traceback" not in err
        assert tree(home) == before, argv


def test_read_only_standby_in_its_own_process_writes_nothing(lab):  # noqa: F811
    """The issue's case: `VAE_LAB_READONLY=1 python -m vae standby` wrote runs/.standby/."""
    env = {**os.environ, "VAE_LAB_READONLY": "1", "PYTHONPATH": str(ROOT)}
    before = tree(lab)
    res = subprocess.run(
        [sys.executable, "-m", "vae", "standby", "--runs-root", str(lab / "runs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "read-only mode" in res.stderr
    assert tree(lab) == before and not (lab / "runs" / ".standby").exists()


# ================================================================== 4. read-only: the library's writers


def _writers(home: Path, sweep_dir: Path) -> dict:
    run = home / "runs" / "done"
    return {
        "start_sweep": lambda: sweep.start_sweep(
            home / "datasets" / "tiny", {"gamma": [0.0]}, 1, {"epochs": 1}, "fresh", root=home / "sweeps-new"
        ),
        "start_sweep (default root)": lambda: sweep.start_sweep(
            home / "datasets" / "tiny", {"gamma": [0.0]}, 1, {"epochs": 1}, "fresh"
        ),
        "plan_sweep": lambda: sweep.plan_sweep(home / "sweeps" / "p", home / "datasets" / "tiny", {"gamma": [0.0]}),
        "launch_driver": lambda: sweep.launch_driver(sweep_dir),
        "request_stop": lambda: sweep.request_stop(sweep_dir),
        "write_results": lambda: sweep.write_results(sweep_dir),
        "write_status": lambda: sweep.write_status(sweep_dir, {"state": "running"}),
        "evaluate_with_progress": lambda: evaluation_jobs.evaluate_with_progress(run),
        "write_progress": lambda: evaluation_jobs.write_progress(run, "x", 0.5),
        "start_evaluation": lambda: evaluation_jobs.start_evaluation(run),
        "standby.serve": lambda: standby.serve(home / "runs"),
        "standby.launch": lambda: standby.launch(home / "runs", dict(os.environ)),
    }


@pytest.mark.parametrize("writer", sorted(_writers(Path("/x"), Path("/x/s"))))
def test_read_only_library_writers_refuse_before_writing_anything(lab_with_sweep, monkeypatch, writer):
    home, sweep_dir = lab_with_sweep
    if writer == "start_sweep (default root)":
        (home / "sweeps" / "planned").rename(home / "planned")  # sweeps/ must not be created again
        (home / "sweeps").rmdir()
        sweep_dir = home / "planned"
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    before = tree(home)
    with pytest.raises(UserError, match=READONLY):
        _writers(home, sweep_dir)[writer]()
    assert tree(home) == before


# ================================================================== 4. read-only: every page, Sweeps included

MUTATING = re.compile(
    r"^(Generate|Import|Delete|Yes, delete.*|Start.*|Stop.*|Resume.*|Quick start|Evaluate.*|"
    r"Remove.*|Cancel.*)$"
)
PAGES = ["home", "dataset", "train", "reconstructions", "embedding", "compare", "sweep"]


def test_every_page_is_in_the_read_only_test():
    assert sorted(PAGES) == sorted(p.stem for p in (ROOT / "pages").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("name", PAGES)
def test_read_only_every_page_offers_no_change_and_writes_nothing(lab_with_sweep, monkeypatch, name):
    home, _ = lab_with_sweep
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    before = tree(home)
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    offered = [b.label for b in at.button if MUTATING.match(b.label)]
    assert offered == [] and not at.get("file_uploader"), offered
    assert tree(home) == before


def test_sweeps_page_offers_start_and_resume_only_when_writable(lab_with_sweep, monkeypatch):
    monkeypatch.delenv("VAE_LAB_READONLY", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=60).run()
    assert {"Start sweep", "Resume sweep"} <= {b.label for b in at.button}  # the same page, writable
    monkeypatch.setenv("VAE_LAB_READONLY", "1")
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=60).run()
    assert not {"Start sweep", "Resume sweep", "Stop sweep"} & {b.label for b in at.button}
    assert at.selectbox(key="sweep_selected").value == "planned"  # the sweep can still be watched


# ================================================================== 7. names in bytes, imports checked before reading


def test_names_are_limited_in_bytes_not_characters(tmp_workspace):
    assert datasets.safe_name("€" * 33) == "€" * 33  # 99 bytes
    with pytest.raises(UserError, match="at most 100 bytes"):
        datasets.safe_name("€" * 90)  # 90 characters, 270 bytes: the name that crashed the Dataset page


def test_dataset_page_refuses_a_long_name_with_one_line(tmp_workspace):
    at = AppTest.from_file(str(ROOT / "pages" / "dataset.py"), default_timeout=60).run()
    name = next(t for t in at.text_input if t.label == "Folder name")
    name.set_value("€" * 90).run()
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception
    assert any("at most 100 bytes" in e.value for e in at.error)
    assert list((tmp_workspace / "datasets").iterdir()) == []


def test_import_never_reads_a_large_non_image_entry_of_a_zip(tmp_path):
    """A small zip whose .bin unpacks to 200 MB: the import reads only the images (peak memory far below)."""
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(3):
            zf.writestr(f"img/{i}.png", _png(40 * i))
        with zf.open("payload.bin", "w", force_zip64=True) as f:
            zero = bytes(1 << 20)
            for _ in range(200):
                f.write(zero)
    assert z.stat().st_size < 2_000_000
    tracemalloc.start()
    try:
        path, report = datasets.import_images(z, tmp_path / "out", size=32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report["imported"] == 3 and report["ignored"] == 1 and report["skipped"] == []
    assert peak < 30 * 1024**2, f"peak {peak / 1e6:.0f} MB: the 200 MB entry was read"


def test_import_skips_an_oversized_image_unread_in_a_folder_and_a_zip(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(_png(50 * i))
    with open(src / "huge.png", "wb") as f:  # 1.8 GB, sparse: nothing on disk, but reading it would take 1.8 GB
        f.truncate(1_800_000_000)
    with open(src / "huge.bin", "wb") as f:
        f.truncate(1_800_000_000)
    tracemalloc.start()
    try:
        _, report = datasets.import_images(src, tmp_path / "out", size=32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report["imported"] == 3 and report["ignored"] == 1
    assert [s["file"] for s in report["skipped"]] == ["huge.png"] and "limit per image" in report["skipped"][0][
        "reason"
    ]
    assert peak < 30 * 1024**2
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", _png(10))
        zf.writestr("big.png", bytes(5000))
    _, report = datasets.import_images(z, tmp_path / "out2", size=32, max_image_bytes=4096)
    assert report["imported"] == 1 and [s["file"] for s in report["skipped"]] == ["big.png"]


def _import_folder_on_page(folder: str, name: str = "imp") -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "dataset.py"), default_timeout=60).run()
    next(t for t in at.text_input if t.label.startswith("…or a folder")).set_value(folder).run()
    at.text_input(key="import_name").set_value(name).run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception
    return at


def test_page_folder_import_reads_only_the_data_root_and_listed_roots(tmp_workspace, tmp_path_factory, monkeypatch):
    outside = tmp_path_factory.mktemp("outside")
    for i in range(3):
        (outside / f"{i}.png").write_bytes(_png(60 * i))
    monkeypatch.delenv(safety.IMPORT_ROOTS_ENV, raising=False)
    at = _import_folder_on_page(str(outside))
    assert any("imports folders only from under" in e.value for e in at.error)
    assert not (tmp_workspace / "datasets" / "imp").exists()
    (tmp_workspace / "datasets" / "link").symlink_to(outside)  # a link inside the root does not lead out
    at = _import_folder_on_page(str(tmp_workspace / "datasets" / "link"))
    assert any("imports folders only from under" in e.value for e in at.error)
    monkeypatch.setenv(safety.IMPORT_ROOTS_ENV, str(outside.parent))
    at = _import_folder_on_page(str(outside))
    assert (tmp_workspace / "datasets" / "imp" / "dataset.json").exists()


def test_page_folder_import_does_not_list_the_names_of_files_it_ignores(tmp_workspace):
    src = tmp_workspace / "incoming"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(_png(60 * i))
    (src / "salaries-2026.xlsx").write_bytes(b"secret")
    (src / "broken.png").write_bytes(b"not a png")
    at = _import_folder_on_page("incoming")  # relative to the data root
    shown = " ".join(
        [m.value for m in [*at.info, *at.warning, *at.success, *at.markdown]] + [str(d.value) for d in at.dataframe]
    )
    assert "Imported 3 images" in shown and "Ignored 1 file" in shown
    assert "salaries" not in shown and "broken.png" in shown  # an image that failed is named, other files not


def test_cli_import_may_read_any_folder(tmp_path_factory, tmp_workspace, monkeypatch):
    outside = tmp_path_factory.mktemp("cli-outside")
    for i in range(3):
        (outside / f"{i}.png").write_bytes(_png(60 * i))
    monkeypatch.delenv(safety.IMPORT_ROOTS_ENV, raising=False)
    assert (
        cli.main(["import", str(outside), "--out", str(tmp_workspace / "datasets" / "c"), "--size", "32", "--quiet"])
        == 0
    )


# ================================================================== 8. environment values


@pytest.mark.parametrize(
    "name,value",
    [
        ("VAE_LAB_DISK_MARGIN_MB", "nan"),
        ("VAE_LAB_DISK_MARGIN_MB", "inf"),
        ("VAE_LAB_DISK_MARGIN_MB", "-5"),
        ("VAE_LAB_DISK_MARGIN_MB", "lots"),
        ("VAE_LAB_MAX_TRAINERS", "0"),
        ("VAE_LAB_MAX_TRAINERS", "1.5"),
        ("VAE_LAB_MAX_TRAINERS", "inf"),
        ("VAE_LAB_STANDBY_IDLE_S", "nan"),
        ("VAE_LAB_STANDBY_IDLE_S", "-1"),
    ],
)
def test_an_environment_value_that_is_not_a_finite_positive_number_is_a_clear_error(
    monkeypatch, capsys, tmp_workspace, name, value
):
    monkeypatch.setenv(name, value)
    problems = safety.check_environment()
    assert len(problems) == 1 and name in problems[0] and repr(value) in problems[0]
    assert cli.main(["runs", "--root", str(tmp_workspace / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: environment variable {name}=") and "Traceback" not in err


def test_good_environment_values_pass(monkeypatch):
    for name, value in [
        ("VAE_LAB_DISK_MARGIN_MB", "0"),
        ("VAE_LAB_MAX_TRAINERS", "3"),
        ("VAE_LAB_STANDBY_IDLE_S", "0.5"),
        (safety.HOSTS_ENV, "lab.example.org"),
    ]:
        monkeypatch.setenv(name, value)
    assert safety.check_environment() == []
    assert safety.margin_bytes() == 0


def test_every_page_stops_with_the_bad_value_named(monkeypatch, tmp_workspace):
    monkeypatch.setenv("VAE_LAB_DISK_MARGIN_MB", "nan")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("VAE_LAB_DISK_MARGIN_MB='nan'" in e.value for e in at.error)
