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

# The shared faces are flat files whose numbers say their source (../shared/data/faces/README.md);
# they are linked once into data/<class>/<source>/. faces-more is laid out by source already.
data:  ## link the shared labelled faces into data/Real/<source>/ and data/Fake/<source>/, and FutureData
	@mkdir -p data
	@for class in Real Fake; do [ -L data/$$class ] && rm data/$$class && echo "replaced the flat link data/$$class"; done; true
	@if [ -d "$(FACES)/Real" ] && [ ! -e data/Real/FFHQ ]; then \
	  for f in "$(FACES)"/Real/*.jpg "$(FACES)"/Fake/*.jpg; do \
	    class=$$(basename "$$(dirname "$$f")"); n=$$(basename "$$f" .jpg); \
	    case $$class-$$n in Real-?|Real-??) s=FFHQ;; Real-*) s=CelebA-HQ;; Fake-?|Fake-??) s=StyleGAN;; *) s=100K-Faces;; esac; \
	    mkdir -p data/$$class/$$s && ln -s "$$(cd "$$(dirname "$$f")" && pwd)/$$n.jpg" data/$$class/$$s/; \
	  done; echo "linked $(FACES) into data/Real and data/Fake by source"; fi
	@for d in "$(SHARED)"/faces-more/Real/* "$(SHARED)"/faces-more/Fake/*; do \
	  [ -d "$$d" ] || continue; class=$$(basename "$$(dirname "$$d")"); \
	  if [ ! -e data/$$class/$$(basename "$$d") ]; then mkdir -p data/$$class && \
	    ln -s "$$(cd "$$d" && pwd)" data/$$class/ && echo "linked data/$$class/$$(basename "$$d")"; fi; \
	done
	@if [ ! -e data/FutureData ] && [ -d "$(SHARED)/FutureData" ]; then \
	  ln -s "$$(cd "$(SHARED)/FutureData" && pwd)" data/FutureData; echo "linked data/FutureData"; fi

OUT ?= output
RUN_ARGS ?=

# the classic template writes each figure's alt text from its cell's "alt" metadata (the lab template has none)
run: venv data  ## execute the notebook headless (FutureDataEstimatedLabels.csv), then an HTML report of the run
	@mkdir -p $(OUT)
	$(BIN)/papermill DeepFakeLogReg.ipynb $(OUT)/DeepFakeLogReg.executed.ipynb $(RUN_ARGS)
	$(BIN)/jupyter nbconvert --to html --template classic --log-level WARN $(OUT)/DeepFakeLogReg.executed.ipynb \
	  --output DeepFakeLogReg --output-dir $(OUT)
	@echo "report: $(OUT)/DeepFakeLogReg.html"

lint: venv-dev
	$(BIN)/ruff check DeepFakeLogReg.ipynb tests benchmarks

# nbval runs the notebook's "train" mode on the shared faces with 2 training views per image instead of 20,
# from a copy beside it (nbval runs a notebook in its own folder); two pytest processes share the work
test: venv-dev data lint  ## unit tests, end-to-end runs, and the notebook under nbval
	$(BIN)/papermill DeepFakeLogReg.ipynb DeepFakeLogReg.nbval.ipynb --prepare-only -p N_AUGMENT 2 \
	  -p SHOW_PROGRESS False -p OUTPUT_CSV output/nbval-labels.csv -p EXPORT_PATH output/nbval-model.npy
	$(BIN)/python -m pytest tests DeepFakeLogReg.nbval.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider \
	  -n 2 --dist loadfile

bench: venv-dev data
	$(BIN)/python benchmarks/run.py --faces "$(FACES)"

clean:
	rm -rf output .cache
