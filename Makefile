# Two commands: `make run` (embedded default workflow) and `make test` (full test suite; `make test-fast`:
# the unit tests only).
# `make run CONFIG=my.yaml CORES=2` runs another config on 2 cores (CORES: Snakemake's --cores, default all).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CORES   ?= all
CONFIG  ?= config.yaml
STAMP   := $(VENV)/.installed

.PHONY: run test test-fast install lint dry-run report clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall when the dependency list changes. pip byte-compiles what it installs on one core (≈ 40 s of
# the 5 GB of torch and its CUDA libraries here); compileall does the same on every core, skipping the
# packages' own test suites (3,400 of 12,800 files; nothing imports them). The bytecode has to be there:
# with PYTHONDONTWRITEBYTECODE set, every job would otherwise recompile torch on import.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,slurm]'
	$(BIN)/python -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null || true
	touch $(STAMP)

install: $(STAMP)

# pntk check first: Snakemake reads --configfile before any workflow code and reports a YAML syntax
# error without file or line; pntk check names both.
run: $(STAMP)
	@$(BIN)/pntk check $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --scheduler greedy
	@R=$$($(BIN)/pntk check --results $(CONFIG)) && \
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) --report $$R/snakemake-report.html && \
	echo && echo "Claims of the paper and thesis on this run's numbers ($$R/tables/claims.csv):" && \
	$(BIN)/pntk claims $$R/tables/claims.csv && \
	echo && echo "Report: $$R/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest tests --durations=15

# Unit tests only: leaves out the tests marked slow (Snakemake runs and dry runs of big configs, SLURM,
# other long subprocesses); `make test` runs them all.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" --durations=10

# ruff (pyproject.toml), snakefmt on the Snakefile and rule files, Snakemake's own linter; the house's
# layers (import-linter's contracts in pyproject.toml) and no import circles (tests/house.py, grimp).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules/
	$(BIN)/snakemake --lint --configfile config.yaml
	$(BIN)/lint-imports
	$(BIN)/python tests/house.py --check

# results/report.html (claims, warnings, every figure with its caption) is the workflow's rule `report`;
# Snakemake's own report (rule graph, runtimes, the same figures and captions) goes beside it.
report: $(STAMP)
	$(BIN)/snakemake --cores 1 --configfile config.yaml results/report.html
	$(BIN)/snakemake --cores 1 --configfile config.yaml --report results/snakemake-report.html

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile config.yaml

clean:
	rm -rf results .snakemake
