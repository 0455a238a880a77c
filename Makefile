# `make demo` runs the main job, `make test` the test suite; each sets up .venv itself
# (idempotently: the install step reruns only when pyproject.toml or the constraints change).
# The `all` extra includes torch, pinned by constraints/cpu.txt to 2.13.0 (pip takes the local
# CPU build, not a CUDA one), so the zoo and torch-bridge tests run rather than skip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install clean

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/cpu.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m probinfer.cli demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 tests

clean:
	rm -rf $(VENV)
