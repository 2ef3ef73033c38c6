"""VAE Disentanglement Lab: `streamlit run app.py`.

This file is read twice. `streamlit run` finds the `app = st.App(...)` below and serves it (Streamlit's
ASGI app on uvicorn) behind `HostGuard`, which answers only to the host names in
`vae.base.safety.allowed_hosts()`: loopback names, plus VAE_LAB_ALLOWED_HOSTS (docs/security.md). Then
Streamlit runs this same file as the page script (`__name__ == "__main__"`), which only lays out the
navigation; every page is a thin script in pages/ that calls the `vae` library. Nothing here imports
TensorFlow. The server also starts a thread that loads the pages' imports and the run index
(pages/_warmup.py), so that a fresh server's first visitor does not wait for them.
"""

import streamlit as st

if __name__ == "__main__":  # the page script, run by Streamlit for every session (and by AppTest)
    from pages._ui import environment_errors, safety_banner

    st.set_page_config(page_title="VAE Disentanglement Lab", page_icon=":material/blur_on:", layout="wide")
    environment_errors()
    safety_banner()

    pages = [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
        st.Page("pages/embedding.py", title="Embedding", icon=":material/scatter_plot:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/table_chart:"),
        st.Page("pages/sweep.py", title="Sweeps", icon=":material/grid_view:"),
    ]
    st.navigation(pages).run()
else:  # imported by `streamlit run app.py` (or uvicorn app:app): the server
    from starlette.middleware import Middleware

    from vae.base.errors import UserError
    from vae.base.safety import HostGuard, allowed_hosts

    try:
        hosts = allowed_hosts()
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    app = st.App("app.py", middleware=[Middleware(HostGuard, hosts=hosts)])

    from pages import _warmup  # the pages' imports and the run index, loaded while the server waits for a visitor

    _warmup.start()
