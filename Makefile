# One command each on a fresh machine: `make demo`, `make test` (both set up .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-localstack localstack localstack-stop lint chaos bench sandbox clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,sandbox,stack]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m optimizer_async --sandbox --seed dev,staging,prod --demo --log-level warning

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The fault matrix and the SIGKILL crash suite (minutes; a seeded subset runs in `make test`).
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.matrix

# The fleet benchmark (about ten minutes): one JSON document on stdout and in bench/results/.
# BENCH_ARGS: e.g. `-E 20 -F 2 --no-scale` for a quick look, `--quota cloudwatch.PutMetricAlarm=10`.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Real LocalStack 4.14.0 without Docker, on 127.0.0.1:4566: installs it into .localstack/venv
# the first time (Python 3.13 or later; LOCALSTACK_PYTHON picks one), starts it in the background
# and waits until it is healthy (pid and log in .localstack/). Already running: nothing to do.
# Lambda's control plane only: functions go Active, invocations fail. See localstack/README.md.
localstack:
	localstack/ctl.sh start

localstack-stop:
	localstack/ctl.sh stop

# The integration tests against LocalStack (`make localstack`): those that need the sandbox's
# own controls, or an AWS behaviour LocalStack lacks (docs/conformance.md), are skipped and
# listed with the reason (-rs). A LocalStack this target started is stopped afterwards; one
# that was already running is left running (a long-lived endpoint serves run after run).
test-localstack: $(STAMP)
	if localstack/ctl.sh status; then started=0; else started=1; fi; \
	$(MAKE) --no-print-directory localstack || exit 1; \
	AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
		$(BIN)/python -m pytest -q -rs tests/integration; \
	status=$$?; if [ $$started = 1 ]; then localstack/ctl.sh stop; fi; exit $$status

# A standalone sandbox for manual use: AWS_ENDPOINT_URL=http://127.0.0.1:4566
sandbox: $(STAMP)
	$(BIN)/python -m optimizer_async.sandbox serve --port 4566 --seed dev,staging

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
