"""The offline local engine: moves a driving video's facial motion onto a character image.

Kept import-light on purpose: the worker writes its first state before loading OpenCV/PyAV.
"""
