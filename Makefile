# Hangar: `make run` to start everything on this machine, `make test` to run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint check-deploy bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The libvirt driver's Python binding builds only where libvirt's headers are installed (scripts/ci-libvirt
# installs them); everywhere else Hangar runs without it, on the simulated driver.
EXTRAS := dev$(shell pkg-config --exists libvirt 2>/dev/null && echo ,libvirt)
comma := ,
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# Reinstall whenever pyproject.toml (or the command-line client's, clients/cli) changes.
$(INSTALLED): pyproject.toml clients/cli/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]' -e clients/cli
	touch $@

run: $(INSTALLED)
	@# /metrics adds up the counts of every web and worker process through one folder, emptied at each start.
	@rm -rf var/metrics && mkdir -p var/metrics
	$(BIN)/python manage.py migrate --noinput
	@# With DEBUG off, whitenoise serves only collected, compressed files.
	@if [ "$${DEBUG:-1}" = "0" ]; then $(BIN)/python manage.py collectstatic --noinput --verbosity 0; fi
	@# scripts/run-procfile runs the Procfile with honcho, prints seed_demo's log-ins again once web and worker are
	@# up (below their start-up output), and makes Ctrl-C a graceful stop that make does not report as an error.
	@logins="$$($(BIN)/python manage.py seed_demo)" && echo "$$logins" && echo "" && \
	echo "  Hangar is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops web, worker and beat)" && echo "" && \
	DEBUG=$${DEBUG:-1} GUNICORN_BIND=$(HOST):$(PORT) GUNICORN_WORKERS=$${GUNICORN_WORKERS:-2} \
		PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/var/metrics} \
		PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/python scripts/run-procfile \
		--url http://$(HOST):$(PORT)/ --announce "$$(echo "$$logins" | grep 'log in as')"

# The suite runs in TEST_PROCESSES processes (pytest-xdist; 0 runs it in this one). Most of its time is spent
# waiting on browsers, servers and guests, so a few more processes than cores pay; tests that share one thing (the
# real guests' libvirt pool, the browser suite's stack, the fault suite's servers) keep to one process each.
TEST_PROCESSES ?= 3
test: $(INSTALLED)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/find-writes
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# Production-like settings must pass Django's deployment checklist.
check-deploy: $(INSTALLED)
	DEBUG=0 SECRET_KEY="$$(head -c 48 /dev/urandom | base64)" ALLOWED_HOSTS=hangar.example.com \
		SITE_URL=https://hangar.example.com PAYMENTS_PROVIDER=none $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: $(INSTALLED)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf var/broker var/cache var/staticfiles
