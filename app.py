"""VAE Disentanglement Lab: `streamlit run app.py` (placeholder until the dashboard lands)."""
import streamlit as st

st.title("VAE Disentanglement Lab")
st.write("The dashboard is being built.")
