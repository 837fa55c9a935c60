# slidesnake: `make demo` and `make test` do all set-up on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all

.PHONY: demo test lint bench dry-run clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## demo: build the env, generate the demo study, run the whole workflow and its report
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo
	@echo "Done. Results are in results/:"
	@echo "  results/slides.tsv                 slide metadata, resolution decisions and QC"
	@echo "  results/heatmaps/<slide>.jpg       tumor probability heatmaps (JPEG)"
	@echo "  results/reports/<dataset>/         metrics, confusion matrix, ROC, training curves"
	@echo "  results/report.html                the study report"

## test: the whole test suite (unit tests and real workflow runs), its modules on TEST_WORKERS
## pytest-xdist workers side by side (a module's tests stay together, sharing its study run)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## bench: tiling, prediction and feature extraction speed and memory on real-tissue slides (built once into
## .bench/), snakemake -n on a 10,000-slide study, and training throughput (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/tiling.py --out .bench
	$(BIN)/python benchmarks/predict.py --out .bench
	$(BIN)/python benchmarks/features.py --out .bench
	$(BIN)/python benchmarks/dag.py --work .bench/dag
	$(BIN)/python benchmarks/training.py --work .bench

## lint: ruff (lint and format), snakemake --lint and snakefmt on the workflow
lint: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks
	$(BIN)/ruff format --check scripts tests benchmarks
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check workflow

dry-run: $(STAMP)
	$(BIN)/snakemake -n --cores 1

clean:
	rm -rf results/* .snakemake resources
	git checkout -- results/README.md
