"""What the e2e suite does with the servers it runs as subprocesses (LiteLLM, Redis).

The tail of its log to show when it fails, a stop that always ends it (SIGTERM, then
SIGKILL if it does not exit in time), and what a missing one means: the tests that need
it are skipped, except under `CI=true`, where it is a failure: CI must not go green by
testing nothing. (A free port to start one on: `ports.free_port`.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

STOP_TIMEOUT_S = 15.0


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """Terminate it, and kill it if it has not exited within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def missing(hint: str) -> NoReturn:
    """Skip the test for want of a server (`hint`: what is missing, how to install it); fail under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {hint}", pytrace=False)
    pytest.skip(hint)
