"""Admission on long fallback cycles: refusals and warnings in words that do not grow with the cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmgw.core import admission, estate

Raw = dict[str, Any]
N = 300


def names(n: int = N) -> list[str]:
    return [f"m{i:03d}" for i in range(n)]


def providers(provider: Callable[..., Raw], n: int = N) -> list[Raw]:
    m = names(n)
    return [provider(f"p{k}", *m[k * 10 : (k + 1) * 10]) for k in range(-(-n // 10))]


def line(chain: Callable[..., Raw], n: int = N) -> list[Raw]:
    """c000: m000 -> m001, ..., up to m(n-1): a cycle once the last model falls back to m000."""
    m = names(n)
    return [chain(f"c{i:03d}", m[i], m[i + 1]) for i in range(n - 1)]


def world(*raws: Raw) -> admission.World:
    return admission.World(estate.build(raws))


def test_closing_a_long_cycle_is_refused_naming_it_by_its_ends(provider, gateway, chain) -> None:
    w = world(gateway(), *providers(provider), *line(chain))
    verdict = admission.review(w, chain(f"c{N - 1:03d}", f"m{N - 1:03d}", "m000"))
    assert not verdict.allowed
    assert verdict.message.startswith(
        f"FallbackChain default/c{N - 1:03d} spec.fallbacks: on fallback cycle m000 -> ... -> m000 "
        f"({N} models, errors), reported on FallbackChain default/c000 (gateway default/gw)"
    )
    assert "remove the link that closes it" in verdict.message
    assert len(verdict.message) < 400


def test_closing_it_at_its_first_model_says_its_ends(provider, gateway, chain) -> None:
    m = names()
    chains = [chain(f"c{i:03d}", m[i], m[(i + 1) % N]) for i in range(1, N)]
    w = world(gateway(), *providers(provider), *chains)
    verdict = admission.review(w, chain("c000", "m000", "m001"))
    assert not verdict.allowed
    said = f"m000 -> m001 -> m002 -> ... -> m{N - 2} -> m{N - 1} -> m000 ({N} models, errors)"
    assert f"FallbackChain default/c000 spec.fallbacks: fallback cycle {said}" in verdict.message
    assert len(verdict.message) < 400


def test_relabelling_a_chain_on_a_long_cycle_is_admitted_with_a_warning(provider, gateway, chain) -> None:
    closed = [*line(chain), chain(f"c{N - 1:03d}", f"m{N - 1:03d}", "m000")]
    w = world(gateway(), *providers(provider), *closed)
    old = closed[5]
    verdict = admission.review(w, chain("c005", "m005", "m006", labels={"team": "x"}), old)
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert f"on fallback cycle m000 -> ... -> m000 ({N} models, errors)" in warning
    assert warning.endswith("it was so before this change")


def test_a_gateway_binding_a_long_cycle_is_warned_in_a_few_names(provider, gateway, chain) -> None:
    closed = [*line(chain), chain(f"c{N - 1:03d}", f"m{N - 1:03d}", "m000")]
    w = world(*providers(provider), *closed)
    verdict = admission.review(w, gateway())
    (warning,) = verdict.warnings
    assert f"binds chains on fallback cycle m000 -> ... -> m000 ({N} models, errors)" in warning
    assert f"default/c008, and {N - 9} more will be left out" in warning
    assert len(warning) < 500


def test_a_provider_that_closes_a_long_cycle_is_warned_once(provider, gateway, chain) -> None:
    # The last link, m299 -> m000, counts only once m000 is served.
    closed = [*line(chain), chain(f"c{N - 1:03d}", f"m{N - 1:03d}", "m000")]
    rest = providers(provider)[1:]
    w = world(gateway(), provider("p0", *names()[1:10]), *rest, *closed)
    verdict = admission.review(w, provider("p0", *names()[:10]))
    assert verdict.allowed
    (warning,) = [x for x in verdict.warnings if "closes" in x]
    assert f"closes fallback cycle m000 -> ... -> m000 ({N} models, errors)" in warning
    assert len(warning) < 500
