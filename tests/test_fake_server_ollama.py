"""Fidelity of the fake Ollama server against the real ``ollama`` clients and functions."""

from __future__ import annotations

import os
import subprocess
import sys

import ollama
import pytest

from tests.servers import provider_fixtures
from tests.servers.ollama_server import OllamaFakeServer, OllamaUsage

ollama_server_session = provider_fixtures.ollama_server_session
ollama_server = provider_fixtures.ollama_server

MSGS = [{"role": "user", "content": "hi"}]
MODEL = "llama3.2"
USAGE = OllamaUsage(prompt_eval_count=31, eval_count=17)


def test_chat_non_stream(ollama_server: OllamaFakeServer) -> None:
    ollama_server.next(usage=USAGE, content="Hoi")
    r = ollama_server.client().chat(model=MODEL, messages=MSGS)
    assert (r.model, r.message.content, r.done, r.done_reason) == (MODEL, "Hoi", True, "stop")
    assert (r.prompt_eval_count, r.eval_count) == (31, 17)
    req = ollama_server.last_request
    assert (req.path, req.json["stream"]) == ("/api/chat", False)
    assert req.headers["user-agent"].startswith("ollama-python/")
    assert "baggage" not in req.headers and "traceparent" not in req.headers


def test_chat_stream_final_done_chunk(ollama_server: OllamaFakeServer) -> None:
    ollama_server.next(usage=USAGE, chunks=3)
    parts = list(ollama_server.client().chat(model=MODEL, messages=MSGS, stream=True))
    assert len(parts) == 4
    assert "".join(p.message.content for p in parts) == "t0 t1 t2 "
    assert [p.done for p in parts] == [False, False, False, True]
    assert all(p.eval_count is None and p.prompt_eval_count is None for p in parts[:-1])
    assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (31, 17)
    assert ollama_server.last_request.json["stream"] is True


def test_generate_and_stream(ollama_server: OllamaFakeServer) -> None:
    client = ollama_server.client()
    ollama_server.configure(usage=USAGE)
    r = client.generate(model=MODEL, prompt="why?")
    assert (r.response, r.prompt_eval_count, r.eval_count, r.context) == (
        "t0 t1 t2 t3 t4 ",
        31,
        17,
        [1, 2, 3],
    )
    parts = list(client.generate(model=MODEL, prompt="why?", stream=True))
    assert parts[-1].done and parts[-1].eval_count == 17
    assert ollama_server.last_request.path == "/api/generate"


def test_embed(ollama_server: OllamaFakeServer) -> None:
    ollama_server.next(usage=OllamaUsage(prompt_eval_count=4))
    r = ollama_server.client().embed(model="all-minilm", input=["a", "b"])
    assert len(r.embeddings) == 2 and r.prompt_eval_count == 4 and r.eval_count is None
    assert ollama_server.last_request.json == {"model": "all-minilm", "input": ["a", "b"]}


def test_cached_prompt_omits_prompt_eval_count(ollama_server: OllamaFakeServer) -> None:
    ollama_server.next(usage=OllamaUsage(prompt_eval_count=None))
    r = ollama_server.client().chat(model=MODEL, messages=MSGS)
    assert r.prompt_eval_count is None and r.eval_count == 14


async def test_async_client(ollama_server: OllamaFakeServer) -> None:
    ollama_server.configure(usage=USAGE, chunks=2)
    client = ollama_server.async_client()
    r = await client.chat(model=MODEL, messages=MSGS)
    assert r.prompt_eval_count == 31
    parts = [p async for p in await client.chat(model=MODEL, messages=MSGS, stream=True)]
    assert parts[-1].done and parts[-1].eval_count == 17
    parts = [p async for p in await client.generate(model=MODEL, prompt="x", stream=True)]
    assert parts[-1].eval_count == 17
    r = await client.embed(model="all-minilm", input="a")
    assert r.prompt_eval_count == 31
    ollama_server.next_error(500)
    with pytest.raises(ollama.ResponseError):
        await client.generate(model=MODEL, prompt="x")


def test_module_level_functions(ollama_server: OllamaFakeServer) -> None:
    ollama_server.configure(usage=USAGE)
    with ollama_server.point_module_client() as module:
        assert module.chat(model=MODEL, messages=MSGS).eval_count == 17
        assert module.generate(model=MODEL, prompt="x").prompt_eval_count == 31
        assert list(module.chat(model=MODEL, messages=MSGS, stream=True))[-1].done
        assert module.embed(model="all-minilm", input="a").prompt_eval_count == 31
    assert [r.path for r in ollama_server.requests] == [
        "/api/chat",
        "/api/generate",
        "/api/chat",
        "/api/embed",
    ]
    # bound to one Client made at import: a class patch after import is not seen through them
    assert ollama.chat.__func__ is ollama.Client.chat


def test_module_level_functions_read_ollama_host_at_import(ollama_server: OllamaFakeServer) -> None:
    code = "import ollama; print(ollama.chat(model='m', messages=[]).eval_count)"
    env = {**os.environ, "OLLAMA_HOST": ollama_server.url}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "14", out.stderr
    assert ollama_server.last_request.path == "/api/chat"


@pytest.mark.parametrize("status", [400, 404, 429, 500])
def test_errors(ollama_server: OllamaFakeServer, status: int) -> None:
    client = ollama_server.client()
    ollama_server.next_error(status, message="nope")
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model=MODEL, messages=MSGS)
    assert (info.value.status_code, info.value.error) == (status, "nope")
    ollama_server.next_error(status)
    with pytest.raises(ollama.ResponseError) as info:
        list(client.chat(model=MODEL, messages=MSGS, stream=True))
    assert info.value.status_code == status


def test_stream_error_and_cuts(ollama_server: OllamaFakeServer) -> None:
    client = ollama_server.client()
    ollama_server.next(error_after=2)
    seen = []
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        for part in client.chat(model=MODEL, messages=MSGS, stream=True):
            seen.append(part)
    assert len(seen) == 2
    ollama_server.next(truncate_after=3)
    parts = list(client.generate(model=MODEL, prompt="x", stream=True))
    assert len(parts) == 3 and not any(p.done for p in parts)
    ollama_server.next(drop_after=3)
    with pytest.raises(Exception):  # noqa: B017 - httpx's RemoteProtocolError
        list(client.generate(model=MODEL, prompt="x", stream=True))
