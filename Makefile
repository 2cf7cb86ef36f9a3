# The two commands of the README: `make run` and `make test`. Both set up everything they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# .ci/run points VENV at a fresh directory to install from scratch.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Where `make run` serves (e.g. `make run ADDR=0.0.0.0:8080`).
ADDR ?= 127.0.0.1:8000

.PHONY: run test install browser interop lint migrate demo clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

# The portal on http://127.0.0.1:8000 and the django-q2 worker; one Ctrl-C stops both.
run: demo
	$(BIN)/python manage.py runportal --addr $(ADDR)

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "Installing Debian's chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "WARNING: /usr/bin/chromium is missing and this is not root: browser tests will be skipped (sudo apt-get install chromium)"; \
		fi; \
	fi

# The interoperability tests' Node.js modules (an independent OpenID provider and verifiers), from
# the lock file with `npm ci`, again only when the lock changes (the stamp lives inside node_modules,
# which npm ci replaces). Without node and npm the interop tests are skipped, saying why.
INTEROP := tests/interop
INTEROP_STAMP := $(INTEROP)/node_modules/.npm-ci-stamp

$(INTEROP_STAMP): $(INTEROP)/package-lock.json $(INTEROP)/package.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		echo "Installing the interoperability tests' Node.js modules (npm ci in $(INTEROP))"; \
		cd $(INTEROP) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.npm-ci-stamp; \
	else \
		echo "WARNING: node or npm is missing: the interoperability tests (tests/interop) will be skipped"; \
	fi

interop: $(INTEROP_STAMP)

test: install browser interop
	GOVERNANCE_TESTING=1 $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# What .ci/run checks before the tests: style, types, and the architecture's import rules.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: migrate
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm var *.egg-info
