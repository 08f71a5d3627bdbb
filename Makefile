# The README's two commands. Each does all the set-up on a fresh machine:
# a .venv with a CPU build of torch (from this machine's disk on the project's
# CI machines), the package and its test tools, then the job.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
OUT ?= demo_out

.PHONY: demo test install export-check clean-check readme readme-check docs figures nbtest pytest browser-test chromium

$(BIN)/datasetdm: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(BIN)/datasetdm

demo: install
	$(BIN)/datasetdm demo --out $(OUT)

# Notebooks are the source: the exported package and the cleaned notebooks must be
# what is committed; then every notebook runs as a test, then the pytest suite.
export-check: install
	@tmp=$$(mktemp -d) && cp -r datasetdm_nb $$tmp/ && $(BIN)/nbdev_export && \
	  if ! diff -r -q -x __pycache__ -x '*.egg-info' $$tmp/datasetdm_nb datasetdm_nb; then \
	    echo "nbdev_export changed datasetdm_nb/: export the notebooks and commit the result"; exit 1; fi

clean-check: install
	@tmp=$$(mktemp -d) && cp -r nbs $$tmp/ && $(BIN)/nbdev_clean && \
	  if ! diff -r -q $$tmp/nbs nbs; then \
	    echo "nbdev_clean changed notebooks: run nbdev_clean and commit the result"; exit 1; fi

# README.md is rendered from nbs/index.ipynb (image paths made relative to the repository root).
readme: install
	$(BIN)/jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --stdout | sed 's#](images/#](nbs/images/#' > README.md

readme-check: install
	@$(BIN)/jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --stdout | sed 's#](images/#](nbs/images/#' | \
	  diff -q - README.md >/dev/null || { echo "README.md is stale: run make readme"; exit 1; }

# Re-execute notebooks at full size on the shipped model, so their stored figures show the current code
# (`make figures NB="02_attention 06_synthesis"` for some; all by default), one process per notebook, one
# OpenMP thread (torch takes the count each notebook asks for at full size: 2).
figures: install
	OMP_NUM_THREADS=1 $(BIN)/python tools/figures.py $(NB)

# The docs site: every notebook rendered with its stored outputs to _docs/ (settings.ini's doc_path) by nbconvert, as
# nbdev shows it, with no Quarto (which these machines cannot install) and nothing loaded from the network.
docs: install
	$(BIN)/python tools/docs.py

nbtest: install
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/browser

test: export-check clean-check readme-check nbtest pytest

# A real browser: Debian's Chromium (Playwright cannot download its own here), driven headless by Playwright.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

browser-test: install chromium
	$(BIN)/python -m pytest tests/browser -q -p no:cacheprovider
