# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
# Behind the lab hub on $(PORT): the LMS itself, and the hub's private API.
LMS_PORT ?= $(shell echo $$(($(PORT) + 1)))
HUB_API_PORT ?= $(shell echo $$(($(PORT) + 2)))
PYTHON ?= python3
# Test processes (pytest-xdist); 1 runs the suite in this process. Tests that share the host's
# GPU slots, and the browser journeys, keep to one worker each (xdist_group).
TEST_WORKERS ?= 1
PYTEST_PARALLEL := $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)
# nbgrader and our own commands shell out to tools in the venv.
export PATH := $(BIN):$(PATH)
export FLASK_APP := wsgi

.PHONY: run test lint typecheck translations messages clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Compiled catalogues are build output (.gitignore); the .po files are the source.
translations: $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -d lms/translations 2>&1 | grep -v '^$$' || true

# Refresh the .po files after changing user-visible strings.
messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o lms/translations/messages.pot .
	$(BIN)/pybabel update -i lms/translations/messages.pot -d lms/translations

# Links in mails point at the hub on $(PORT); with no LMS_SMTP_URL, mails are files in instance/mail/.
run: export LMS_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
run: $(VENV)/.runtime translations
	$(BIN)/flask db upgrade
	$(BIN)/flask lms demo
	$(BIN)/flask lms release
	$(BIN)/flask lms demo-history
	@echo
	@echo "  Open http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)"
	@echo
	@# The lab hub is the entry point on $(PORT): it proxies to gunicorn ($(LMS_PORT)) and to the
	@# learners' lab servers. The grading worker and the hub run beside gunicorn; when gunicorn
	@# stops (Ctrl-C), so do they.
	export LMS_LAB_HUB_URL=http://127.0.0.1:$(HUB_API_PORT) LMS_TRUSTED_PROXIES=1; \
	$(BIN)/flask lms worker & worker=$$!; \
	$(BIN)/flask lms labs --port $(PORT) --lms-url http://127.0.0.1:$(LMS_PORT) & hub=$$!; \
	trap 'kill -TERM $$worker $$hub 2>/dev/null; wait $$worker $$hub 2>/dev/null' EXIT; \
	$(BIN)/gunicorn --bind 127.0.0.1:$(LMS_PORT) --workers 2 --access-logfile - wsgi:app

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# tests.services starts a throwaway PostgreSQL and Redis when none answer (see its docstring).
test: $(VENV)/.dev translations lint typecheck
	$(BIN)/python -m tests.services $(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)
	$(BIN)/flask lms check-courses

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
