"""The integration fixtures of tests/operator (`cluster`, `operator`, ...) for the operator-level fuzz.

They are loaded from that folder's conftest under a name of their own (a module called
`conftest` is replaced by any other folder's), with its helpers (`harness`, `kube_emulator`)
made importable as they are there.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

OPERATOR_TESTS = Path(__file__).resolve().parents[1] / "operator"
if str(OPERATOR_TESTS) not in sys.path:
    sys.path.insert(0, str(OPERATOR_TESTS))

_spec = importlib.util.spec_from_file_location("llmgw_operator_fixtures", OPERATOR_TESTS / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

cluster = _fixtures.cluster
operator = _fixtures.operator
operator_options = _fixtures.operator_options
settle = _fixtures.settle
missing_apis = _fixtures.missing_apis
