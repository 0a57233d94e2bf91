# llmgw — the two commands a new machine needs are `make quickstart` and `make test`.
# Both create what they need (a virtualenv in .venv, LiteLLM in .venv-litellm) themselves.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LITELLM_VENV ?= $(abspath .venv-litellm)
BENCH_ARGS ?= --repeat 5

.PHONY: quickstart test lint unit integration e2e bench bench-operator litellm-providers crds schema clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/llmgw: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: demo
DEMO_ARGS ?=

demo: $(BIN)/llmgw $(LITELLM_VENV)/bin/litellm ## the operator's main job on this machine: embedded API, real LiteLLM pods, fake backends (DEMO_ARGS="DIR --port N")
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) $(BIN)/llmgw demo $(DEMO_ARGS)

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
	@# test files spread over the cores (at most 4; a file's tests share one worker, so a module's
	@# LiteLLM proxy still starts once): about half the time on 2 cores
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) LLMGW_DEMO_CHECK_AFTER=1 $(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile \
		--cov --cov-report= --cov-fail-under=0 -q --durations=15
	@# `llmgw demo --check` last (the rollout scenario on real LiteLLM pods), counted in the coverage floor
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) $(BIN)/coverage run --append -m llmgw.cli demo --check
	$(BIN)/coverage report

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

.PHONY: bench-cycles
bench-cycles: $(BIN)/llmgw ## `llmgw validate` on 250..2,000 chains in one fallback cycle vs the same without
	$(BIN)/python tests/perf/bench_cycles.py --check

litellm-providers: $(LITELLM_VENV)/bin/litellm ## regenerate operator/llmgw/api/litellm_providers.py from the pinned LiteLLM
	$(LITELLM_VENV)/bin/python scripts/gen-litellm-providers.py

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

.PHONY: bench-scale
SCALE_ARGS ?= --sizes 1000,2000,4000,8000

bench-scale: $(BIN)/llmgw ## start-up curve at 1k-8k objects against a LIST + render floor (SCALE_ARGS="--sizes 500,1000" for a quick look)
	$(BIN)/python tests/perf/bench_scale.py $(SCALE_ARGS)

.PHONY: e2e-split-10k
e2e-split-10k: $(BIN)/llmgw $(LITELLM_VENV)/bin/litellm ## the real proxy on a 10,000-model revision split across ConfigMaps (~10 min)
	LLMGW_LITELLM_VENV=$(LITELLM_VENV) LLMGW_E2E_SPLIT_PROVIDERS=10 LLMGW_E2E_SPLIT_PER_PROVIDER=1000 \
		$(BIN)/pytest -q -s tests/e2e/test_split_revision.py
