# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8501
HOST   ?= 127.0.0.1

.PHONY: run test lint bench bench-setup chromium postgresql clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# Byte-compiled up front (~40 ms when current): an editable install is never compiled by
# pip, and where PYTHONDONTWRITEBYTECODE is set every start would compile it all again.
COMPILE := $(BIN)/python -m compileall -q services components server

run: $(STAMP)
	@$(COMPILE)
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.address $(HOST)

# Browser tests drive Debian's Chromium; browsers cannot be downloaded by Playwright here.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The store's tests also run on a real PostgreSQL (tests/pg.py starts one from Debian's
# binaries in a temporary folder, on 127.0.0.1).
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) chromium postgresql
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services server components
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy services server components

# The expression bench measures with dlib (68 points + face embedding), a model the engine
# does not use; an optional extra, never needed by the tests.
bench-setup: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' --config-settings editable_mode=compat

bench: $(STAMP) bench-setup
	@$(COMPILE)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
