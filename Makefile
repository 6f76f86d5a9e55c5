# Every target sets up .venv itself: a fresh machine needs only Python 3.11+, Node.js and npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20,22

.PHONY: install lint typecheck pytest test unit integration infra soak demo synth bench deploy clean

# uv (pinned in requirements-uv.txt) installs both virtualenvs in seconds; pip took a
# minute and a half of a clean `make test`. Only uv itself comes through pip (the machine's,
# into a virtualenv made without pip of its own: making one with pip takes seconds more).
$(STAMP): requirements-uv.txt requirements.txt requirements-dev.txt requirements-checkov.txt \
		lambdas/poller/requirements.txt
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check \
		-r requirements-uv.txt
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)/checkov
	$(UV) pip install --quiet --python $(VENV)/checkov/bin/python -r requirements-checkov.txt \
		& checkov=$$!; \
	$(UV) pip install --quiet --python $(PY) -r requirements-dev.txt && wait $$checkov
	touch $@

install: $(STAMP)

# xenon (radon) counts boolean operators, which ruff's C901 does not: no function above 10
# (rank B) in the shipped code; local/code_shape.py keeps classes under 150 lines.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/xenon --max-absolute B lambdas infra
	$(PY) -m local.code_shape

typecheck: $(STAMP)
	$(VENV)/bin/mypy lambdas/poller lambdas/slack_forwarder lambdas/job_events infra app.py \
		local notifier_cli tests

# worksteal: a worker that runs out takes tests queued on the other, so one slow test
# (a demo, a synth) doesn't leave a core idle at the end.
# The first `import aws_cdk` on a machine unpacks the CDK into jsii's package cache (~10 s):
# done once here, beside the type checks, rather than by every test worker at once.
pytest: $(STAMP)
	$(PY) -c "import aws_cdk, cdk_nag"
	$(VENV)/bin/pytest -n auto --dist worksteal

# Type checks run beside the tests: both must pass.
test: lint
	$(MAKE) --no-print-directory -j2 typecheck pytest

# One suite at a time, for a quick loop: the rules in seconds, the wiring, or the templates.
# By folder (each test is also marked with its suite: `pytest -m unit`), so a suite's run
# never imports the others' modules (moto's server, the CDK).
unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit -m unit -n 2 -q
integration: $(STAMP)
	$(VENV)/bin/pytest tests/integration -m integration -n auto --dist worksteal -q
infra: $(STAMP)
	$(PY) -c "import aws_cdk, cdk_nag"
	$(VENV)/bin/pytest tests/infra -m infra -n auto --dist worksteal -q

# The delivery promise's property test with many more histories (at least 10,000 polls).
soak: $(STAMP)
	SOAK=1 $(VENV)/bin/pytest tests/unit/test_delivery_promise.py -q -s

demo: $(STAMP)
	$(PY) -m local.demo $(ARGS)

synth: $(STAMP)
	$(PY) app.py --settings settings.toml

bench: $(STAMP)
	$(PY) -m local.bench $(ARGS)

node_modules/.package-lock.json: package.json
	npm install --no-audit --no-fund
	touch $@

# Deploys what settings.toml says. The app has two stacks: the notifier, and
# PersonalizeJobReader for member accounts (make deploy STACK=PersonalizeJobReader
# ARGS="--profile member-account"). ARGS go to the CDK CLI; `-c name=value` there overrides
# a setting for this run only. It synthesizes first, then compares the template with the
# deployed one: if the deploy would remove a subscription, the StackSet or its targets, or
# delete or rename a named role, it names each and asks (CONFIRM=yes answers for a run
# that no one watches). The deploy is of the very assembly checked (--app cdk.out).
STACK ?= PersonalizeSegmentJobNotifier
CDK := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk
deploy: $(STAMP) node_modules/.package-lock.json
	rm -rf cdk.out
	$(CDK) synth $(STACK) --quiet $(ARGS)
	$(PY) -m infra.deploy_check $(STACK) cdk.out/$(STACK).template.json \
		$(if $(filter yes,$(CONFIRM)),--yes) -- $(ARGS)
	$(CDK) deploy $(STACK) --app cdk.out $(ARGS)

clean:
	rm -rf $(VENV) cdk.out node_modules .mypy_cache .ruff_cache .pytest_cache
