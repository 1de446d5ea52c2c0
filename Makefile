# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared/data
FACES ?= $(SHARED)/faces


.PHONY: venv venv-dev data run test lint bench clean

venv: $(VENV)/.runtime  ## create .venv with the runtime requirements (idempotent)

$(VENV)/.runtime: requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

venv-dev: $(VENV)/.dev
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

data:  ## link the shared face set into data/ when it exists and data/ has none
	@mkdir -p data
	@for d in Real Fake; do \
	  if [ ! -e data/$$d ] && [ -d "$(FACES)/$$d" ]; then ln -s "$$(cd "$(FACES)/$$d" && pwd)" data/$$d; echo "linked data/$$d"; fi; \
	done
	@if [ ! -e data/FutureData ] && [ -d "$(SHARED)/FutureData" ]; then \
	  ln -s "$$(cd "$(SHARED)/FutureData" && pwd)" data/FutureData; echo "linked data/FutureData"; fi

run: venv data  ## execute the notebook headless; writes FutureDataEstimatedLabels.csv
	@mkdir -p output
	$(BIN)/papermill DeepFakeLogReg.ipynb output/DeepFakeLogReg.executed.ipynb

lint: venv-dev
	$(BIN)/ruff check DeepFakeLogReg.ipynb tests benchmarks

# nbval runs the notebook's "train" mode on the shared faces with 2 training views per image instead of 20
test: venv-dev data lint  ## unit tests, end-to-end runs, and the notebook under nbval
	@mkdir -p output
	$(BIN)/papermill DeepFakeLogReg.ipynb output/nbval.ipynb --prepare-only -p N_AUGMENT 2 -p SHOW_PROGRESS False \
	  -p OUTPUT_CSV output/nbval-labels.csv -p EXPORT_PATH output/nbval-model.npy
	$(BIN)/python -m pytest tests output/nbval.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider

bench: venv-dev data
	$(BIN)/python benchmarks/run.py --faces "$(FACES)"

clean:
	rm -rf output .cache
