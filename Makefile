# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debug is off unless DJANGO_DEBUG says otherwise (imagineer/settings.py): the targets here
# are for development, so they turn it on unless the environment already decides.
export DJANGO_DEBUG ?= 1
STAMP := $(VENV)/.installed

.PHONY: run test install migrate lint clean system-packages soak fuzz

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build; a GPU box gets CUDA torch, see README.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py ensure_admin
	$(PY) manage.py create_demo_model --if-no-base
	@echo ""
	@echo "Imagineer is starting at http://127.0.0.1:$${PORT:-8000}/  (Ctrl-C stops the web server and the worker)"
	@echo ""
	PORT=$${PORT:-8000} $(VENV)/bin/honcho start

# What the tests use from Debian: chromium for the browser tests (`playwright install` cannot
# download here), docker-compose to check docker-compose.yml (no Docker engine needed).
system-packages:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@command -v docker-compose >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null)

test: install system-packages
	$(PY) -m pytest

# The crash and restart soak of docs/reliability.md: about 10 minutes, PostgreSQL required.
soak: install
	$(PY) bench/soak.py

# The API fuzz of docs/reliability.md: schemathesis on every operation, about 4 minutes.
fuzz: install
	$(PY) bench/fuzz.py

# ruff, then the type check of the code without Django (the engine, the trainer: [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .coverage .coverage.* .pytest_cache
