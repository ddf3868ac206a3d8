# golden-ami-pipeline. The two commands: `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
RUNNER := local/runner
ASL    := statemachine/golden-ami-pipeline.asl.json
TEMPLATES := infra/template.yaml infra/region.yaml infra/consumer-access.yaml

# cargo-lambda, cfn-lint and sam come from the venv; nothing is installed globally.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AWS_DEFAULT_REGION ?= eu-west-1
export SAM_CLI_TELEMETRY := 0

VENV_STAMP := $(VENV)/.installed
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
NODE_STAMP := $(RUNNER)/node_modules/.installed

.PHONY: help setup demo test bench lint lint-rust lint-infra build package deploy deploy-region smoke invoke-%

help: ## list the targets
	@grep -E '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt $(VENV_STAMP)
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

$(NODE_STAMP): $(RUNNER)/package-lock.json
	npm ci --prefix $(RUNNER) --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV_STAMP) $(NODE_STAMP) ## install the Python venv (moto, cargo-lambda, cfn-lint, sam) and the npm packages

demo: setup ## one full run of the pipeline on the embedded local stack, with a summary
	$(PY) -m local.demo

test: setup lint ## run every test and check
	cargo test --workspace
	node --test $(RUNNER)/test/
	$(PY) -m pytest -q local/tests
	$(PY) -m pytest -q tests/e2e

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): bench/requirements.txt $(VENV_STAMP)
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

bench: setup $(BENCH_STAMP) ## Rust vs Python cold/warm starts, package sizes, pipeline overhead -> bench/REPORT.md (release builds: ~50 min cold)
	rustup target add aarch64-unknown-linux-gnu
	$(PY) bench/bench.py

lint: setup lint-rust lint-infra ## formatting, clippy, the ASL, the templates (cfn-lint, sam, checkov) and the baseline scripts

lint-rust:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

lint-infra: setup $(CHECKOV_STAMP)
	npx --prefix $(RUNNER) --no-install asl-validator --json-path $(ASL)
	cfn-lint $(TEMPLATES)
	sam validate --lint -t infra/template.yaml
	$(PY) scripts/sync-documents.py --check
	$(PY) scripts/build-asl.py --check
	shellcheck infra/baseline/*.sh
	@# parliament on every policy of the three templates, rendered as the e2e IAM check renders
	@# them: an unknown action, a resource of the wrong type or an unsupported condition key
	@# fails unless infra/iam-allowed-findings.yaml lists it with a reason.
	$(PY) -m local.iam.lint
	@# Fails on any finding not fixed and not skipped on its resource with a reason (a contract
	@# test holds every skip to a reason).
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact --framework cloudformation $(addprefix -f ,$(TEMPLATES))

build: ## debug build of every step
	cargo build --workspace --bins

package: setup ## arm64 release zips of every function (slow: ~20 min the first time)
	rustup target add aarch64-unknown-linux-gnu
	@# The Lambdas only: the operator CLI (golden-ami-cli) is no function.
	cargo lambda build --release --arm64 --output-format zip --workspace --exclude golden-ami-cli
	@ls -l target/lambda/*/bootstrap.zip

deploy: setup ## sam build + deploy (needs AWS credentials; GUIDED=1 the first time)
	sam build --beta-features -t infra/template.yaml
	sam deploy --config-file infra/samconfig.toml $(if $(GUIDED),--guided)

STACK ?= golden-ami-pipeline
deploy-region: setup ## prepare one more target region: key replica + pointer share (REGION=us-east-1; needs AWS credentials)
	@test -n "$(REGION)" || { echo "usage: make deploy-region REGION=<region> [STACK=$(STACK)] [HOME_REGION=<region>]" >&2; exit 2; }
	$(PY) scripts/deploy-region.py --region $(REGION) --stack-name $(STACK) $(if $(HOME_REGION),--home-region $(HOME_REGION))

smoke: setup ## one real run in a deployed stack, checked like the e2e suite (STACK=, REGION=; needs AWS credentials; not in make test)
	$(PY) scripts/smoke.py --stack-name $(STACK) $(if $(REGION),--region $(REGION))

invoke-%: setup ## send events/<fn>/*.json to a running `cargo lambda watch` (e.g. make invoke-notify)
	@# Error-case events are meant to fail: show every answer, stop on none.
	@for event in events/$*/*.json; do \
	  echo "== $$event"; cargo lambda invoke $* --data-file $$event || true; \
	done
