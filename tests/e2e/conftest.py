"""A real `streamlit run app.py` on a free port with an empty data folder, and headless Debian Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.streamlit_server import free_port, start_streamlit, stop_streamlit


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab_home")


@pytest.fixture(scope="session")
def server(lab_home):
    """Base URL of a Streamlit server started from an empty VAE_LAB_HOME; stopped at the end."""
    port = free_port()
    log = open(lab_home / "streamlit.log", "wb")
    try:
        proc = start_streamlit(lab_home, port, log, extra_env={"VAE_LAB_MAX_TRAINERS": "2", "VAE_LAB_STANDBY": "1"})
    except RuntimeError as err:
        raise RuntimeError(f"{err}: " + (lab_home / "streamlit.log").read_text()[-2000:]) from None
    url = f"http://127.0.0.1:{port}"
    yield url
    stop_streamlit(proc)
    log.close()


@pytest.fixture
def pg(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
