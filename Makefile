# Targets describe themselves: `make` or `make help` lists them.
.DEFAULT_GOAL := help
.PHONY: help run test check lint format typecheck pytest services install console bench-store clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
WEB := hub/agent_console/web
CONSOLE := hub/agent_console/static/index.html

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: $(STAMP) $(CONSOLE) ## Start the hub (SQLite, no other server) with a demo organisation (PORT=9000 for another port)
	$(BIN)/hub serve --demo $(if $(PORT),--port $(PORT))

test: check pytest ## Lint, type-check and run the whole test suite (SQLite and PostgreSQL)

check: lint typecheck ## Lint and type-check

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) $(CONSOLE) ## mypy --strict on hub/, tsc on the console (in its build)
	$(BIN)/mypy

pytest: $(STAMP) $(CONSOLE) services ## Run the tests (starts PostgreSQL and Redis if they are not answering)
	$(BIN)/pytest

services: ## Make sure the servers the tests use answer, starting them if not
	scripts/ensure-services

install: $(STAMP) ## Create .venv and install the hub with its development tools

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "the hub needs Python 3.11 or newer as $(PYTHON)"; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

console: $(CONSOLE) ## Build the web console (npm install, tsc, vite build) into hub/agent_console/static

# npm install, not npm ci: the lock file leaves out optional packages of other platforms
# (rollup's native builds) that this machine's registry does not carry, and npm ci refuses that.
$(CONSOLE): $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/vite.widget.config.ts $(wildcard $(WEB)/src/*) $(wildcard $(WEB)/src/widget/*)
	cd $(WEB) && npm install --no-audit --no-fund --loglevel=error && npm run build

bench-store: $(STAMP) services ## Store benchmark on SQLite and PostgreSQL (100k customers)
	$(BIN)/hub bench store --json
	$(BIN)/hub --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres bench store --json

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(WEB)/node_modules hub/agent_console/static
