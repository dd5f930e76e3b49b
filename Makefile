# The two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test chaos soak lint format docs rules clean

# A virtualenv with every pinned dependency; reinstalled when a requirements file changes.
$(STAMP): requirements/base.txt requirements/dev.txt requirements/prod.txt requirements/docs.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@touch $(STAMP)

## Start web + worker + beat on embedded defaults (SQLite, filesystem broker). Ctrl-C stops all.
run: $(STAMP)
	$(BIN)/python scripts/embedded.py

## Run the whole test suite (DATABASE_URL / CELERY_BROKER_URL select PostgreSQL and Redis), in a
## random order whose seed the header prints, on one process per core (pytest-xdist; 246 s
## instead of 302 s on 2 cores). TEST_PROCESSES=0 runs it in this process (for -x, --pdb).
TEST_PROCESSES ?= auto
test: $(STAMP)
	@scripts/ensure_chromium.sh
	DEBUG=1 $(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

## Kill and stop real processes (workers, beat, Redis) and check what the product promises
## (docs/operations/failures.md). About five minutes; needs redis-server. Not part of `make test`.
chaos: $(STAMP)
	DEBUG=1 LOG_LEVEL=WARNING $(BIN)/python -m pytest tests/chaos -m chaos -s $(PYTEST_ARGS)

## The 1-minute load and soak run: 1,000 monitors of 10 organizations, gunicorn, two workers and
## beat on PostgreSQL and a redis-server of its own, under pings, metric ingestion and API reads
## and writes (locust); fails when a promise breaks (docs/benchmarks.md#load-and-soak). About
## 2.5 minutes. Drops and recreates the database SOAK_DATABASE_URL names.
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/healthorch_soak
soak: $(STAMP)
	DATABASE_URL=$(SOAK_DATABASE_URL) LOG_LEVEL=WARNING $(BIN)/python benchmarks/soak.py --ci \
		--minutes 1 --monitors 1000 --orgs 10 --warmup 20 --load 0.5 --drain 60 --every 2

## ruff, and the import contract in pyproject.toml (apps import only downward).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Build the documentation (docs/, mkdocs.yml) into site/; any warning fails the build.
# (NO_MKDOCS_2_WARNING: the theme's banner about its own end of life, on every build.)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

## Validate and unit-test the Prometheus alerting rules under docker/observability/ (promtool
## comes with Debian's and Ubuntu's `prometheus` package, installed here when missing and we may:
## root with apt-get, as on CI machines; otherwise this fails saying what to install).
rules:
	@command -v promtool >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  echo "installing the prometheus package for promtool (once)..." && \
	  { apt-get update -q >/dev/null 2>&1; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; }; \
	} ; command -v promtool >/dev/null 2>&1 || { echo "promtool not found: apt-get install prometheus" >&2; exit 1; }
	promtool check rules docker/observability/alerts.yml
	promtool test rules docker/observability/tests/alerts_test.yml

clean:
	rm -rf var staticfiles .pytest_cache site
