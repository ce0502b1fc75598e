# The two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format docs messages worker migrate clean lock bench bench-scale soak

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=25"
	$(PIP) install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# NO_INSTALL=1 skips it (the embedded smoke test, run by `make test` after installing).
install: $(if $(NO_INSTALL),,$(STAMP))

migrate: install
	$(PY) manage.py migrate --noinput

# Serve the whole system. With no DATABASE_URL/REDIS_URL: SQLite, in-memory
# channel layer, local-memory cache, jobs on an in-memory queue worked in-process,
# SMS/push to var/outbox/. The demo's fakes (carrier) run on loopback ports
# (scripts/run_demo.py); it prints the demo logins, the agency key and the port.
run: migrate
	$(PY) manage.py load_demo
	HOST=$(HOST) PORT=$(PORT) $(PY) scripts/run_demo.py

worker: install
	$(PY) manage.py worker

test: install
	bash scripts/ensure-services.sh
	bash scripts/ensure-browser.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (not part of `make test`): ratios measured side by side, written to
# bench/results.json. Uses wrk (Debian package) when present, py-spy for profiles.
bench: install
	bash scripts/ensure-services.sh
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk \
		|| { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk; } \
		|| echo "wrk could not be installed: the HTTP benchmarks use the Python load generator"
	@test -x $(VENV)/bin/py-spy || $(PIP) install --quiet "py-spy>=0.4,<0.5" \
		|| echo "py-spy could not be installed: missed targets are not profiled"
	$(PY) -m bench.run --profile $(BENCH_ARGS)

# The project's own queries on a province-sized database (not part of `make test`):
# seeds citizen_scale with SQL (SCALE=1: 1 M dossiers, 20 M events; the default 0.1
# seeds in about 2 minutes, the full size in about 15 on 2 cores), reports p50/p99 per
# query shape to bench/scale_results.json, plans to bench/scale_plans.txt.
SCALE ?= 0.1
bench-scale: install
	bash scripts/ensure-services.sh
	$(PY) -m bench.scale --scale $(SCALE) $(BENCH_SCALE_ARGS)

# The multi-process soak (not part of `make test`): 2 web + 2 worker processes on a
# PostgreSQL cluster and a Redis of its own, 30 citizens filing, the agency moving
# their dossiers, sockets dropping and resuming, six faults one at a time; then every
# dossier's events, socket frames, pushes and inbox items are reconciled. Fails on any
# loss or duplicate; figures in var/soak/results.json. SOAK_SECONDS bounds the whole
# run (default 600; the load phase never goes under 120 s, so SOAK_SECONDS=240 is a
# quick run of 3-5 minutes on a busy 2-core machine).
SOAK_SECONDS ?= 600
soak: install
	bash scripts/ensure-services.sh
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m tests.soak.run

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	# The layering of DESIGN.md, no app importing the fakes, no import cycle in an app.
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy backend auth dossiers tracking notifications postal documents payments bench fakes scripts/audit.py
	$(VENV)/bin/bandit -q -c pyproject.toml -r backend auth dossiers tracking notifications postal documents payments fakes
	# Known vulnerabilities in requirements.lock (justified exceptions: audit-ignore.txt).
	$(PY) scripts/audit.py

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Regenerate the published OpenAPI document (a test fails when it drifts).
docs: install
	$(PY) manage.py export_openapi

# Refresh the translation catalogues (vi is the default language, en the second).
messages: install
	$(PY) manage.py makemessages --locale vi --locale en --no-obsolete --no-location --ignore ".venv/*" --ignore "tests/*" --ignore "var/*"
	# A guessed ("fuzzy") translation is worse than none: empty it so it gets done.
	for po in locale/*/LC_MESSAGES/django.po; do msgattrib --clear-fuzzy --empty --no-wrap -o $$po $$po; done
	$(PY) manage.py compilemessages --ignore ".venv/*"

# Record the exact versions a fresh install uses (after changing pyproject.toml).
lock:
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet --upgrade "pip>=25"
	/tmp/lock-venv/bin/pip install --quiet -e ".[dev]"
	/tmp/lock-venv/bin/pip freeze --exclude-editable | sort -f > requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
