# d2timm: two commands do everything on a fresh machine.
#   make demo   install, then run the main job on the embedded default
#   make test   install, then run the whole test suite (what CI runs)
# D2_SOURCE=<git URL or detectron2 checkout> installs detectron2 from source with its
# compiled ops; without it the v0.6 Python sources from PyPI are used (see README).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
D2_SOURCE ?= $(D2TIMM_DETECTRON2_SOURCE)
REQUIREMENTS := requirements/torch.txt requirements/base.txt requirements/test.txt setup.py
PYTEST_ARGS ?=

.PHONY: install demo test test-all goldens generate check sweep sweep-shard sweep-record clean

install: $(VENV)/.d2timm-requirements
	$(PY) tools/install_detectron2.py $(if $(D2_SOURCE),--source '$(D2_SOURCE)')
	@$(PY) -c "import torch, timm, detectron2, generator; print('d2timm ready: torch', torch.__version__, '| timm', timm.__version__, '| detectron2', detectron2.__version__)"

# pip runs only when a requirement file changed since the last install.
$(VENV)/.d2timm-requirements: $(REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools<81" wheel
	$(PY) -m pip install --quiet -r requirements/torch.txt
	$(PY) -m pip install --quiet -r requirements/base.txt -r requirements/test.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

demo: install
	$(PY) tools/demo.py

# The default suite (CI): everything but tests marked slow; see README for `make test-all`.
# --durations: the slowest tests, for keeping CI inside its budget.
test: install
	$(PY) -m pytest -n 2 -m "not slow" --durations=15 $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# Re-render the golden files of tests/golden from the fixed specs in tests/golden/specs.
goldens: install
	$(PY) -m tests.golden.regenerate

# Regenerate the checked-in package (the selection recorded in generated/MANIFEST.json).
generate: install
	$(PY) -m generator.cli generate --jobs 2

check: install
	$(PY) -m generator.cli check --jobs 2

# The real-compute sweep (tools/dev/sweep.py, resumable; SWEEP_ARGS=--sample for one model per
# family), then its results recorded in generated/SUPPORT.md. Exits 1 when a model failed.
SWEEP_ARGS ?=
sweep: install
	$(PY) tools/dev/sweep.py --jobs 2 $(SWEEP_ARGS); status=$$?; \
	$(PY) -m generator.cli generate --jobs 2 --verified .cache/sweep/results.json && exit $$status

# One of N jobs sharing the sweep (SHARD=K/N, its own RESULTS file; the weekly workflow),
# then every shard's results-*.json recorded at once.
SHARD ?= 1/1
RESULTS ?= .cache/sweep/results.json
sweep-shard: install
	$(PY) tools/dev/sweep.py --jobs 2 --shard $(SHARD) --results $(RESULTS) $(SWEEP_ARGS)

sweep-record: install
	@test -n "$(wildcard .cache/sweep/results-*.json)" || { echo "error: no .cache/sweep/results-*.json to record" >&2; exit 2; }
	$(PY) -m generator.cli generate --jobs 2 $(foreach f,$(sort $(wildcard .cache/sweep/results-*.json)),--verified $(f))

clean:
	rm -rf $(VENV) .pytest_cache .cache build *.egg-info
