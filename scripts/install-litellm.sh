#!/usr/bin/env bash
# Install the real LiteLLM proxy that the e2e tests (tests/e2e) run, in a
# virtualenv of its own: LiteLLM's many pins must not meet the operator's.
#
#   scripts/install-litellm.sh               # creates .venv-litellm at the repo root
#   LLMGW_LITELLM_VENV=/opt/litellm scripts/install-litellm.sh
#   PYTHON=python3.12 scripts/install-litellm.sh
#
# Idempotent: nothing is done when $VENV/bin/litellm exists and is this
# version. LITELLM_VERSION must equal LITELLM_VERSION in
# operator/llmgw/api/gateway.py (the gateway image tag); a test checks it.
set -euo pipefail

LITELLM_VERSION="1.106.2"
# What the gateway image ships besides litellm[proxy] and the e2e tests use: the
# Prometheus callback (spec.metrics) needs prometheus-client, from LiteLLM's
# proxy-runtime extra, whose other 20-odd cloud SDKs the tests do not need.
RUNTIME_EXTRAS=("prometheus-client==0.26.0")

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LLMGW_LITELLM_VENV:-$root/.venv-litellm}"
python="${PYTHON:-python3}"

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true
}

extras_installed() {
  "$venv/bin/python" - "${RUNTIME_EXTRAS[@]}" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if m.version(name) != version:
        sys.exit(1)
PY
}

if [[ -x "$venv/bin/litellm" && "$(installed_version)" == "$LITELLM_VERSION" ]] && extras_installed; then
  echo "litellm $LITELLM_VERSION is already installed in $venv"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
echo "installing litellm[proxy]==$LITELLM_VERSION into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "litellm[proxy]==$LITELLM_VERSION" "${RUNTIME_EXTRAS[@]}"

if [[ ! -x "$venv/bin/litellm" ]]; then
  echo "error: $venv/bin/litellm is missing after the install" >&2
  exit 1
fi
echo "installed litellm $(installed_version) in $venv"
