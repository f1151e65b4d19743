# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debug is off unless DJANGO_DEBUG says otherwise (imagineer/settings.py): the targets here
# are for development, so they turn it on unless the environment already decides.
export DJANGO_DEBUG ?= 1
STAMP := $(VENV)/.installed

.PHONY: run test test-all install migrate lint clean system-packages soak fuzz gpu-check gpu-wheels \
	gpu-wheels-verify

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build; a GPU box gets CUDA torch, see README.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# CLIP's BPE vocabulary file only (generation/engine/clip_tokenizer.py): without its
	# dependencies, which would replace the pinned torch with another.
	$(PY) -m pip install -q --no-deps open-clip-torch==3.3.0
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# make run starts on the demo model, so its generation defaults are the demo's (64 px, 20
# steps, guidance 1.5: what it was trained for; at 7.5 its colours break) unless the
# environment says otherwise. They become the initial site settings: change them there (or
# in the admin) when you register Stable Diffusion.
run: export IMAGINEER_DEFAULT_WIDTH ?= 64
run: export IMAGINEER_DEFAULT_HEIGHT ?= 64
run: export IMAGINEER_DEFAULT_STEPS ?= 20
run: export IMAGINEER_DEFAULT_GUIDANCE ?= 1.5
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

# On SQLite (the default) the whole suite; with DATABASE_URL set to PostgreSQL, only the tests
# whose outcome can depend on the database (conftest.py; docs/reliability.md, "Testing").
test: install system-packages
	$(PY) -m pytest

# Every test, on whatever database DATABASE_URL names.
test-all: install system-packages
	IMAGINEER_TEST_ALL=1 $(PY) -m pytest

# The crash and restart soak of docs/reliability.md: about 10 minutes, PostgreSQL required.
soak: install
	$(PY) bench/soak.py

# The API fuzz of docs/reliability.md: schemathesis on every operation and check, 5 to 12 minutes.
fuzz: install
	$(PY) bench/fuzz.py

# The GPU check (docs/performance.md, "GPU"): on a CUDA box with no network, from the
# repository root with .gpu-wheels/ beside it, `make gpu-check OUT=<folder>`. It installs
# what the box lacks from the wheels (into .gpu-site/) and writes <folder>/gpu-check.md.
# Without a GPU it says so in one line and runs the CPU smoke check instead.
GPU_WHEELS ?= .gpu-wheels
GPU_SITE ?= .gpu-site
OUT ?= var/gpu-check
# The project's .venv where there is one; on a CUDA box, the python3 that has torch.
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_CHECK = $(GPU_PYTHON) bench/gpu_check.py --out $(OUT) --wheels $(GPU_WHEELS) --site $(GPU_SITE)

gpu-check:
	@$(GPU_CHECK); status=$$?; \
	if [ $$status -eq 3 ]; then $(GPU_CHECK) --cpu-smoke; else exit $$status; fi

# Where there is network: the wheels gpu-check needs, for Python 3.12 (about 28 MB).
gpu-wheels: install
	$(PY) bench/gpu_wheels.py download --dest $(GPU_WHEELS)

# Checks that bench/gpu-wheels.txt is complete: the smoke check with only the packages a
# CUDA box has and those wheels (a few minutes).
gpu-wheels-verify: install
	$(PY) bench/gpu_wheels.py verify

# ruff, then the type check of the code without Django (the engine, the trainer: [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .coverage .coverage.* .pytest_cache .gpu-site
