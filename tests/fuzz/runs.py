"""How the fuzz tests run hypothesis: one place for the settings every file shares."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings


def random_inputs(n: int) -> settings:
    """`n` new random inputs every run, however slow or large each is, with no example
    database (CI starts from nothing; a failure prints its input)."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


def the_same_inputs(n: int) -> settings:
    """`n` inputs drawn the same way every run (for objects drawn up front and sent to a
    running operator, where a test cannot shrink)."""
    return settings(
        max_examples=n,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
