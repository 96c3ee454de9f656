"""Hostile inputs against real parts: loopback emulators that record every request, the
installed `reenact` script, the real app server. Nothing here leaves 127.0.0.1."""

from tests.cli.fixtures import data_dir, env, image, inputs_dir, video  # noqa: F401
