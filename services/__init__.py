"""Reenact Studio's core: everything that is not UI. Never imports Streamlit."""
