import streamlit as st

st.title("Tasks")
st.info("This page is being built.")
