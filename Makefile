# Two entry points: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install models bench clean

$(STAMP): setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: its CPU wheel is on local disk; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(BIN)/hvp demo --out runs/demo

test: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python -m pytest -q

bench: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python bench/collect.py

clean:
	rm -rf runs build *.egg-info
