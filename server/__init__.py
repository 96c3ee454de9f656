"""The web server's own glue beside the pages: extra HTTP routes and the monitor's lifespan.

Not UI (no Streamlit here) and not a service (it wires services into one server process).
"""
