# make run   - set up, train on the default data (the synthetic stand-in when data/dataset.csv
#              is absent; the last model is reused when data, spec and settings are unchanged),
#              then serve the model on http://localhost:3000
# make train - train again, whatever is in the model store
# make test  - set up (and install chromium for the report's browser test), then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# No usage telemetry from BentoML (the chart and the image set it too).
export BENTOML_DO_NOT_TRACK := True
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run train serve test bench clean browser

$(STAMP): requirements.txt requirements-serve.txt requirements-dev.txt requirements-spark.txt requirements-ops.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -r requirements-spark.txt -r requirements-ops.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

train: $(STAMP)
	$(BIN)/python train.py

serve: $(STAMP)
	$(BIN)/bentoml serve service:KlarnaPD

run: $(STAMP)
	$(BIN)/python train.py --reuse
	@$(MAKE) --no-print-directory serve

# The report's browser test looks at report.html in Debian's chromium; installed once.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# scripts/container-tools.sh: podman for the container tests (apt-get when missing; needs root).
# -n auto: one pytest-xdist worker per CPU, each pinned to its CPU (tests/helpers/workers.py).
test: $(STAMP) $(CHECKOV_STAMP) browser
	scripts/container-tools.sh
	$(BIN)/python -m pytest -n auto

# Benchmarks (not tests): tables printed and written to benchmarks/results/. Needs wrk (apt-get install wrk);
# image.py needs podman (scripts/container-tools.sh), cpu_limit.py a cgroup cpu controller (both: root).
bench: $(STAMP)
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/additive.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/batching.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/soak.py
	$(BIN)/python benchmarks/image.py
	$(BIN)/python benchmarks/cpu_limit.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) outputs .pytest_cache
