# NeonPro AI Chat — the two set-up commands are `make run` and `make test`.
# Both create their own virtualenv (.venv) and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run against real PostgreSQL and Redis; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/neonpro
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint bench constraints clean

$(VENV)/.run-installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(VENV)/.run-installed $@

## Run the product on http://127.0.0.1:8000/ (SQLite, in-memory layer, simulated AI provider).
run: $(VENV)/.run-installed
	VENV=$(VENV) scripts/run-local.sh

## Run the whole test suite (needs PostgreSQL and Redis; see README).
test: $(VENV)/.test-installed
	scripts/install-test-tools.sh
	$(VENV)/bin/ruff check .
# Static analysis (medium and high findings fail; justified ones carry `# nosec <id>`).
	$(VENV)/bin/bandit -q -r neonpro clinics chat compliance monitoring simulated_provider -ll
# Known vulnerabilities in the installed dependencies (pip-audit, PyPI's service).
	$(PY) scripts/dependency_audit.py $(VENV)/bin/pip-audit
# Connections are not kept between calls in tests, so every test database can be dropped.
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DEBUG=true \
		DATABASE_CONN_MAX_AGE=0 $(VENV)/bin/pytest $(PYTEST_ARGS)

## Benchmark the chat pipeline against the provider called directly (see BENCHMARKS.md),
## e.g. make bench BENCH_ARGS="--preset light". Needs PostgreSQL and Redis like the tests.
bench: $(VENV)/.test-installed
	$(PY) benchmarks/chat_bench.py $(BENCH_ARGS)

## Re-pin every dependency to its newest release allowed by pyproject.toml (then run
## `make test`): resolved afresh in a scratch virtualenv, written to constraints.txt.
constraints:
	rm -rf var/constraints-venv
	$(PYTHON) -m venv var/constraints-venv
	var/constraints-venv/bin/python -m pip install --quiet --upgrade pip
	var/constraints-venv/bin/python -m pip install --quiet -e '.[test]'
	{ grep '^#' constraints.txt; var/constraints-venv/bin/python -m pip freeze --exclude-editable; } \
		> constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf var/constraints-venv

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
