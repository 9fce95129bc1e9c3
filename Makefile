# Attune: `make run` starts the site, `make test` runs the checks. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install install-dev run test lint format bench bench-live bench-accuracy bench-faces clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Attune needs Python 3.11 or newer (set PYTHON=python3.11)" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make `make install` a no-op until a requirements file changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap --url http://$(HOST):$(PORT)/
	HOST=$(HOST) $(BIN)/honcho start --port $(PORT)

# N daphne processes, a Celery worker with beat and nginx in front, on REDIS_URL and DATABASE_URL (PostgreSQL)
# from the environment: make run-cluster WORKERS=2. nginx listens on HOST:PORT; the processes on PORT+1...
WORKERS ?= 2
run-cluster: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py cluster --workers $(WORKERS) --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	ATTUNE_VAR_DIR=$(CURDIR)/var/test $(BIN)/pytest $(PYTEST_ARGS)

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The engine per stage and per face, the Keras and LiteRT backends side by side, against `fer`.
bench: install-dev
	$(BIN)/python bench/emotion_engine.py

# Starts daphne (`manage.py serve`, the default model) on a free port, once per backend, and loads
# /ws/live/ with BENCH_ARGS; e.g. make bench-live BENCH_ARGS="--backends keras,litert --find-max --seconds 30".
BENCH_ARGS ?= --backends keras,litert --clients 20 --fps 5 --seconds 60
bench-live: install-dev
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python bench/live_load.py --serve $(BENCH_ARGS)

# Accuracy on FER-2013's val split through both backends (the data set beside the checkout).
bench-accuracy: install-dev
	$(BIN)/python bench/val_accuracy.py

# Face detection under tilt, distance, light, blur and noise: BlazeFace and Haar side by side, false
# faces, and the classifier on rotated val faces with and without alignment; saves bench/results/.
bench-faces: install-dev
	$(BIN)/python bench/face_detection.py --save

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
