"""VAE Disentanglement Lab: `streamlit run app.py`.

The entry point only lays out the navigation; every page is a thin script in
pages/ that calls the `vae` library. Nothing here imports TensorFlow.
"""
import streamlit as st

from pages._ui import safety_banner

st.set_page_config(page_title="VAE Disentanglement Lab", page_icon=":material/blur_on:", layout="wide")
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
