# The README's commands. Each target sets up what it needs, so a fresh clone needs only `make`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAKE   ?= jitaudit-lake

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck unit bench sample-data clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# serves the dashboard at the end when run from a terminal; with CI set or no terminal on stdin
# it stops before serving (--no-dashboard), so that `make demo` always terminates there
demo: $(STAMP)  ## Set up and run the main job on the bundled sample data
	$(BIN)/jitaudit demo --lake $(LAKE) --sample-data sample_data \
	  $$( { [ -n "$$CI" ] || [ ! -t 0 ]; } && echo --no-dashboard )

test: $(STAMP) lint typecheck unit  ## Set up, lint, type-check and run every test

lint: $(STAMP)
	$(BIN)/ruff check jitaudit tests benchmarks dashboards
	$(BIN)/ruff format --check jitaudit tests benchmarks dashboards

typecheck: $(STAMP)
	$(BIN)/mypy jitaudit

unit: $(STAMP)
	$(BIN)/pytest -n 2 -q

bench: $(STAMP)  ## Run the benchmarks and print their figures
	$(BIN)/python -m benchmarks

sample-data: $(STAMP)  ## Regenerate sample_data/ with the simulator
	rm -rf sample_data.new
	$(BIN)/jitaudit sample --out sample_data.new --seed 7 --scale 4000
	cp sample_data/README.md sample_data.new/README.md
	rm -rf sample_data && mv sample_data.new sample_data

clean:  ## Remove the virtualenv, caches and the demo lake
	rm -rf $(VENV) $(LAKE) .pytest_cache .mypy_cache .ruff_cache
