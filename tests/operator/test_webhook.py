"""The admission webhook over HTTPS, with real AdmissionReview bodies, as the API server sends them.

The operator runs with `--webhook`; kopf manages the ValidatingWebhookConfiguration
in the API server, and the tests call the URL and trust the CA bundle written
there, exactly as the API server would.
"""

from __future__ import annotations

import base64
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Cluster, chain, eventually, gateway, provider, running

from llmgw import runner
from llmgw.handlers import webhook as webhook_server
from llmgw.options import Options
from ports import free_port

pytestmark = [pytest.mark.integration]

CONFIG_PATH = (
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/validating.llmgateway.dev"
)
PLURALS = {"LLMProvider": "llmproviders", "FallbackChain": "fallbackchains", "LLMGateway": "llmgateways"}


def options(settle: float, **kw: Any) -> Options:
    return Options(
        settle_seconds=settle,
        max_settle_seconds=3.0,
        webhook=True,
        webhook_port=free_port(),
        webhook_addr="127.0.0.1",
        **kw,
    )


@pytest.fixture
async def webhook(cluster: Cluster, settle: float) -> AsyncIterator[None]:
    """The operator with the webhook on and a self-signed certificate (no --webhook-cert-dir)."""
    async for _ in running(options(settle)):
        yield


@pytest.fixture
async def estate(cluster: Cluster, webhook: None) -> dict[str, Any]:
    """A gateway, a provider serving a..f (alias aa for a), a chain a -> b -> c -> d -> e; and the
    webhook configuration once the operator has seen them all."""
    served = provider("p", list("abcdef"))
    served["spec"]["models"][0]["aliases"] = ["aa"]
    await cluster.apply(served)
    for src, dst in ("ab", "bc", "cd", "de"):
        await cluster.apply(chain(f"{src}{dst}", src, [dst]))
    await cluster.apply(gateway())

    async def seen() -> bool:
        gw = await cluster.get("LLMGateway", "ai", "gw")
        return bool(gw and (gw.get("status") or {}).get("chains") == 4)

    await eventually(seen, what="the gateway serving 4 chains")
    return dict(await eventually(lambda: configured(cluster), what="the webhook configuration"))


async def configured(c: Cluster) -> dict[str, Any] | None:
    config = await c._json("GET", CONFIG_PATH)
    if not config or len(config.get("webhooks") or []) != 3:
        return None
    return dict(config)


def review_body(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """An AdmissionReview v1 request as kube-apiserver sends it."""
    plural = PLURALS[obj["kind"]]
    gvk = {"group": "llmgateway.dev", "version": "v1alpha1", "kind": obj["kind"]}
    gvr = {"group": "llmgateway.dev", "version": "v1alpha1", "resource": plural}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"].get("namespace", "ai"),
            "operation": operation,
            "userInfo": {
                "username": "kubernetes-admin",
                "groups": ["system:masters", "system:authenticated"],
            },
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
        },
    }


async def send(config: dict[str, Any], obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """POST the review to the URL of the object's webhook, trusting only the CA bundle configured."""
    plural = PLURALS[obj["kind"]]
    (hook,) = [w for w in config["webhooks"] if plural in w["rules"][0]["resources"]]
    ca = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
    context = ssl.create_default_context(cadata=ca)
    body = review_body(obj, **kw)
    async with httpx.AsyncClient(verify=context, timeout=10) as client:
        rsp = await client.post(hook["clientConfig"]["url"], json=body)
    assert rsp.status_code == 200, rsp.text
    answer = rsp.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    return dict(answer["response"])


def refused(response: dict[str, Any]) -> str:
    assert response["allowed"] is False, response
    assert response["status"]["code"] == 403
    return str(response["status"]["message"])


async def test_the_webhook_configuration_is_managed(estate: dict[str, Any]) -> None:
    hooks = {w["name"]: w for w in estate["webhooks"]}
    assert set(hooks) == {f"validate-{p}.validating.llmgateway.dev" for p in PLURALS.values()}
    for plural in PLURALS.values():
        hook = hooks[f"validate-{plural}.validating.llmgateway.dev"]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "None"  # so `kubectl apply --dry-run=server` calls it too
        assert hook["admissionReviewVersions"][0] == "v1"
        (rule,) = hook["rules"]
        assert rule["apiGroups"] == ["llmgateway.dev"]
        assert rule["resources"] == [plural]
        assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
        assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:")
        assert hook["clientConfig"]["url"].endswith(f"/validate-{plural}")
        assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")


async def test_a_valid_chain_is_admitted(estate: dict[str, Any]) -> None:
    answer = await send(estate, chain("fa", "f", ["a"]))
    assert answer["allowed"] is True
    assert "warnings" not in answer


async def test_a_cycle_of_length_one_through_an_alias_is_refused(estate: dict[str, Any]) -> None:
    message = refused(await send(estate, chain("self", "a", ["aa", "f"])))
    assert "FallbackChain ai/self spec.fallbacks[0]" in message
    assert "fallback cycle a -> a" in message


async def test_a_cycle_of_length_two_is_refused_with_its_path(
    estate: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kopf.objects")
    message = refused(await send(estate, chain("ba", "b", ["a"])))
    assert "fallback cycle b -> a -> b (errors) (gateway ai/gw)" in message
    # A refusal is logged as one, at INFO: it is not an error of the operator.
    said = [r for r in caplog.records if r.name == "kopf.objects" and "b -> a -> b" in r.getMessage()]
    assert [(r.levelname, r.getMessage()[:18]) for r in said] == [("INFO", "admission refused:")]


async def test_a_cycle_of_length_five_is_refused_with_its_path(estate: dict[str, Any]) -> None:
    message = refused(await send(estate, chain("ea", "e", ["a"])))
    assert "fallback cycle e -> a -> b -> c -> d -> e (errors)" in message
    assert "remove the link that closes it" in message


async def test_an_unknown_fallback_is_admitted_with_a_warning(estate: dict[str, Any]) -> None:
    answer = await send(estate, chain("fx", "f", ["gpt-9", "a"]))
    assert answer["allowed"] is True
    (warning,) = answer["warnings"]
    assert "FallbackChain ai/fx spec.fallbacks[0]: no enabled provider serves model 'gpt-9'" in warning


async def test_a_malformed_chain_is_refused_with_a_clear_message(estate: dict[str, Any]) -> None:
    bad = chain("bad", "a b", [], trigger="sometimes")
    message = refused(await send(estate, bad))
    assert message.startswith("FallbackChain ai/bad is invalid: ")
    assert (
        "spec.trigger: 'sometimes' is not allowed; use one of 'errors', 'contextWindow' or 'contentPolicy'"
        in (message)
    )
    assert "spec.model: 'a b' must start with a letter or digit" in message
    message = refused(await send(estate, chain("twice", "a", ["b", "b"])))
    assert message == "FallbackChain ai/twice is invalid: spec: fallbacks must be unique; repeated: b"


async def test_malformed_providers_and_gateways_are_refused(estate: dict[str, Any]) -> None:
    message = refused(await send(estate, provider("q", ["x"], type="vllmm")))
    assert "LLMProvider ai/q is invalid: spec.type: 'vllmm' is not allowed" in message
    message = refused(await send(estate, gateway("gw2", routerSettings={"fallbacks": []})))
    assert "spec.routerSettings" in message
    assert (await send(estate, provider("q", ["x"])))["allowed"] is True


async def test_dry_run_gets_the_same_answer_and_changes_nothing(
    cluster: Cluster, estate: dict[str, Any]
) -> None:
    cyclic = chain("ba", "b", ["a"])
    real = await send(estate, cyclic)
    dry = await send(estate, cyclic, dry_run=True)
    assert refused(dry) == refused(real)
    fine = await send(estate, chain("fa", "f", ["a"]), dry_run=True)
    assert fine["allowed"] is True
    # Nothing of the reviews reached the world: a chain d -> a is still a cycle only with
    # the links that exist, and none of the reviewed chains exists.
    assert await cluster.get("FallbackChain", "ai", "ba") is None
    assert await cluster.get("FallbackChain", "ai", "fa") is None


async def test_an_update_that_closes_a_cycle_is_refused_but_relabelling_an_old_one_is_not(
    cluster: Cluster, estate: dict[str, Any]
) -> None:
    old = await cluster.get("FallbackChain", "ai", "de")
    closing = {**old, "spec": {**old["spec"], "fallbacks": ["e", "a"]}}
    message = refused(await send(estate, closing, operation="UPDATE", old=old))
    assert "fallback cycle d -> a -> b -> c -> d" in message
    # A cycle stored while the webhook was off (here: straight into the API server).
    await cluster.apply(chain("ea", "e", ["a"]))

    async def cyclic() -> dict[str, Any] | None:
        obj = await cluster.get("FallbackChain", "ai", "ea")
        conds = (obj.get("status") or {}).get("conditions") or []
        return obj if any(c["reason"] == "FallbackCycle" for c in conds) else None

    stored = await eventually(cyclic, what="the stored cycle reported on status")
    relabelled = {**stored, "metadata": {**stored["metadata"], "labels": {"team": "x"}}}
    answer = await send(estate, relabelled, operation="UPDATE", old=stored)
    assert answer["allowed"] is True
    assert any("it was so before this change" in w for w in answer["warnings"])


async def test_the_webhook_with_a_cert_manager_secret_and_failure_policy_fail(
    cluster: Cluster, settle: float, tmp_path: Path
) -> None:
    # What a cert-manager Certificate's Secret holds, mounted as files.
    ca_cert, _ca_key = webhook_server.self_signed(["llmgw-webhook.llmgw-system.svc", "127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(ca_cert)
    (tmp_path / "tls.key").write_bytes(_ca_key)
    (tmp_path / "ca.crt").write_bytes(ca_cert)
    await cluster.apply(provider("p", ["a", "b"]))
    await cluster.apply(chain("ab", "a", ["b"]))
    await cluster.apply(gateway())
    opts = options(settle, webhook_cert_dir=str(tmp_path), webhook_failure_policy="Fail")
    async for _ in running(opts):
        config = await eventually(lambda: configured(cluster), what="the webhook configuration")
        for hook in config["webhooks"]:
            assert hook["failurePolicy"] == "Fail"
            assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca_cert

        async def answer(config: dict[str, Any] = config) -> str | None:
            response = await send(config, chain("ba", "b", ["a"]))
            return None if response["allowed"] else str(response["status"]["message"])

        message = await eventually(answer, what="the chain a -> b in the operator's index")
        assert "fallback cycle b -> a -> b" in message
    # Stopped, the operator leaves its webhooks registered (another replica may serve them).
    assert await configured(cluster) is not None


@pytest.mark.usefixtures("operator")
async def test_without_the_webhook_nothing_is_configured(cluster: Cluster, settle: float) -> None:
    await cluster.apply(provider("p", ["a", "b"]))
    await cluster.apply(chain("ab", "a", ["b"]))
    await cluster.apply(chain("ba", "b", ["a"]))  # stored: status says what is wrong
    await cluster.apply(gateway())

    async def reported() -> bool:
        obj = await cluster.get("FallbackChain", "ai", "ba")
        conds = (obj.get("status") or {}).get("conditions") or []
        return any(c["reason"] == "FallbackCycle" for c in conds)

    await eventually(reported, what="the cycle on the chain's status")
    assert await cluster._json("GET", CONFIG_PATH) is None


def test_run_options_reach_the_operator() -> None:
    from llmgw import cli

    args = cli._parser().parse_args(
        [
            "run",
            "--webhook",
            "--webhook-port",
            "8443",
            "--webhook-host",
            "llmgw-webhook.llmgw-system.svc",
            "--webhook-cert-dir",
            "/tls",
            "--webhook-failure-policy",
            "Fail",
        ]
    )
    opts = runner.options(args)
    assert (opts.webhook, opts.webhook_port, opts.webhook_host) == (
        True,
        8443,
        "llmgw-webhook.llmgw-system.svc",
    )
    assert (opts.webhook_cert_dir, opts.webhook_failure_policy) == ("/tls", "Fail")
    off = runner.options(cli._parser().parse_args(["run"]))
    assert (off.webhook, off.webhook_port, off.webhook_failure_policy) == (False, 9443, "Ignore")


def test_a_cert_dir_without_its_files_is_a_clear_error(tmp_path: Path) -> None:
    import kopf

    with pytest.raises(kopf.PermanentError, match=r"tls\.crt, tls\.key not found"):
        webhook_server.server(port=9443, host=None, addr="0.0.0.0", cert_dir=str(tmp_path))


def test_the_self_signed_certificate_names_the_host_and_serves_tls() -> None:
    from cryptography import x509

    cert, key = webhook_server.self_signed(["llmgw-webhook.llmgw-system.svc", "127.0.0.1", "0.0.0.0"])
    parsed = x509.load_pem_x509_certificate(cert)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["llmgw-webhook.llmgw-system.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
