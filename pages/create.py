import streamlit as st

st.title("Create")
st.info("This page is being built.")
