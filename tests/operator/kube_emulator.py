"""The integration suite's Kubernetes API server is the package's (`llmgw.demo.apiserver`, the
`demo` extra), so that the suite and `llmgw demo` run one implementation. Test modules import it
as `kube_emulator`; this makes that name the package module itself (not a copy of its names), so
that patching a module attribute in a test reaches the code that reads it."""

from __future__ import annotations

import sys

from llmgw.demo import apiserver

sys.modules[__name__] = apiserver
