# finebench — the two commands a fresh machine needs:
#   make run    set up (.venv + Debian packages), then run the embedded suite end to end
#   make test   set up, then run the test suite
# Other targets: make setup | test-fast | lint | check-install | ui | docs | smoke | tune | benchmark | report |
#                clean (clean-data | clean-mlflow | clean-downloads | clean-all)
#   make docs                                     the documentation site (MkDocs) on http://127.0.0.1:8000
#   make tracking-server | tracking-server-stop   shared MLflow server on PostgreSQL (for Slurm runs)
#   make test-slurm                               the Slurm profile on a real single-node Slurm cluster (root)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc)
CONFIG ?= config/config.yaml
GPUS ?= 1
DEB_PACKAGES := fonts-urw-base35 fonts-dejavu-core wordnet-base
STAMP := $(VENV)/.finebench-installed
DOWNLOADS ?= results/downloads
# Housekeeping (src/finebench/workdir.py): stdlib only, so `make clean` works before `make setup` too.
WORKDIR = PYTHONPATH=src $(if $(wildcard $(BIN)/python),$(BIN)/python,python3) -m finebench.workdir
# A snakemake killed with SIGKILL leaves a lock that stops the next run: removed when no snakemake runs here.
UNLOCK_STALE = $(BIN)/python -m finebench.workdir unlock-stale

SERVER_DIR ?= results/tracking-server
SERVER_HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: setup system-deps run tune smoke benchmark test test-fast lint check-install ui docs report clean clean-data \
	clean-mlflow clean-downloads clean-all server-deps tracking-server tracking-server-stop test-slurm

setup: system-deps $(STAMP)

# Debian packages the embedded suite reads (fonts for `typefaces`, WordNet for `wordnet_supersenses`).
system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo ">> installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "finebench needs these Debian packages: $$missing"; \
	    echo "run:  sudo apt-get update && sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

run: setup
	@$(UNLOCK_STALE) --configfile $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)
	@echo ">> leaderboard: results/tables/leaderboard.md   runs: make ui"

# Every classification model of the embedded suite tuned with the same budget (config/tune.yaml over
# config/config.yaml; results/tuned/, experiment finebench-tuned; docs/guides/tuning.md).
tune: setup
	@$(UNLOCK_STALE) --configfile config/config.yaml config/tune.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml config/tune.yaml
	@echo ">> tuned leaderboard: results/tuned/tables/leaderboard.md   tuning: results/tuned/tables/tuning.md"

smoke: setup
	@$(UNLOCK_STALE) --configfile config/smoke.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/smoke.yaml

# The real public datasets (downloads ~7.5 GB for the classification sets, plus DIV2K and the SR test sets, and
# ~7 GB of LibriSpeech, once unless tasks set root:); meant for a GPU machine.
benchmark: setup
	@$(UNLOCK_STALE) --configfile config/benchmark.yaml
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$(GPUS) --configfile config/benchmark.yaml

# Everything, end-to-end runs of the workflow included (what CI runs); lint first.
test: setup lint
	$(BIN)/python -m pytest -q

# Unit tests only (no test marked slow): about 2 minutes on 2 cores (219 tests, 2026-11-30), for every edit.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# ruff on the Python ([tool.ruff] in pyproject.toml), mypy on src/finebench ([tool.mypy]), snakefmt and `snakemake
# --lint` (every finding fails but "conda or container per rule": finebench uses one venv), then the documentation site
# built with --strict: a page left out of the nav, a broken link or anchor fails (the `validation:` of mkdocs.yml). Not
# with -q: mkdocs 1.6 then drops the warnings, and --strict passes on them.
DOCS_SITE ?= build/docs-site
lint: setup
	$(BIN)/ruff check src tests docs/hooks
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/python tests/lint_workflow.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d $(DOCS_SITE)

# The documentation site on http://127.0.0.1:8000, rebuilt on every edit (config.schema.yaml included).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

# `pip install .` (not editable) into a throwaway venv, every dependency from pyproject.toml (pinned by
# requirements.txt; ~6 GB with CUDA torch, minutes), then check-config from outside the repository: the schema and the
# lock file ship as package data. tests/test_package.py checks the same quickly, borrowing .venv's dependencies.
CHECK_VENV ?= /tmp/finebench-check-install
check-install:
	rm -rf $(CHECK_VENV) && $(PYTHON) -m venv $(CHECK_VENV)
	$(CHECK_VENV)/bin/pip install -q --disable-pip-version-check -c requirements.txt .
	cd $(CHECK_VENV) && bin/python -m finebench check-config $(CURDIR)/config/config.yaml
	rm -rf $(CHECK_VENV)

# A shared MLflow tracking server (PostgreSQL + mlflow server) for jobs on many nodes; prints the tracking_uri.
# SERVER_HOST=0.0.0.0 to let compute nodes reach it. Always with authentication (MLflow basic-auth): the password is
# in $(SERVER_DIR)/credentials (mode 0600), which the jobs read. Stop it with make tracking-server-stop (before
# make clean).
server-deps:
	@$(BIN)/python -c "import flask_wtf" 2>/dev/null || $(BIN)/pip install -q --disable-pip-version-check \
	  "Flask-WTF==1.3.0" "WTForms==3.3.2"   # mlflow[auth]: MLflow's basic-auth app needs it
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo ">> installing Debian packages: postgresql (its default cluster is not started)"; \
	    p=/usr/sbin/policy-rc.d; made=; [ -e $$p ] || { printf '#!/bin/sh\nexit 101\n' > $$p; chmod 755 $$p; made=1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	    rc=$$?; [ -z "$$made" ] || rm -f $$p; [ $$rc = 0 ] || exit $$rc; \
	  else \
	    echo "the tracking server needs PostgreSQL; run:  sudo apt-get update && sudo apt-get install -y postgresql"; \
	    exit 1; \
	  fi; \
	fi

tracking-server: setup server-deps
	$(BIN)/python -m finebench tracking-server start --dir $(SERVER_DIR) --host $(SERVER_HOST) --port $(PORT)

tracking-server-stop:
	$(BIN)/python -m finebench tracking-server stop --dir $(SERVER_DIR)

# The Slurm profile on a real single-node Slurm cluster (installs slurm, munge, slurmdbd, MariaDB, PostgreSQL with
# apt-get; needs root). `make test` runs the same test where it can and says why when it skips it.
test-slurm: setup
	FINEBENCH_REQUIRE_SLURM=1 $(BIN)/python -m pytest -q tests/test_slurm.py

# Prints the address of each experiment's runs table (current runs only) before serving: MLflow 3's experiment page
# opens on its GenAI overview, empty for training runs.
ui: setup
	@$(BIN)/python -m finebench ui-links --tracking-uri sqlite:///results/mlflow.db --base http://127.0.0.1:$(PORT)
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(PORT) --backend-store-uri sqlite:///results/mlflow.db

report: setup
	@$(UNLOCK_STALE) --configfile $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --report results/report.html

# What is cheap to rebuild: tables, plots, report, runs, logs, .snakemake. Prints what it removed and what it kept.
clean:
	@$(WORKDIR) clean

# The expensive parts, each by name: prepared datasets, the MLflow store (every run's history), downloaded archives.
clean-data:
	@$(WORKDIR) clean --only --data

clean-mlflow:
	@$(WORKDIR) clean --only --mlflow

clean-downloads:
	@$(WORKDIR) clean --only --downloads $(DOWNLOADS)

clean-all:
	@$(WORKDIR) clean --data --mlflow --downloads $(DOWNLOADS)
