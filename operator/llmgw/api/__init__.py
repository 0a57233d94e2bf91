"""The three kinds of `llmgateway.dev/v1alpha1`, as frozen pydantic models.

These models are the single source of truth: the CRDs in `crds/` and the JSON
schemas for editors are generated from them (see `llmgw.api.crdgen`).
"""

from llmgw.api import chain, common, env, exposure, gateway, pod, provider, workload

GROUP = common.GROUP
VERSION = common.VERSION
API_VERSION = common.API_VERSION

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "chain",
    "common",
    "env",
    "exposure",
    "gateway",
    "pod",
    "provider",
    "workload",
]
