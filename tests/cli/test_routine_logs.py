"""`llmgw run` keeps kopf's line for each poke's success out of the log (`--verbose` keeps it)."""

from __future__ import annotations

import logging

from llmgw import runner


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, msg, None, None)


def test_a_pokes_success_is_not_logged_but_anything_else_is() -> None:
    routine = runner.RoutineSuccess()
    assert not routine.filter(record("Handler 'poke-llmproviders' succeeded."))
    assert routine.filter(record("Handler 'poke-llmproviders' failed with an exception. Will retry."))
    assert routine.filter(record("Handler 'poke-llmproviders' succeeded.", logging.WARNING))
    assert routine.filter(record("Handler 'validate-llmproviders' succeeded."))
