"""A config revision: one render, stored as immutable ConfigMaps, named by its hash.

Everything that says what a revision is lives here, so that the reconciler, the
rollout planner, statuses and the CLI cannot disagree: the name
`<gateway>-config-<short hash>`, how short the hash is, what the ConfigMap
stores (the config, the inputs it was made from, the Secret env it reads),
which revision a pod template carries, and which revisions' ConfigMaps may go.

A revision too large for one ConfigMap (about 4,000 models) is split: its
ConfigMap keeps `config.yaml` without the models, which LiteLLM's `include` joins
from `models-<i>.yaml` files, one in each shard `<gateway>-config-<short hash>-<i>`,
and the pods mount them all in one folder (a projected volume). The split is the
render's alone, so the same render always gives the same shards; a revision that
fits stays the one ConfigMap it always was, byte for byte. Sizes are counted as the
API server counts them (`ValidateConfigMap`: the bytes of every `data` and
`binaryData` value, keys not counted, at most 1 MiB; `ValidateAnnotationsSize`: the
bytes of every annotation's key and value, at most 256 KiB).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmgw.core import render

SHORT_LENGTH = 10
"""A revision is the first 10 hex digits of its render hash."""

CONFIG_HASH = "llmgateway.dev/config-hash"
"""Annotation with the full render hash: on revision ConfigMaps, the Deployment and its pod template."""
SEQUENCE = "llmgateway.dev/sequence"
"""Annotation on a revision's ConfigMap: its place in the order revisions were made."""
INPUTS = "llmgateway.dev/inputs"
"""Annotation on a revision's ConfigMap: which objects at which generation made it."""
ENV = "llmgateway.dev/env"
"""Annotation on a revision's ConfigMap: the Secret env its config reads, so a rollback can run it again."""
REVISION_LABEL = "llmgateway.dev/revision"
"""Label on a revision's ConfigMaps: its revision (short hash)."""
SHARDS = "llmgateway.dev/shards"
"""Annotation on a split revision's ConfigMap: how many shards hold its models."""
SHARD = "llmgateway.dev/shard"
"""Annotation on a shard of a split revision: its number, from 1 (a shard is no revision of its own)."""

CONFIG_KEY = "config.yaml"
INPUTS_KEY = "inputs.json"
INCLUDE = "include"
"""LiteLLM's config key for more config files, named relative to the config; their
`model_list` entries are appended to the config's (`litellm/proxy/common_utils/config_includes.py`)."""
CONFIGMAP_LIMIT = 1024 * 1024
"""The API server refuses a ConfigMap whose data and binaryData values add up to more
than 1 MiB (`MaxSecretSize`). Read when used, so a test may lower it."""
ANNOTATIONS_LIMIT = 256 * 1024
"""The API server refuses an object whose annotations, keys and values, add up to more than 256 KiB."""
INPUTS_ANNOTATION_LIMIT = 32 * 1024
"""Above this the inputs are listed only in the data, and the annotation says how many."""


def short(hash_: str) -> str:
    """The revision of a render hash (a revision is its own revision)."""
    return hash_[:SHORT_LENGTH]


def name(gateway: str, hash_: str, shard: int = 0) -> str:
    """The ConfigMap of a revision, from the full hash or the revision; with `shard`, that shard's."""
    return f"{gateway}-config-{short(hash_)}" + (f"-{shard}" if shard else "")


def names(gateway: str, hash_: str, shards: int = 0) -> tuple[str, ...]:
    """Every ConfigMap of a revision: its own, then its shards'."""
    return tuple(name(gateway, hash_, i) for i in range(shards + 1))


def revision_of(gateway: str, config_map: str) -> str:
    """The revision ConfigMap that a ConfigMap of the gateway belongs to: a shard's revision's,
    else itself."""
    rest = config_map.removeprefix(f"{gateway}-config-")
    head, dash, tail = rest.rpartition("-")
    if rest != config_map and dash and len(head) == SHORT_LENGTH and tail.isdigit() and tail[0] != "0":
        return f"{gateway}-config-{head}"
    return config_map


def shard_key(shard: int) -> str:
    """The file of a shard's models, in the shard's data and in the pods' config folder."""
    return f"models-{shard}.yaml"


def volume(gateway: str, hash_: str, shards: int = 0) -> dict[str, Any]:
    """The pods' config volume of a revision (without its name): its ConfigMap, or a split
    revision's ConfigMap and shards projected into one folder, where `include` finds them."""
    if not shards:
        return {"configMap": {"name": name(gateway, hash_)}}
    return {"projected": {"sources": [{"configMap": {"name": n}} for n in names(gateway, hash_, shards)]}}


@dataclasses.dataclass(frozen=True)
class Contents:
    """What one of a revision's ConfigMaps holds besides the metadata every owned object carries."""

    annotations: dict[str, str]
    labels: dict[str, str]
    data: dict[str, str]
    shard: int = 0
    """0 for the revision's own ConfigMap, i for its i-th shard."""


def contents(rendered: render.Rendered, inputs: Sequence[str], sequence: int) -> Contents:
    """One ConfigMap: the config, which objects at which generation made it, and the env it reads."""
    listed = json.dumps(sorted(inputs), separators=(",", ":"))
    env = json.dumps([[e.name, e.secret, e.key] for e in rendered.env], separators=(",", ":"))
    return Contents(
        annotations={
            CONFIG_HASH: rendered.hash,
            SEQUENCE: str(sequence),
            ENV: env,
            INPUTS: listed
            if len(listed) <= INPUTS_ANNOTATION_LIMIT
            else f"{len(inputs)} objects; see data {INPUTS_KEY}",
        },
        labels={REVISION_LABEL: short(rendered.hash)},
        data={CONFIG_KEY: rendered.text, INPUTS_KEY: listed + "\n"},
    )


SHARD_HEAD = (
    "# Models of a config revision rendered by llmgw; its config.yaml includes this file.\nmodel_list:\n"
)
_SPLIT_NOTE = "# The models are in the files below, one ConfigMap of this revision each.\n"
_MODEL_LIST = "model_list:\n"
_ITEM = re.compile(r"^- ", re.MULTILINE)
_TOP_LEVEL = re.compile(r"^(?!- |\s|$)", re.MULTILINE)
"""A line of the dump's top level: not an item of a list at the top, not indented, not empty."""


def layout(
    rendered: render.Rendered,
    inputs: Sequence[str],
    sequence: int,
    *,
    split: bool = False,
) -> tuple[Contents, ...]:
    """The revision's ConfigMaps, its own first: one, as `contents`, where the render and its
    inputs fit; else the config without its models (and with `include`) and the inputs, then
    shards of whole models in the render's order, each as full as the limit allows.

    `split=True` splits whatever the size (the revision's ConfigMap exists split and a shard
    is written again). Where the render cannot be split (a model alone over the limit), the
    one ConfigMap is returned and `too_large` says why it cannot be stored.
    """
    whole = contents(rendered, inputs, sequence)
    if not split and data_size({"data": whole.data}) <= CONFIGMAP_LIMIT:
        return (whole,)
    parts = _models(rendered)
    chunks = None if parts is None else _pack(parts[1], CONFIGMAP_LIMIT - len(SHARD_HEAD.encode()))
    if parts is None or not chunks:
        return (whole,)
    before, _, after = parts
    include = "".join(f"- {shard_key(i)}\n" for i in range(1, len(chunks) + 1))
    config = before + _SPLIT_NOTE + f"{INCLUDE}:\n" + include + after
    own = Contents(
        annotations={**whole.annotations, SHARDS: str(len(chunks))},
        labels=whole.labels,
        data={CONFIG_KEY: config, INPUTS_KEY: whole.data[INPUTS_KEY]},
    )
    shards = tuple(
        Contents(
            annotations={CONFIG_HASH: rendered.hash, SEQUENCE: str(sequence), SHARD: str(i)},
            labels=whole.labels,
            data={shard_key(i): SHARD_HEAD + "".join(chunk)},
            shard=i,
        )
        for i, chunk in enumerate(chunks, 1)
    )
    return (own, *shards)


def _models(rendered: render.Rendered) -> tuple[str, list[str], str] | None:
    """The render's text around its top-level `model_list`, and the text of each entry, cut from
    the render's own bytes (dumping 10,000 entries again would take seconds); None where the
    text is not laid out so (then the revision is not split)."""
    text = rendered.text
    if text.startswith(_MODEL_LIST):
        at = 0
    else:
        found = text.find("\n" + _MODEL_LIST)
        if found < 0:
            return None
        at = found + 1
    start = at + len(_MODEL_LIST)
    end_match = _TOP_LEVEL.search(text, start)
    end = end_match.start() if end_match else len(text)
    cuts = [m.start() for m in _ITEM.finditer(text, start, end)]
    if not cuts or cuts[0] != start:
        return None
    items = [text[a:b] for a, b in zip(cuts, [*cuts[1:], end], strict=True)]
    listed = rendered.config.get("model_list")
    if not isinstance(listed, Sequence) or len(listed) != len(items):
        return None
    return text[:at], items, text[end:]


def _pack(items: Sequence[str], budget: int) -> list[list[str]] | None:
    """Consecutive items in chunks of at most `budget` bytes each; None if one alone is larger."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for item in items:
        n = len(item.encode())
        if n > budget:
            return None
        if current and size + n > budget:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        chunks.append(current)
    return chunks


def data_size(body: Mapping[str, Any]) -> int:
    """A ConfigMap's size as the API server counts it: the bytes of its data values and of its
    binaryData values (base64 on the wire, counted decoded); keys are not counted."""
    total = sum(len(str(v).encode()) for v in (body.get("data") or {}).values())
    for v in (body.get("binaryData") or {}).values():
        try:
            total += len(base64.b64decode(v, validate=True))
        except (binascii.Error, ValueError, TypeError):
            total += len(str(v).encode())
    return total


def annotations_size(annotations: Mapping[str, str]) -> int:
    """An object's annotations as the API server counts them: the bytes of every key and value."""
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())


def too_large(body: Mapping[str, Any]) -> str | None:
    """Why the API server would refuse this ConfigMap for its size, or None where it fits."""
    meta = body.get("metadata") or {}
    what = f"ConfigMap {meta.get('name', '')}".rstrip()
    data = data_size(body)
    if data > CONFIGMAP_LIMIT:
        return f"{what} would hold {data} bytes of data; a ConfigMap holds at most {CONFIGMAP_LIMIT}"
    notes = annotations_size(meta.get("annotations") or {})
    if notes > ANNOTATIONS_LIMIT:
        return (
            f"{what} would carry {notes} bytes of annotations; an object carries at most {ANNOTATIONS_LIMIT}"
        )
    return None


def sequence(annotations: Mapping[str, str]) -> int:
    """A revision ConfigMap's sequence; 0 where it cannot be read."""
    try:
        return int(annotations.get(SEQUENCE, "0"))
    except ValueError:
        return 0


@dataclasses.dataclass(frozen=True)
class Stored:
    """A revision whose ConfigMap still exists: what the Deployment needs to run it again."""

    revision: str
    hash: str
    env: tuple[render.EnvVar, ...] | None
    """The Secret env the revision's config reads; None on ConfigMaps older than this record."""
    shards: int = 0
    """How many shards hold its models (0: it is one ConfigMap); the pods mount them all."""


def stored(annotations: Mapping[str, str]) -> Stored | None:
    """A revision from its ConfigMap's annotations; None when they do not say which, or on a
    shard (part of a revision, never one of its own)."""
    full = annotations.get(CONFIG_HASH)
    if not full or SHARD in annotations:
        return None
    env: tuple[render.EnvVar, ...] | None = None
    raw = annotations.get(ENV)
    if raw:
        try:
            env = tuple(render.EnvVar(str(n), str(s), str(k)) for n, s, k in json.loads(raw))
        except (ValueError, TypeError):
            env = None
    raw_shards = str(annotations.get(SHARDS, "0"))
    shards = int(raw_shards) if raw_shards.isdigit() else 0
    return Stored(revision=short(full), hash=full, env=env, shards=shards)


def template_hash(deployment: Mapping[str, Any] | None) -> str | None:
    """The full render hash a Deployment's pod template carries."""
    if deployment is None:
        return None
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (template.get("annotations") or {}).get(CONFIG_HASH)
    return str(value) if value else None


def template_revision(deployment: Mapping[str, Any] | None) -> str | None:
    """The revision a Deployment's pod template carries."""
    full = template_hash(deployment)
    return short(full) if full else None


def pod_revision(annotations: Mapping[str, Any]) -> str:
    """The revision a pod was made from (its template's annotation), or ''."""
    return short(str(annotations.get(CONFIG_HASH) or ""))


def prune(
    gateway: str,
    live: Mapping[str, int],
    *,
    current: str,
    history: Sequence[str],
    keep: Iterable[str] = (),
    limit: int,
) -> tuple[str, ...]:
    """The revision ConfigMaps to delete, newest revision first, each revision's own before its shards.

    `live` is the gateway's revision ConfigMaps (name -> sequence), shards included;
    `current` the revision of the render; `history` the revisions of the gateway's status
    history, newest rollout first, whose second is the previous one; `keep` what the
    rollout still needs (the revision that runs, the rollback target). Those are kept
    beyond `limit`; the newest others fill up to it. A revision's shards go and stay with
    it, and count as no revision of their own; shards whose revision's ConfigMap is gone
    take no room (they are kept only if named). Everything here is read from the API (the
    status and the ConfigMaps), so a restarted operator decides the same.
    """
    groups: dict[str, list[str]] = {}
    for n in live:
        groups.setdefault(revision_of(gateway, n), []).append(n)
    order = {g: max(live[n] for n in members) for g, members in groups.items()}
    wanted = {name(gateway, r) for r in (current, *history[1:2], *keep)}
    kept = wanted & set(groups) | {name(gateway, current)}
    newest = sorted(groups, key=lambda g: (order[g], g), reverse=True)
    for candidate in (g for g in newest if g in live):
        if len(kept) >= limit:
            break
        kept.add(candidate)
    return tuple(
        n for g in newest if g not in kept for n in sorted(groups[g], key=lambda n: (n != g, len(n), n))
    )
