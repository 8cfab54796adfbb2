# One command per task. `make run` and `make test` do all set-up on a fresh machine.
.PHONY: run test lint fmt e2e dist clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANIFEST := streaming/static/streaming/.vite/manifest.json
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/vite.config.js -type f 2>/dev/null)

# Development defaults; every one can be overridden from the environment (see the README's table).
export DJANGO_DEBUG ?= 1

run: $(VENV)/.installed $(MANIFEST)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py runserver $(or $(ADDRESS),127.0.0.1:8000)

test: $(VENV)/.installed $(MANIFEST) frontend/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd frontend && npm test
	$(BIN)/pytest $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(MANIFEST): frontend/node_modules/.installed $(FRONTEND_SOURCES)
	cd frontend && npm run build

# The package (sdist and wheel) in dist/, with the frontend built first; offline, from what is installed.
dist: $(VENV)/.installed $(MANIFEST)
	rm -rf dist build
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) frontend/node_modules streaming/static/streaming staticfiles test-artifacts dist build
