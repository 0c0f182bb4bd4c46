# OpenLine: `make run` starts everything; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: run setup test test-sqlite test-postgres lint bench bench-console bench-chat bench-alerts bench-broadcast bench-import bench-reminders bench-reports clean browsers

setup: $(VENV)/.synced node_modules/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip >/dev/null
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(BIN)/uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --quiet
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

run: setup
	$(BIN)/openline migrate
	$(BIN)/openline demo
	exec $(BIN)/openline run

# The whole suite on SQLite (embedded profile), then on PostgreSQL when one is reachable.
# CI (CI=true) must run both, with Redis; a fresh laptop without them says what it skipped.
test: setup
	@bash scripts/test.sh

lint: setup
	$(BIN)/ruff check openline bench conftest.py
	$(BIN)/ruff format --check openline bench conftest.py
	OPENLINE_VAR_DIR=$$(mktemp -d) $(BIN)/python -m django makemigrations --check --dry-run --settings=openline.settings
	OPENLINE_VAR_DIR=$$(mktemp -d) $(BIN)/mypy

bench: setup
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install -y wrk"; exit 2; }
	$(BIN)/python bench/inbound.py

# Console list views on 100k conversations / 1M messages, and webhook-to-WebSocket latency.
# wrk is only needed when no bench/results/inbound-*.json gives the rate (see bench/README.md).
bench-console: setup
	$(BIN)/python bench/console.py

# Idle web-chat visitor WebSockets per process (memory), and visitor-to-console latency at
# 2,000 chats. Heavy: on a shared machine run it as `flock /tmp/openline-heavy.lock make bench-chat`.
bench-chat: setup
	$(BIN)/python bench/chat.py

# One alert sweep over 10,000 waiting conversations in 100 inboxes (SQLite and PostgreSQL).
bench-alerts: setup
	$(BIN)/python bench/alerts.py

# Broadcasts to 100,000 people: preview and queue times, and the dispatcher's achieved rate
# at 10/100/1,000 segments/s against the sandbox (SQLite, and PostgreSQL with Redis).
bench-broadcast: setup
	$(BIN)/python bench/broadcast.py

# A 100,000-row CSV contact import (upload, check, import as tasks) on SQLite and PostgreSQL:
# times, rows/s, peak memory, and how long another write waits meanwhile.
bench-import: setup
	$(BIN)/python bench/contact_import.py

# 50,000 appointments with two reminders each: planning a day's reminders (saved one by one)
# and the scheduler's sweep with nothing, a few and 200 due (SQLite, and PostgreSQL with Redis).
bench-reminders: setup
	$(BIN)/python bench/reminders.py

# Every report of the reports page at 100,000 conversations (a year of a helpline's data),
# for the last 30 days and the whole year, all inboxes and one: each under 1 s (SQLite and
# PostgreSQL).
bench-reports: setup
	$(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) node_modules var/test-*
