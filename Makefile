# The two commands a newcomer needs: `make run` and `make test`. Everything installs itself.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf

.PHONY: run slack test lint proto proto-check bench install lock clean chromium

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

# Every dependency, dev tools included, is locked in uv.lock (every platform); pip installs the
# same versions from requirements.lock (with the hash of every file), and buf from
# package-lock.json. `make lock` re-resolves both Python locks from pyproject.toml.
$(STAMP): pyproject.toml requirements.lock | $(VENV)/bin/python
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'collect_paths.pth').write_text('$(CURDIR)\n$(CURDIR)/gen\n')"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m stack

# The Slack messages `make run` received (its local sink, when SLACK_WEBHOOK_URL is unset).
slack: $(STAMP)
	@$(PY) -m stack.slack

test: $(STAMP) proto-check chromium
	$(PY) -m pytest

# The console's browser tests drive Debian's Chromium (never a browser downloaded by Playwright):
# installed here when absent and we are root; otherwise the tests say how to install it.
chromium:
	@test -x /usr/bin/chromium || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "note: /usr/bin/chromium is missing; install Debian's chromium for the console tests"

lock: $(STAMP)
	$(VENV)/bin/uv lock --quiet
	$(VENV)/bin/uv export --frozen --all-extras --no-emit-project --no-hashes --quiet -o .lock-pins.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --universal \
		--constraint .lock-pins.txt --quiet --custom-compile-command "make lock" -o requirements.lock
	rm -f .lock-pins.txt

proto: $(STAMP)
	$(PY) scripts/genproto.py

proto-check: $(STAMP)
	$(PY) scripts/genproto.py --check

$(BUF): package-lock.json
	npm ci --silent --no-audit --no-fund

lint: $(STAMP) $(BUF)
	cd protos && ../$(BUF) lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/check_observability.py
	$(PY) scripts/check_k8s.py
	$(PY) scripts/check_lock.py

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Run as root, embedded PostgreSQL may keep .run/pg's files under /var/tmp (a link points there).
clean:
	case "$$(readlink .run/pg)" in */collect-embedded-pg/data/*) rm -rf "$$(readlink .run/pg)";; esac
	rm -rf .run
