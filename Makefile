# The two commands of the README: `make demo` (the main job) and `make test`.
# Each sets up its own virtualenv at .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt setup.py | cksum | cut -d' ' -f1)

.PHONY: demo test benchmark venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m zoo.demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=10

benchmark: $(STAMP)
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf runs .pytest_cache
