"""End to end in Chromium against a real `streamlit run app.py`, as an attacker would try it (issue #20):
a hostile upload file name, and DNS rebinding (Chromium told that rebind.test is 127.0.0.1 sends
`Host: rebind.test`, exactly what a web page gets after pointing its own name at this machine)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.test_dashboard import open_page, wait_idle
from tests.streamlit_server import free_port, start_streamlit, stop_streamlit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REBIND = "rebind.test"


def _zip_of_pngs(n: int = 3) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            png = io.BytesIO()
            Image.fromarray(np.full((20, 20), 60 * i, np.uint8)).save(png, format="PNG")
            zf.writestr(f"{i}.png", png.getvalue())
    return buf.getvalue()


def _serve(home: Path, **env):
    port = free_port()
    log = open(home / f"streamlit-{port}.log", "wb")
    proc = start_streamlit(home, port, log, extra_env={"VAE_LAB_STANDBY": "0", **env})
    return proc, log, port


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A server on a data folder that holds one small dataset (what the rebinding page tried to delete)."""
    from vae.data import datasets
    from vae.data import presets

    home = tmp_path_factory.mktemp("security_home")
    datasets.write_dataset(presets.preset_spec("seed-full", n=12, image_size=32), home / "datasets" / "ds-a")
    proc, log, port = _serve(home)
    yield home, port
    stop_streamlit(proc)
    log.close()


@pytest.fixture(scope="module")
def rebinding_browser(browser):
    """A second Chromium (same Playwright) that resolves rebind.test to 127.0.0.1."""
    b = browser.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"],
    )
    yield b
    b.close()


@pytest.fixture
def rpg(rebinding_browser):
    context = rebinding_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


WS_OPENS = """url => new Promise(done => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); done("open"); };
  ws.onerror = () => done("refused");
  setTimeout(() => done("timeout"), 10000);
})"""


def test_a_rebound_host_name_gets_nothing_of_the_app_over_http_or_the_websocket(rpg, lab):
    home, port = lab
    resp = rpg.goto(f"http://{REBIND}:{port}/dataset")
    assert resp.status == 403
    assert "does not answer to the host name 'rebind.test'" in rpg.content()
    assert rpg.locator("[data-testid=stApp]").count() == 0
    for path in ("/_stcore/health", "/_stcore/host-config", "/static/", "/media/x.png"):  # the page's own fetches
        assert rpg.evaluate("p => fetch(p).then(r => r.status)", path) == 403, path
    assert rpg.evaluate(WS_OPENS, f"ws://{REBIND}:{port}/_stcore/stream") == "refused"
    # The same browser, on the loopback address: the app and its websocket work, the dataset is there.
    open_page(rpg, f"http://127.0.0.1:{port}", "dataset", "Dataset")
    rpg.get_by_text("ds-a").first.wait_for()
    assert rpg.evaluate(WS_OPENS, f"ws://127.0.0.1:{port}/_stcore/stream") == "open"
    assert (home / "datasets" / "ds-a" / "dataset.json").exists()


def test_a_host_name_listed_in_vae_lab_allowed_hosts_runs_the_app(rpg, tmp_path):
    (tmp_path / "datasets").mkdir()
    proc, log, port = _serve(tmp_path, VAE_LAB_ALLOWED_HOSTS=REBIND)
    try:
        open_page(rpg, f"http://{REBIND}:{port}", "dataset", "Dataset")
        assert rpg.evaluate(WS_OPENS, f"ws://{REBIND}:{port}/_stcore/stream") == "open"
    finally:
        stop_streamlit(proc)
        log.close()


def test_an_upload_s_file_name_never_becomes_a_path(pg, lab, tmp_path):
    """The multipart file name rewritten to climb out of the server's temporary folder: nothing lands there,
    and the zip is imported under the name the user typed."""
    home, port = lab
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "victim.zip").write_bytes(b"the user's own file")
    hostile = "../" * 12 + str(victim / "victim.zip").lstrip("/")

    def rewrite(route, request):
        body = request.post_data_buffer or b""
        route.continue_(post_data=body.replace(b'filename="imgs.zip"', b'filename="' + hostile.encode() + b'"'))

    pg.route("**/_stcore/upload_file/**", rewrite)
    open_page(pg, f"http://127.0.0.1:{port}", "dataset", "Dataset")
    pg.get_by_text("Import images").click()
    pg.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(
        files=[{"name": "imgs.zip", "mimeType": "application/zip", "buffer": _zip_of_pngs()}]
    )
    wait_idle(pg)
    name = pg.get_by_label("Dataset name")
    name.fill("uploaded")
    name.press("Enter")
    wait_idle(pg)
    pg.get_by_role("button", name="Import", exact=True).click()
    pg.get_by_text("Imported 3 images into uploaded").wait_for()
    assert (victim / "victim.zip").read_bytes() == b"the user's own file"
    assert sorted(p.name for p in victim.iterdir()) == ["victim.zip"]
    assert (home / "datasets" / "uploaded" / "dataset.json").exists()
