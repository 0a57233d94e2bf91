# syntax=docker/dockerfile:1
# The llmgw operator image: `llmgw run` as a non-root user on a slim Python.
#
#   docker build -t ghcr.io/llmgw/llmgw:0.1.0 .
#
# Two stages. The first installs the package and its runtime dependencies (the `operator`
# extra) into a virtualenv with uv, pinned; that virtualenv has no pip, setuptools or wheel.
# The final image is the same slim base with that virtualenv only: no compiler, no build
# tools, no source tree.
#
# tests/deploy/test_dockerfile.py runs the build stage's RUN steps, with its ENV, in a
# clean virtualenv (VENV pointed elsewhere) and checks the `llmgw` they give: keep them
# plain shell, one step per RUN.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV VENV=/opt/llmgw \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir uv==0.13.8
RUN uv venv --python python3 "$VENV"
RUN uv pip install --python "$VENV/bin/python" ".[operator]"
RUN "$VENV/bin/python" -c "import llmgw.cli, llmgw.runner" && "$VENV/bin/llmgw" --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="llmgw" \
      org.opencontainers.image.description="A Kubernetes operator for LiteLLM gateways" \
      org.opencontainers.image.source="https://github.com/llmgw/llmgw" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/llmgw /opt/llmgw
# PYTHONSAFEPATH: nothing from the working directory shadows a module (see STYLE.md on
# the operator/ folder). Bytecode is compiled at build time; none is written at run time,
# where the root filesystem is read-only.
ENV PATH=/opt/llmgw/bin:$PATH \
    PYTHONSAFEPATH=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user and group, so that the kubelet can check runAsNonRoot without /etc/passwd.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["llmgw", "run"]
