"""An ordinary application with no OpenTelemetry code, for ``opentelemetry-instrument`` tests.

It makes real SDK calls to whichever providers have their base URL in the environment
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``: the SDKs read these
themselves), attributing each call with ``customer_context`` (our API, not OpenTelemetry's; it
works, and does nothing harmful, when no instrumentation is active). Its last line of output is
a JSON list describing each call, for the test to compare with what cmdrdata and the collector
received.
"""

from __future__ import annotations

import asyncio
import json
import os

from opentelemetry_instrumentation_cmdrdata import customer_context

MESSAGES = [{"role": "user", "content": "Summarise my order"}]


def call_openai(results: list[dict]) -> None:
    import openai

    client = openai.OpenAI(max_retries=0)
    with customer_context("acme-corp", plan="pro"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    results.append(
        {
            "provider": "openai",
            "customer": "acme-corp",
            "response_id": reply.id,
            "input_tokens": reply.usage.prompt_tokens,
            "output_tokens": reply.usage.completion_tokens,
        }
    )

    # A stream whose caller did not ask for usage: it is billed all the same.
    with customer_context("globex@example.com"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(stream)
    results.append(
        {
            "provider": "openai",
            "customer": "globex@example.com",
            "response_id": chunks[0].id,
            "usage_chunks_seen_by_app": sum(1 for chunk in chunks if chunk.usage),
        }
    )


def call_anthropic(results: list[dict]) -> None:
    import anthropic

    async def ask() -> anthropic.types.Message:
        client = anthropic.AsyncAnthropic(max_retries=0)
        with customer_context("initech"):
            return await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES
            )

    reply = asyncio.run(ask())
    results.append(
        {
            "provider": "anthropic",
            "customer": "initech",
            "response_id": reply.id,
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
        }
    )


def call_gemini(results: list[dict]) -> None:
    from google import genai

    client = genai.Client()
    with customer_context("umbrella"):
        reply = client.models.generate_content(
            model="gemini-2.5-flash", contents="Summarise my order"
        )
    results.append(
        {
            "provider": "google",
            "customer": "umbrella",
            "response_id": reply.response_id,
            "input_tokens": reply.usage_metadata.prompt_token_count,
            "output_tokens": reply.usage_metadata.candidates_token_count,
        }
    )


def main() -> None:
    results: list[dict] = []
    if os.environ.get("OPENAI_BASE_URL"):
        call_openai(results)
    if os.environ.get("ANTHROPIC_BASE_URL"):
        call_anthropic(results)
    if os.environ.get("GOOGLE_GEMINI_BASE_URL"):
        call_gemini(results)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
