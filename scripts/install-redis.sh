#!/usr/bin/env bash
# Install the real Redis server that the cache e2e test (tests/e2e/test_redis_cache.py)
# starts on a loopback port: Debian's `redis-server` package (7.x).
#
#   scripts/install-redis.sh
#
# Idempotent: nothing is done when `redis-server` is already on PATH. Needs
# root (or sudo) and apt-get, as on the Debian CI image; elsewhere install
# Redis yourself (`brew install redis`, `dnf install redis`) and put
# `redis-server` on PATH.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is already installed: $(command -v redis-server) ($(redis-server --version | head -n1))"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: redis-server is not on PATH and there is no apt-get here; install Redis 7 yourself" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" != "0" ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "error: installing redis-server needs root (or sudo)" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "installing redis-server with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null

if ! command -v redis-server >/dev/null 2>&1; then
  echo "error: redis-server is missing after the install" >&2
  exit 1
fi
echo "installed $(command -v redis-server) ($(redis-server --version | head -n1))"
