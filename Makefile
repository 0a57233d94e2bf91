# llmgw — the two commands a new machine needs are `make quickstart` and `make test`.
# Both create what they need (a virtualenv in .venv, LiteLLM in .venv-litellm) themselves.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LITELLM_VENV ?= $(abspath .venv-litellm)
BENCH_ARGS ?= --repeat 5

.PHONY: quickstart test lint unit integration e2e bench bench-operator crds schema clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/llmgw: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

quickstart: $(BIN)/llmgw ## validate and render the sample estate, no cluster needed
	$(BIN)/llmgw validate config/samples
	$(BIN)/llmgw render config/samples

$(LITELLM_VENV)/bin/litellm:
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) PYTHON=$(PYTHON) scripts/install-litellm.sh

lint: $(BIN)/llmgw ## ruff, mypy --strict and the layer contracts
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(BIN)/llmgw $(LITELLM_VENV)/bin/litellm tools lint ## every test, with the coverage floor (85%)
	scripts/install-redis.sh
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) $(BIN)/pytest --cov --cov-report=term -q

unit: $(BIN)/llmgw ## the fast suites only
	$(BIN)/pytest -q -m "not integration and not e2e"

integration: $(BIN)/llmgw ## the operator against an API server (kmock)
	$(BIN)/pytest -q -m integration

e2e: $(BIN)/llmgw $(LITELLM_VENV)/bin/litellm ## a real LiteLLM proxy on the rendered config
	scripts/install-redis.sh
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) $(BIN)/pytest -q -m e2e

bench: $(BIN)/llmgw ## render 10,000 models / 5,000 chains against a PyYAML floor
	$(BIN)/python tests/perf/bench_render.py $(BENCH_ARGS)

bench-operator: $(BIN)/llmgw ## edit-to-rollout latency and writes per edit
	$(BIN)/python tests/perf/bench_operator.py

crds: $(BIN)/llmgw ## regenerate crds/ and schemas/ from the models
	$(BIN)/llmgw crds --output-dir crds
	$(BIN)/llmgw schema --output-dir schemas

clean:
	rm -rf $(VENV) $(LITELLM_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build *.egg-info

.PHONY: tools chart-crds deploy

tools: ## helm and kubectl in .tools/bin, for the deploy tests (scripts/install-tools.sh)
	scripts/install-tools.sh

chart-crds: $(BIN)/llmgw ## refresh the CRD copies in the Helm chart and in config/crd from the models
	$(BIN)/llmgw crds --output-dir charts/llmgw/files/crds
	$(BIN)/llmgw crds --output-dir config/crd/bases

deploy: $(BIN)/llmgw tools ## the deploy suite: chart, kustomize, RBAC, Argo CD, dashboard, Dockerfile
	$(BIN)/pytest -q tests/deploy

.PHONY: bench-soak
SOAK_ARGS ?= --events 20000

bench-soak: $(BIN)/llmgw ## 20,000 object events on a running operator: RSS and latency over time
	$(BIN)/python tests/perf/bench_soak.py $(SOAK_ARGS)

.PHONY: bench-webhook
bench-webhook: $(BIN)/llmgw ## the admission webhook's answer time on 5,000 chains, over HTTPS
	$(BIN)/python tests/perf/bench_webhook.py
