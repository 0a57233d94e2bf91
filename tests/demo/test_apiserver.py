"""The API server emulator (`llmgw.demo.apiserver`) where it mends kmock: named lookups by name,
request bodies as large as kube-apiserver takes, and the API server's size validation (422).

Served over HTTP by kmock's own server, as the integration suite and `llmgw demo` serve it.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import pytest
from kmock._internal import rendering

from llmgw.core import revisions
from llmgw.demo import apiserver

Api = tuple[apiserver.Emulator, kmock.Server]
LIMIT = apiserver.CONFIGMAP_LIMIT
NOTES = apiserver.ANNOTATIONS_LIMIT
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with apiserver.Emulator() as emulator, kmock.Server(emulator) as server:
        apiserver.register(emulator)
        yield emulator, server


async def call(server: kmock.Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The status and JSON answer of one request; `body` is sent as JSON (non-ASCII escaped, as
    Python's json and most clients send it)."""
    kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
    data = None if body is None else io.BytesIO(json.dumps(body).encode())
    async with server.client.request(method, path, data=data, headers={"Content-Type": kind}) as rsp:
        text = await rsp.text()
        return rsp.status, json.loads(text) if rsp.content_type == "application/json" else text


async def status(server: kmock.Server, method: str, path: str, body: Any = None) -> int:
    return (await call(server, method, path, body))[0]


async def post(server: kmock.Server, body: dict[str, Any]) -> int:
    """Create a ConfigMap in its namespace; the status."""
    return await status(server, "POST", CONFIGMAPS.format(ns=body["metadata"]["namespace"]), body)


def configmap(name: str, namespace: str = "a", **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, **fields.pop("metadata", {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **fields}


async def which(server: kmock.Server, path: str) -> str | int:
    """The `data.which` of the object at `path`, or the status when there is none."""
    status, body = await call(server, "GET", path)
    return str(body["data"]["which"]) if status == 200 else status


async def test_a_named_lookup_finds_the_object_of_that_name_across_namespaces_and_kinds(api: Api) -> None:
    emulator, server = api
    a, b = CONFIGMAPS.format(ns="a") + "/x", CONFIGMAPS.format(ns="b") + "/x"
    secret, space = "/api/v1/namespaces/a/secrets/x", "/api/v1/namespaces/x"
    assert await post(server, configmap("x", "a", data={"which": "a"})) == 201
    assert await post(server, configmap("x", "b", data={"which": "b"})) == 201
    sec = {"metadata": {"name": "x", "namespace": "a"}, "data": {"which": "c2VjcmV0"}}
    assert await status(server, "POST", "/api/v1/namespaces/a/secrets", sec) == 201
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "data": {"which": "ns"}}
    assert await status(server, "POST", "/api/v1/namespaces", ns) == 201
    assert [await which(server, p) for p in (a, b, secret, space)] == ["a", "b", "c2VjcmV0", "ns"]
    assert await which(server, CONFIGMAPS.format(ns="c") + "/x") == 404

    assert await status(server, "DELETE", a) == 200
    assert [await which(server, p) for p in (a, b, secret, space)] == [404, "b", "c2VjcmV0", "ns"]
    assert await status(server, "PATCH", a, {"data": {"which": "gone"}}) == 404
    assert await post(server, configmap("x", "a", data={"which": "again"})) == 201
    assert await status(server, "PATCH", a, {"data": {"which": "patched"}}) == 200
    assert [await which(server, a), await which(server, b)] == ["patched", "b"]

    # Forgotten by the test (kmock's hard delete): gone, and may be created anew.
    del emulator.objects["v1/configmaps", "b", "x"]
    assert await which(server, b) == 404
    assert await post(server, configmap("x", "b", data={"which": "new"})) == 201
    assert await which(server, b) == "new"

    # A finalizer holds a deleted object until it is removed.
    held, path = configmap("held", data={"which": "held"}), CONFIGMAPS.format(ns="a") + "/held"
    held["metadata"]["finalizers"] = ["test/hold"]
    assert await post(server, held) == 201
    assert await status(server, "DELETE", path) == 200
    assert await which(server, path) == "held"
    assert await status(server, "PATCH", path, {"metadata": {"finalizers": []}}) == 200
    assert await which(server, path) == 404
    assert await post(server, held) == 201

    emulator.objects.clear()
    assert [await which(server, p) for p in (a, b, path, space)] == [404] * 4
    assert await post(server, configmap("x", "a", data={"which": "3rd"})) == 201
    assert await which(server, a) == "3rd"


def test_the_index_finds_what_kmocks_walk_finds() -> None:
    """Every lookup kmock makes, named or not, strict or not, gives the same objects in the same
    order as kmock's own walk over every object, after writes, soft deletes and forgetting."""
    emulator = apiserver.Emulator()
    cms, secrets = kmock.resource("v1/configmaps"), kmock.resource("v1/secrets")
    spaces = kmock.resource("v1/namespaces")
    for i in range(60):
        emulator.objects[cms, f"ns-{i % 3}", f"o-{i % 20}"] = {"i": i}
        emulator.objects[secrets, f"ns-{i % 4}", f"o-{i % 15}"] = {"i": i}
    for name in ("o-1", "o-2", "ns-0"):
        emulator.objects[spaces, None, name] = {}
    emulator.objects[cms, "ns-1", "o-4"].delete()  # soft: the key stays
    del emulator.objects[cms, "ns-2", "o-5"]  # forgotten
    del emulator.objects[secrets, "ns-0", "o-0"]
    emulator.objects[secrets, "ns-0", "o-0"] = {"again": True}  # moves to the end

    walk = kmock.KubernetesEmulator._KubernetesEmulator__get_objs  # type: ignore[attr-defined]
    names: list[str | None] = [None, "", "absent", *(f"o-{i}" for i in range(21)), "ns-0"]
    found_some = 0
    for res in (cms, secrets, spaces, kmock.resource("v1/pods")):
        for ns in (None, "ns-0", "ns-1", "ns-2", "ns-3", "ns-9"):
            for wanted in names:
                request = rendering.Request(resource=res, namespace=ns, name=wanted)
                for strict in (True, False):
                    found = emulator._KubernetesEmulator__get_objs(request, strict)
                    assert [id(o) for o in found] == [id(o) for o in walk(emulator, request, strict)]
                    found_some += bool(found)
    assert found_some > 100


def test_the_index_follows_every_way_the_store_changes() -> None:
    r, q = kmock.resource("v1/configmaps"), kmock.resource("v1/secrets")
    store = apiserver.ByName([((r, "a", "x"), 1), ((q, "a", "x"), 2)])
    store[r, "b", "x"] = 3
    store.update({(r, "a", "y"): 4})
    store |= {(q, None, "y"): 5}
    store.setdefault((r, "c", "z"), 6)
    assert {name: list(store.named(name)) for name in ("x", "y", "z")} == {
        "x": [(r, "a", "x"), (q, "a", "x"), (r, "b", "x")],
        "y": [(r, "a", "y"), (q, None, "y")],
        "z": [(r, "c", "z")],
    }
    del store[q, "a", "x"]
    assert store.pop((r, "a", "y")) == 4
    assert store.pop((r, "a", "y"), None) is None
    assert store.popitem() == ((r, "c", "z"), 6)
    assert store.names == {"x": {(r, "a", "x"): None, (r, "b", "x"): None}, "y": {(q, None, "y"): None}}
    store.clear()
    assert (store, store.names) == ({}, {})


async def test_a_named_request_tests_only_the_objects_of_its_name(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kmock's test of each stored key against a request is run on the keys of its name only: a
    get, patch, create or delete among 2,000 objects tests a few keys, not all of them."""
    emulator, server = api
    cms, secrets = kmock.resource("v1/configmaps"), kmock.resource("v1/secrets")
    for i in range(1000):
        ns, name = f"ns-{i % 8}", f"o-{i}"
        emulator.objects[cms, ns, name] = configmap(name, ns, data={"which": str(i)})
        emulator.objects[secrets, ns, name] = {"metadata": {"name": name}}
    tested: list[Any] = []
    check: Callable[..., bool] = emulator._KubernetesEmulator__check  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> bool:
        tested.append(args)
        return check(*args, **kwargs)

    monkeypatch.setattr(emulator, "_KubernetesEmulator__check", counted, raising=False)
    path = CONFIGMAPS.format(ns="ns-2") + "/o-762"
    assert await which(server, path) == "762"
    assert len(tested) <= 2  # the ConfigMap and the Secret of that name
    for method, target, body in [
        ("PATCH", path, {"data": {"which": "patched"}}),
        ("POST", CONFIGMAPS.format(ns="ns-2"), configmap("new", "ns-2", data={"which": "new"})),
        ("DELETE", path, None),
    ]:
        tested.clear()
        assert await status(server, method, target, body) in (200, 201)
        assert len(tested) <= 4, method
    tested.clear()
    assert await status(server, "GET", CONFIGMAPS.format(ns="ns-2")) == 200
    assert len(tested) >= 2000  # a list walks them all, as kmock does: the count counts


async def test_a_request_body_over_1_mib_is_taken_and_over_3_mib_refused(api: Api) -> None:
    """aiohttp's default limit is 1 MiB; kube-apiserver takes 3 MiB. 400,000 'é' are 800,000 bytes
    of data (under the ConfigMap limit) and 2.4 MB of JSON."""
    _, server = api
    body = configmap("wide", data={"which": "é" * 400_000})
    assert 2 * apiserver.MIB < len(json.dumps(body)) < apiserver.MAX_REQUEST_BODY
    assert await post(server, body) == 201
    assert await which(server, CONFIGMAPS.format(ns="a") + "/wide") == "é" * 400_000
    assert await post(server, configmap("over", data={"which": "é" * 600_000})) == 413


def blob(n: int) -> str:
    return base64.b64encode(b"\0" * n).decode()


TOO_LONG = "Too long: must have at most {} bytes"
SIZES = [
    ("at the limit", {"data": {"a": "x" * LIMIT}}, True),
    ("one byte over", {"data": {"a": "x" * LIMIT, "b": "y"}}, False),
    ("keys are not counted", {"data": {"k" * 250: "x" * LIMIT}}, True),
    ("bytes, not characters", {"data": {"a": "x" * (LIMIT - 1) + "é"}}, False),
    ("binaryData counted decoded", {"binaryData": {"a": blob(LIMIT)}}, True),
    ("data and binaryData together", {"data": {"a": "x"}, "binaryData": {"b": blob(LIMIT)}}, False),
]


@pytest.mark.parametrize(("fields", "taken"), [s[1:] for s in SIZES], ids=[s[0] for s in SIZES])
async def test_a_configmap_over_1_mib_of_data_is_refused_with_the_api_servers_422(
    api: Api, fields: dict[str, Any], taken: bool
) -> None:
    emulator, server = api
    code, answer = await call(server, "POST", CONFIGMAPS.format(ns="a"), configmap("big", **fields))
    stored = await status(server, "GET", CONFIGMAPS.format(ns="a") + "/big")
    if taken:
        assert (code, stored, emulator.invalid) == (201, 200, [])
        return
    message = f'ConfigMap "big" is invalid: []: {TOO_LONG.format(LIMIT)}'
    assert (code, answer["reason"], answer["message"]) == (422, "Invalid", message)
    cause = {"reason": "FieldValueTooLong", "message": TOO_LONG.format(LIMIT), "field": "[]"}
    assert answer["details"]["causes"] == [cause]
    assert stored == 404
    assert emulator.invalid == [("create", "configmaps", "a", "big", message)]


async def test_a_patch_that_makes_a_configmap_too_large_is_refused_and_changes_nothing(api: Api) -> None:
    _, server = api
    assert await post(server, configmap("c", data={"a": "x" * LIMIT})) == 201
    path = CONFIGMAPS.format(ns="a") + "/c"
    code, answer = await call(server, "PATCH", path, {"data": {"b": "y"}})
    assert (code, answer["message"]) == (422, f'ConfigMap "c" is invalid: []: {TOO_LONG.format(LIMIT)}')
    assert (await call(server, "GET", path))[1]["data"] == {"a": "x" * LIMIT}
    assert await status(server, "PATCH", path, {"data": {"a": None, "b": "y"}}) == 200  # smaller: taken


KINDS = [
    (CONFIGMAPS.format(ns="a"), "ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap"}),
    (
        "/apis/apps/v1/namespaces/a/deployments",
        "Deployment.apps",
        {"apiVersion": "apps/v1", "kind": "Deployment"},
    ),
    (
        "/apis/llmgateway.dev/v1alpha1/namespaces/a/llmgateways",
        "LLMGateway.llmgateway.dev",
        {"apiVersion": "llmgateway.dev/v1alpha1", "kind": "LLMGateway", "spec": {}},
    ),
]


@pytest.mark.parametrize(("path", "kind", "body"), KINDS, ids=[k[1] for k in KINDS])
async def test_annotations_over_256_kib_are_refused_with_the_api_servers_422(
    api: Api, path: str, kind: str, body: dict[str, Any]
) -> None:
    _, server = api
    at = {**body, "metadata": {"name": "at", "annotations": {"a": "x" * (NOTES - 4), "b": "é"}}}
    assert await status(server, "POST", path, at) == 201  # 1 + 262140 + 1 + 2 bytes
    over = {**body, "metadata": {"name": "over", "annotations": {"a": "x" * (NOTES - 4), "b": "éy"}}}
    code, answer = await call(server, "POST", path, over)
    message = f'{kind} "over" is invalid: metadata.annotations: {TOO_LONG.format(NOTES)}'
    assert (code, answer["reason"], answer["message"]) == (422, "Invalid", message)
    assert await status(server, "GET", f"{path}/over") == 404
    code, answer = await call(server, "PATCH", f"{path}/at", {"metadata": {"annotations": {"c": ""}}})
    assert (code, answer["message"]) == (422, message.replace('"over"', '"at"'))


async def test_every_size_error_is_named_as_the_api_server_aggregates_them(api: Api) -> None:
    _, server = api
    both = configmap("both", data={"a": "x" * (LIMIT + 1)}, metadata={"annotations": {"a": "x" * NOTES}})
    code, answer = await call(server, "POST", CONFIGMAPS.format(ns="a"), both)
    errors = f"metadata.annotations: {TOO_LONG.format(NOTES)}, []: {TOO_LONG.format(LIMIT)}"
    assert (code, answer["message"]) == (422, f'ConfigMap "both" is invalid: [{errors}]')


async def test_the_limits_can_be_lowered_for_a_test(api: Api) -> None:
    emulator, server = api
    emulator.configmap_limit = 10
    code, answer = await call(server, "POST", CONFIGMAPS.format(ns="a"), configmap("s", data={"a": "x" * 11}))
    assert (code, answer["message"]) == (422, f'ConfigMap "s" is invalid: []: {TOO_LONG.format(10)}')


@pytest.mark.parametrize(
    "body",
    [{**configmap("c"), **fields} for _, fields, _ in SIZES]
    + [
        configmap("n", metadata={"annotations": {"a": "x" * (NOTES - 1)}}),
        configmap("n", metadata={"annotations": {"a": "x" * NOTES}}),
        configmap("n", metadata={"annotations": {"a": "é" * (NOTES // 2)}}),
        configmap("n", data={"a": "x"}, binaryData={"b": "not base64!"}),
    ],
)
def test_the_operator_judges_sizes_as_the_emulated_api_server_does(body: dict[str, Any]) -> None:
    """`revisions.too_large` (what the operator will not try to store) agrees with what the
    emulator refuses."""
    assert (revisions.CONFIGMAP_LIMIT, revisions.ANNOTATIONS_LIMIT) == (LIMIT, NOTES)
    assert (revisions.too_large(body) is None) == (apiserver.size_errors("configmaps", body) == [])
