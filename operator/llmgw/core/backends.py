"""What the operator observed of the backends: Services, ready endpoints, model lists, Redis.

Observations are inputs like any other: the gatherer puts them in the Estate,
and pure functions decide what they mean. Readiness and probe results feed
statuses only; a render changes only where discovery decides the models a
provider serves, or where the cache comes and goes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from llmgw.api.common import MODEL_NAME_MAX, MODEL_NAME_PATTERN
from llmgw.core import keys

_NAME = re.compile(MODEL_NAME_PATTERN)


@dataclasses.dataclass(frozen=True)
class Probe:
    """The last model-list probe of one provider."""

    models: tuple[str, ...] | None = None
    """The backend's model ids, sorted; None when the probe failed or has not run."""
    error: str | None = None
    """Why the last probe failed, in a sentence."""


@dataclasses.dataclass(frozen=True)
class Backends:
    """Observations of the world outside our objects; empty offline."""

    services_known: bool = False
    """Whether `services` lists every Service (so a missing one really is missing)."""
    ready_endpoints: Mapping[keys.Key, int] = dataclasses.field(default_factory=dict)
    """Service -> ready endpoints across its EndpointSlices."""
    probes: Mapping[keys.Key, Probe] = dataclasses.field(default_factory=dict)
    """Provider -> its last discovery probe."""
    cache_available: Mapping[keys.Key, bool] = dataclasses.field(default_factory=dict)
    """Gateway -> whether its Redis is up (after hysteresis); absent means assume up."""
    secret_versions: Mapping[keys.Key, str] = dataclasses.field(default_factory=dict)
    """Secret -> its resourceVersion, where the operator watches Secret metadata."""


def servable(ids: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split discovered model ids into those that can be served by name and those that cannot."""
    good = tuple(
        i for i in ids if len(i) <= MODEL_NAME_MAX and _NAME.match(i) and not i.startswith("os.environ/")
    )
    bad = tuple(i for i in ids if i not in good)
    return good, bad


@dataclasses.dataclass(frozen=True)
class Hysteresis:
    """Flip a boolean only after `threshold` consecutive observations of the other value."""

    value: bool = True
    streak: int = 0
    threshold: int = 3

    def observe(self, ok: bool) -> Hysteresis:
        if ok == self.value:
            return dataclasses.replace(self, streak=0)
        if self.streak + 1 >= self.threshold:
            return dataclasses.replace(self, value=ok, streak=0)
        return dataclasses.replace(self, streak=self.streak + 1)
