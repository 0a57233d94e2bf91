"""Fuzzed objects through the admission webhook: `admission.review` directly, then over HTTPS
against the running operator.

Never an exception; a refusal always says, in a non-empty sentence, which object (`Kind
ns/name`) and why; warnings are sentences, at most `admission.MAX_WARNINGS`; the same review
gives the same verdict, whatever the order the world came in; and a chain is refused for a
fallback cycle only when the pipeline would report that chain `FallbackCycle` once stored,
and always so on a create (an update may keep a cycle that was there).
Over HTTPS, hostile and malformed AdmissionReviews never get a 5xx, a hang or an error in the
log; each well-formed one is answered as `admission.review` answers it against the same
world; and the operator still answers a plain review correctly afterwards.
The number of inputs tried is printed (`pytest -s`).
"""

from __future__ import annotations

import base64
import collections
import copy
import functools
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
from harness import Cluster, chain, eventually, gateway, provider, running
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgw import options
from llmgw.core import admission, estate, findings, objects, pipeline
from ports import free_port

from . import hostile, runs

TRIED: collections.Counter[str] = collections.Counter()
SEEN: collections.Counter[str] = collections.Counter()
"""Outcomes among the inputs tried, so that a run shows what it exercised."""
many = runs.random_inputs(300)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nfuzz inputs tried (webhook): {dict(TRIED)}, {sum(TRIED.values())} in all; {dict(SEEN)}")


# -- what is reviewed, and against what ---------------------------------------------------------


@st.composite
def linked_worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Providers serving a few names and many chains among them: cycles are common."""
    return [
        *draw(st.lists(hostile.providers(twist=4), min_size=1, max_size=3)),
        *draw(st.lists(hostile.chains(), max_size=8)),
        *draw(st.lists(hostile.gateways(), max_size=2)),
    ]


LOOP = ("m0", "m1", "m2")


@st.composite
def looping_chains(draw: st.DrawFn) -> dict[str, Any]:
    """A valid chain among three served names, on one trigger mostly: it often closes a cycle."""
    model = draw(st.sampled_from(LOOP))
    fallbacks = draw(st.lists(st.sampled_from(LOOP).filter(lambda m: m != model), min_size=1, unique=True))
    return {
        "apiVersion": hostile.API_VERSION,
        "kind": "FallbackChain",
        "metadata": {"name": draw(st.sampled_from(hostile.NAMES)), "namespace": "default"},
        "spec": {
            "model": model,
            "fallbacks": fallbacks,
            "trigger": draw(st.sampled_from(("errors", "errors", "contextWindow"))),
        },
    }


@st.composite
def tangled_worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Providers serving the three names, and chains among them: cycles everywhere."""
    served = {
        "apiVersion": hostile.API_VERSION,
        "kind": "LLMProvider",
        "metadata": {"name": "loop", "namespace": "default"},
        "spec": {
            "type": "vllm",
            "endpoint": {"url": "http://vllm:8000/v1"},
            "models": [{"name": m} for m in LOOP],
        },
    }
    return [
        served,
        *draw(st.lists(hostile.providers(twist=3), max_size=2)),
        *draw(st.lists(looping_chains(), min_size=1, max_size=6)),
        *draw(st.lists(hostile.chains(), max_size=2)),
        *draw(st.lists(hostile.gateways(), max_size=2)),
    ]


NAMESPACE_LABELS = st.dictionaries(
    st.sampled_from(hostile.NAMESPACES),
    st.dictionaries(st.sampled_from(("team", "env")), st.sampled_from(("a", "prod"))),
)


def _generated(raw: dict[str, Any]) -> dict[str, Any]:
    """The object as a create with `generateName` sends it: no name yet."""
    meta = raw.get("metadata")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    stem = meta.pop("name", None)
    return {**raw, "metadata": {**meta, "generateName": f"{stem}-" if isinstance(stem, str) else stem}}


def _without(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != key}


@functools.cache
def garbage() -> st.SearchStrategy[Any]:
    """Not an object of ours: wrong types at the top, missing parts, other kinds."""
    ours = hostile.objects_mixed()
    other_kind = ours.map(lambda r: {**r, "kind": "Pod"})
    return st.one_of(
        hostile.junk(),
        st.lists(ours, max_size=2),
        st.just({}),
        ours.map(lambda r: _without(r, "metadata")),
        ours.map(lambda r: _without(r, "kind")),
        ours.map(lambda r: _without(r, "spec")),
        ours.map(lambda r: {**r, "kind": None}),
        ours.map(lambda r: {**r, "metadata": None}),
        other_kind,
        st.dictionaries(hostile.hostile_text(), hostile.junk(), max_size=4),
    )


def candidates() -> st.SearchStrategy[Any]:
    return st.one_of(
        looping_chains(),
        looping_chains(),
        hostile.chains(),
        hostile.chains(),
        hostile.objects_mixed(),
        hostile.raw_objects(),
        hostile.objects_mixed().map(_generated),
        garbage(),
    )


def olds(raws: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """None (a create), an object of the world (an update of it), or anything else."""
    others = [st.sampled_from(raws)] if raws else []
    return st.one_of(st.none(), st.none(), *others, hostile.objects_mixed(), garbage())


# -- invariants -------------------------------------------------------------------------------------


def given_name(raw: Any) -> str | None:
    """`Kind ns/name` of the object reviewed, when it is one of ours and names itself."""
    if (
        not isinstance(raw, Mapping)
        or not isinstance(raw.get("kind"), str)
        or raw["kind"] not in objects.KINDS
    ):
        return None
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    kind, namespace, name = objects.identity(raw)
    return f"{kind} {namespace}/{name}"


def assert_verdict(verdict: Any, raw: Any) -> None:
    assert isinstance(verdict, admission.Verdict)
    assert isinstance(verdict.allowed, bool)
    assert isinstance(verdict.warnings, tuple)
    assert len(verdict.warnings) <= admission.MAX_WARNINGS
    for w in verdict.warnings:
        assert isinstance(w, str)
        assert len(w.split()) >= 2, w
        assert "Traceback" not in w
    assert isinstance(verdict.message, str)
    if verdict.allowed:
        assert verdict.message == ""
        return
    assert len(verdict.message.split()) >= 2, verdict.message
    assert "Traceback" not in verdict.message
    named = given_name(raw)
    if named is not None:
        assert named in verdict.message, (named, verdict.message)


def cycle_on(found: tuple[findings.Finding, ...] | list[findings.Finding], chain: Any) -> bool:
    me = (chain.metadata.namespace, chain.metadata.name)
    return any(
        f.reason == findings.FALLBACK_CYCLE and f.kind == "FallbackChain" and (f.namespace, f.name) == me
        for f in found
    )


@many
@given(
    st.data(),
    st.one_of(hostile.estates(), linked_worlds(), tangled_worlds(), tangled_worlds()),
    NAMESPACE_LABELS,
)
def test_review_never_raises_and_refuses_only_what_the_reconciler_would(
    data: st.DataObject, raws: list[dict[str, Any]], namespaces: dict[str, dict[str, str]]
) -> None:
    TRIED["review"] += 1
    raw = data.draw(candidates(), label="reviewed")
    old = data.draw(olds(raws), label="old")
    world = admission.World(estate.build(raws, namespaces))
    verdict = admission.review(world, raw, old)
    SEEN["allowed" if verdict.allowed else "refused"] += 1
    assert_verdict(verdict, raw)
    # Deterministic: the same review again, and against the same world read in another order.
    assert admission.review(world, copy.deepcopy(raw), copy.deepcopy(old)) == verdict
    again = admission.World(estate.build(list(reversed(raws)), namespaces))
    assert admission.review(again, raw, old) == verdict

    assert_cycles_agree(raws, namespaces, raw, old, verdict)


@settings(many, max_examples=150)
@given(st.data(), tangled_worlds(), NAMESPACE_LABELS)
def test_a_chain_is_refused_for_a_cycle_exactly_when_the_pipeline_would_report_one(
    data: st.DataObject, raws: list[dict[str, Any]], namespaces: dict[str, dict[str, str]]
) -> None:
    """Chains among three served names: about one in five closes a cycle."""
    TRIED["cycles"] += 1
    raw = data.draw(st.one_of(looping_chains(), looping_chains(), hostile.chains()), label="reviewed")
    namesakes = [r for r in raws if objects.identity(r) == objects.identity(raw)]
    old = data.draw(st.one_of(st.none(), st.sampled_from(namesakes or raws)), label="old")
    world = admission.World(estate.build(raws, namespaces))
    verdict = admission.review(world, raw, old)
    assert_verdict(verdict, raw)
    assert_cycles_agree(raws, namespaces, raw, old, verdict)
    # An update that changes nothing leaves any cycle as it was: never refused for one.
    unchanged = admission.review(world, raw, copy.deepcopy(raw))
    assert "fallback cycle" not in unchanged.message, unchanged.message


def assert_cycles_agree(
    raws: list[dict[str, Any]],
    namespaces: dict[str, dict[str, str]],
    raw: Any,
    old: Any,
    verdict: admission.Verdict,
) -> None:
    """A refusal for a cycle names a cycle that the pipeline reports on the chain once stored
    (in place of its namesake); and a create of a chain the pipeline would find on a cycle is
    refused for it."""
    if not isinstance(raw, Mapping) or raw.get("kind") != "FallbackChain":
        assert "fallback cycle" not in verdict.message
        return
    named = admission._named(raw)
    parsed = objects.parse(named)
    if isinstance(parsed, objects.Invalid):
        assert "fallback cycle" not in verdict.message
        return
    me = objects.identity(named)
    stored = [r for r in raws if objects.identity(r) != me] + [named]
    _, found = pipeline.check(estate.build(stored, namespaces))
    cyclic = cycle_on(found, parsed)
    if "fallback cycle" in verdict.message:
        SEEN["refused for a cycle"] += 1
        assert not verdict.allowed
        assert cyclic, f"refused for a cycle the pipeline does not see: {verdict.message}"
    if cyclic and old is None:
        assert not verdict.allowed, "a chain on a fallback cycle was admitted"
        assert "fallback cycle" in verdict.message, verdict.message


# -- over HTTPS, against the running operator ---------------------------------------------------

HTTPS_OBJECTS = 40
PLURALS = {"LLMProvider": "llmproviders", "FallbackChain": "fallbackchains", "LLMGateway": "llmgateways"}
CONFIG_PATH = (
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/validating.llmgateway.dev"
)
KNOWN_NAMESPACES: dict[str, dict[str, str]] = {ns: {} for ns in ("default", "ai", "team-a", "team-b")}


def base() -> list[dict[str, Any]]:
    """What the cluster holds while the reviews come: m0 -> m1 -> m2, so m2 -> m0 closes a cycle."""
    return [
        provider("served", ["m0", "m1", "m2", "llama3:8b"], namespace="default"),
        chain("c01", "m0", ["m1"], namespace="default"),
        chain("c12", "m1", ["m2"], namespace="default"),
        gateway("gw", "default", namespaces={"from": "All"}),
    ]


def draw_reviews(n: int) -> list[tuple[Any, Any]]:
    """n (object, old object) pairs from the fuzz strategies, the same ones every run."""
    out: list[tuple[Any, Any]] = []
    objects_ = st.one_of(
        looping_chains(),
        hostile.objects_mixed(json_only=True),
        hostile.objects_mixed(json_only=True),
        hostile.raw_objects(json_only=True),
    )
    olds_ = st.one_of(st.none(), st.none(), hostile.objects_mixed(json_only=True))

    @runs.the_same_inputs(n)
    @given(objects_, olds_)
    def collect(raw: Any, old: Any) -> None:
        out.append((copy.deepcopy(raw), copy.deepcopy(old)))

    collect()
    return out


def review_body(obj: Any, old: Any = None, *, uid: Any = None) -> dict[str, Any]:
    """An AdmissionReview v1 request as kube-apiserver sends it, for whatever object."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    plural = PLURALS.get(kind, "fallbackchains") if isinstance(kind, str) else "fallbackchains"
    gvk = {"group": "llmgateway.dev", "version": "v1alpha1", "kind": kind if isinstance(kind, str) else ""}
    gvr = {"group": "llmgateway.dev", "version": "v1alpha1", "resource": plural}
    operation = "CREATE" if old is None else "UPDATE"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()) if uid is None else uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": meta.get("name") if isinstance(meta.get("name"), str) else "",
            "namespace": meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
        },
    }


OK, BAD = {200}, {400}


def malformed() -> list[tuple[str, str, Any, set[int]]]:
    """(what, plural, body, the statuses it may get): reviews no API server sends. A body of
    bytes goes as it is (as JSON), a (bytes, content type) pair with that content type."""
    fine = chain("fine", "m2", ["llama3:8b"], namespace="default")
    full = review_body(fine)
    req = full["request"]

    def without(key: str) -> dict[str, Any]:
        return {**full, "request": {k: v for k, v in req.items() if k != key}}

    def with_(**kw: Any) -> dict[str, Any]:
        return {**full, "request": {**req, **kw}}

    huge = provider("huge", ["m0"], namespace="default")
    huge["metadata"]["annotations"] = {"note": "x" * 900_000}
    huger = provider("huger", ["m0"], namespace="default")
    huger["metadata"]["annotations"] = {"note": "🦙" * 400_000}
    deep = json.dumps(with_(object={**fine, "spec": "DEEP"})).replace(
        '"DEEP"', "[" * 5_000 + '"leaf"' + "]" * 5_000
    )
    pods = {"group": "", "version": "v1", "resource": "pods"}
    nested = provider("nested", ["m0"], namespace="default")
    nested["spec"]["models"][0]["params"] = {"extra_body": hostile._nest(900, "x", "a")}
    return [
        ("object null", "fallbackchains", with_(object=None), BAD),
        ("object null, oldObject given", "fallbackchains", with_(object=None, oldObject=fine), OK),
        ("object of another kind", "fallbackchains", review_body({**fine, "kind": "Pod"}), OK),
        ("object a list", "fallbackchains", with_(object=[fine]), BAD),
        ("object a string", "fallbackchains", with_(object="kind: FallbackChain"), BAD),
        ("metadata a string", "fallbackchains", with_(object={**fine, "metadata": "fine"}), BAD),
        ("oldObject of another kind", "fallbackchains", review_body(fine, old=provider("p", ["m0"])), OK),
        ("oldObject a string", "fallbackchains", review_body(fine, old="x"), BAD),
        ("no uid", "fallbackchains", without("uid"), OK),
        ("a uid of unicode", "fallbackchains", with_(uid="ll\u0430ma\u202e🦙"), OK),
        ("a uid that is a number", "fallbackchains", with_(uid=12), OK),
        ("no userInfo", "fallbackchains", without("userInfo"), BAD),
        ("no resource", "fallbackchains", without("resource"), BAD),
        ("a resource of numbers", "fallbackchains", with_(resource={"group": 1, "version": 2}), BAD),
        ("an unknown resource", "fallbackchains", with_(resource=pods), {404}),
        ("an operation nobody sends", "fallbackchains", with_(operation="EXPLODE"), OK),
        ("no request", "fallbackchains", _without(full, "request"), BAD),
        ("request a string", "fallbackchains", {**full, "request": "x"}, BAD),
        ("a JSON list", "fallbackchains", [full], BAD),
        ("JSON null", "fallbackchains", None, BAD),
        ("YAML", "fallbackchains", b"apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n", BAD),
        ("not UTF-8", "fallbackchains", b"\xff\xfe{\x00}", BAD),
        ("a charset nobody knows", "fallbackchains", (b"{}", "application/json; charset=x-bogus"), BAD),
        ("empty", "fallbackchains", b"", BAD),
        ("nested 5,000 deep", "fallbackchains", deep.encode(), BAD),
        ("an object nested 900 deep", "llmproviders", review_body(nested), BAD),  # kopf deep-copies it
        ("about 0.9 MB", "llmproviders", review_body(huge), OK),
        ("about 1.6 MB (over aiohttp's 1 MiB)", "llmproviders", review_body(huger), {413}),
    ]


@pytest.fixture
def reviews() -> list[tuple[Any, Any]]:
    """Drawn before the operator starts: its thread uses `random`, which hypothesis forbids
    while it draws."""
    return draw_reviews(HTTPS_OBJECTS)


@pytest.fixture
async def webhook(cluster: Cluster, settle: float) -> AsyncIterator[dict[str, Any]]:
    """The operator with the webhook on (a self-signed certificate), once it knows `base()`:
    the ValidatingWebhookConfiguration it manages."""
    for obj in base():
        await cluster.apply(obj)
    opts = options.Options(
        settle_seconds=settle,
        max_settle_seconds=3.0,
        webhook=True,
        webhook_port=free_port(),
        webhook_addr="127.0.0.1",
    )
    async for _ in running(opts):

        async def seen() -> bool:
            gw = await cluster.get("LLMGateway", "default", "gw")
            return bool(gw and (gw.get("status") or {}).get("chains") == 2)

        async def configured() -> dict[str, Any] | None:
            config = await cluster._json("GET", CONFIG_PATH)
            return config if config and len(config.get("webhooks") or []) == 3 else None

        await eventually(seen, what="the gateway serving 2 chains")
        yield await eventually(configured, what="the webhook configuration")


class Hooks:
    """POSTs to the operator's webhooks, trusting only the CA bundle configured, as the API server does."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.urls = {
            hook["rules"][0]["resources"][0]: hook["clientConfig"]["url"] for hook in config["webhooks"]
        }
        ca = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]).decode()
        self.client = httpx.AsyncClient(verify=ssl.create_default_context(cadata=ca), timeout=10)

    async def post(self, plural: str, body: Any) -> httpx.Response:
        if isinstance(body, bytes):
            body = (body, "application/json")
        if isinstance(body, tuple):
            content, content_type = body
            headers = {"Content-Type": content_type}
            return await self.client.post(self.urls[plural], content=content, headers=headers)
        return await self.client.post(self.urls[plural], json=body)


def storable(obj: Any) -> bool:
    """An object as an API server holds it, whatever its spec: a mapping whose metadata is one."""
    return isinstance(obj, Mapping) and isinstance(obj.get("metadata", {}), Mapping)


def answered(rsp: httpx.Response, body: Any, what: str) -> dict[str, Any]:
    """The response of a well-formed answer: the uid echoed, a refusal said in words."""
    assert rsp.status_code == 200, (what, rsp.status_code, rsp.text[:500])
    answer = rsp.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1", what
    assert answer["kind"] == "AdmissionReview", what
    response = answer["response"]
    request = body.get("request") if isinstance(body, Mapping) else None
    uid = request.get("uid", "") if isinstance(request, Mapping) else ""
    assert response["uid"] == uid, what
    assert isinstance(response["allowed"], bool), what
    if not response["allowed"]:
        status = response["status"]
        assert status["code"] == 403, (what, status)  # 500 there: the handler raised
        assert isinstance(status["message"], str), what
        assert len(status["message"].split()) >= 2, (what, status)
    for w in response.get("warnings", []):
        assert isinstance(w, str), what
    return dict(response)


@pytest.mark.integration
async def test_hostile_reviews_over_https_never_get_a_5xx_or_a_hang(
    cluster: Cluster,
    reviews: list[tuple[Any, Any]],
    webhook: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hooks = Hooks(webhook)
    world = admission.World(estate.build(base(), KNOWN_NAMESPACES))
    try:
        for raw, old in reviews:
            TRIED["https"] += 1
            body = review_body(raw, old)
            plural = body["request"]["resource"]["resource"]
            rsp = await hooks.post(plural, body)
            if not (storable(raw) and (old is None or storable(old))):
                # No API server sends it: a 4xx, never a 5xx.
                assert 400 <= rsp.status_code < 500, (raw, old, rsp.status_code, rsp.text[:500])
                SEEN[f"https {rsp.status_code}"] += 1
                continue
            response = answered(rsp, body, f"{raw!r:.300}")
            # The webhook says what the validator says against the same world.
            expected = admission.review(world, raw, old)
            assert response["allowed"] == expected.allowed, (raw, response)
            assert response.get("status", {}).get("message", "") == expected.message
            assert response.get("warnings", []) == list(expected.warnings)
            SEEN["https allowed" if expected.allowed else "https refused"] += 1
        for what, plural, body, codes in malformed():
            TRIED["https"] += 1
            rsp = await hooks.post(plural, body)
            assert rsp.status_code in codes, (what, rsp.status_code, rsp.text[:500])
            if rsp.status_code == 200:
                answered(rsp, body, what)
            SEEN[f"https {rsp.status_code}"] += 1

        # Still alive, and still right.
        fine = chain("fine", "m2", ["llama3:8b"], namespace="default")
        plain = review_body(fine)
        assert answered(await hooks.post("fallbackchains", plain), plain, "fine") == {
            "uid": plain["request"]["uid"],
            "allowed": True,
        }
        closing = review_body(chain("c20", "m2", ["m0"], namespace="default"))
        refused = answered(await hooks.post("fallbackchains", closing), closing, "closing")
        assert "fallback cycle m2 -> m0 -> m1 -> m2 (errors)" in refused["status"]["message"]
    finally:
        await hooks.client.aclose()
    # No traceback in the log: a refusal is logged at INFO, a malformed body not at all.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage()[:300] for r in errors]
