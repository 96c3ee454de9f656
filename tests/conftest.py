import os

pytest_plugins = ["tests.emulators.fixtures", "tests.pg", "tests.s3"]

# Test traffic stays on 127.0.0.1: a proxy set in the developer's environment would carry it
# elsewhere (provider calls and link fetches honour these). Cleared before any fixture or
# subprocess starts; tests/providers/test_proxy.py sets them one test at a time.
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)
