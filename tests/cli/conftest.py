"""CLI test fixtures live in tests/cli/fixtures.py (the monitor tests share them)."""

from tests.cli.fixtures import (  # noqa: F401 - fixtures are found by name
    data_dir,
    env,
    file_server,
    image,
    image_url,
    inputs_dir,
    video,
    video_url,
)
