"""Running `llmgw` in-process, as a user would from a shell."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from llmgw import cli

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "config" / "samples"


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def llmgw(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`llmgw ARGS...` in-process; whatever the input, never a traceback."""

    def run(*argv: str | Path) -> Result:
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        result = Result(code, out, err)
        assert "Traceback" not in result.text
        return result

    return run


@pytest.fixture
def samples() -> Path:
    return SAMPLES
