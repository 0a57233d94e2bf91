"""The fake backends speak vLLM's and Ollama's wire formats, stream, fail on demand, and record."""

from __future__ import annotations

import json

import aiohttp

from llmgw.demo import backends, discovery, summary


async def test_openai_and_ollama_chats_streams_and_failing() -> None:
    fake = backends.FakeBackend("vllm", {"m"})
    await fake.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(
                f"{fake.url}/v1/chat/completions?x=1",
                json={"model": "m", "messages": []},
                headers={"Authorization": "Bearer k"},
            ) as rsp:
                body = await rsp.json()
            assert body["choices"][0]["message"]["content"] == backends.answer_text("vllm", "m")
            async with s.post(f"{fake.url}/v1/chat/completions", json={"model": "m", "stream": True}) as rsp:
                text = await rsp.text()
            assert text.endswith("data: [DONE]\n\n")
            words = [
                json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                for line in text.splitlines()
                if line.startswith("data: {")
            ]
            assert "".join(words) == backends.answer_text("vllm", "m")
            async with s.post(f"{fake.url}/api/chat", json={"model": "m"}) as rsp:
                lines = [json.loads(x) for x in (await rsp.text()).splitlines()]
            assert lines[-1]["done"] is True
            async with s.post(f"{fake.url}/api/chat", json={"model": "m", "stream": False}) as rsp:
                assert (await rsp.json())["message"]["content"] == backends.answer_text("vllm", "m")
            async with s.post(f"{fake.url}/api/chat", json={"model": "other", "stream": False}) as rsp:
                assert rsp.status == 404
            async with s.get(f"{fake.url}/api/tags") as rsp:
                assert [m["name"] for m in (await rsp.json())["models"]] == ["m"]
            with fake.failing_now():
                async with s.post(f"{fake.url}/v1/chat/completions", json={"model": "m"}) as rsp:
                    assert rsp.status == 500
                    assert (await rsp.json())["error"]["message"] == "vllm is failing on purpose"
            assert not fake.failing
            assert fake.chats == 6
            first, *_ = received = fake.received()
            assert [r.api for r in received] == ["openai", "openai", "ollama", "ollama", "ollama", "openai"]
            assert (first.path, first.query, first.authorization) == (
                "/v1/chat/completions",
                {"x": ["1"]},
                "Bearer k",
            )
            assert first.body == {"model": "m", "messages": []}
            assert fake.counts() == {"m": 5, "other": 1}
            fake.failing = True
            fake.reset()
            assert (fake.received(), fake.failing, fake.chats) == ([], False, 6)
    finally:
        await fake.close()


def test_printer_column_paths() -> None:
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True"}], "effectiveOrder": ["a", "b"]}}
    assert discovery.jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert discovery.jsonpath(obj, ".status.effectiveOrder") == [["a", "b"]]
    assert discovery.jsonpath(
        {"metadata": {"annotations": {"a/b": "x"}}}, '.metadata.annotations["a/b"]'
    ) == ["x"]
    assert discovery.jsonpath(obj, ".status.missing") == []


def test_summary_names_the_rollback_and_the_master_key() -> None:
    gateway = {
        "metadata": {"name": "gw", "namespace": "ai"},
        "status": {
            "revision": "aaa",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {
                    "type": "RolledBack",
                    "status": "True",
                    "reason": "CrashLoopBackOff",
                    "message": "revision bbb failed",
                },
            ],
        },
    }
    key = {"metadata": {"name": "gw-master-key", "namespace": "ai"}, "stringData": {"master-key": "sk-demo"}}
    world = summary.World(gateways=[gateway], secrets=[key], ports={("ai", "gw"): 4000})
    text = summary.render(world)
    assert "rolled back (CrashLoopBackOff): revision bbb failed" in text
    assert "Authorization: Bearer sk-demo" in text
    assert "http://127.0.0.1:4000/v1/chat/completions" in text
