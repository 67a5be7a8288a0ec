"""A small FastAPI service that bills each LLM call to the organisation of the signed-in user.

The customer comes from authentication, not from the request body: a dependency turns the
bearer token into a user, and the endpoint wraps its LLM call in
``customer_context(user.org_id)``. Concurrent requests never mix their customers (the context
lives in ``contextvars``, per request).

    pip install opentelemetry-instrumentation-cmdrdata openai fastapi uvicorn
    export CMDRDATA_API_KEY=cmd-live-v1-...   OPENAI_API_KEY=sk-...
    python examples/web_service.py --port 8000
    curl -s -X POST localhost:8000/summarize -H 'Authorization: Bearer alice-token' \\
        -H 'Content-Type: application/json' -d '{"text": "A long support ticket..."}'

``OPENAI_BASE_URL`` and ``CMDRDATA_ENDPOINT`` point it at local stand-ins
(``python examples/local_servers.py``). Telemetry is set up by hand in the lifespan below; under
``opentelemetry-instrument`` you would drop ``setup_telemetry`` and keep the rest.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import openai
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic import BaseModel

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context


@dataclass(frozen=True)
class User:
    name: str
    org_id: str  # the cmdrdata customer: you bill organisations, not people
    plan: str


# Stand-in for your real authentication (sessions, JWTs, an identity provider...).
USERS = {
    "alice-token": User("alice", org_id="acme-corp", plan="pro"),
    "bob-token": User("bob", org_id="globex", plan="free"),
}


def current_user(authorization: Annotated[str | None, Header()] = None) -> User:
    scheme, _, token = (authorization or "").partition(" ")
    user = USERS.get(token) if scheme.lower() == "bearer" else None
    if user is None:
        raise HTTPException(status_code=401, detail="unknown or missing bearer token")
    return user


def setup_telemetry() -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "summarizer-api"}))
    provider.add_span_processor(BatchSpanProcessor(CmdrDataSpanExporter()))
    CmdrDataInstrumentor().instrument(tracer_provider=provider)
    return provider


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    provider = setup_telemetry()
    app.state.llm = openai.AsyncOpenAI()
    yield
    await app.state.llm.close()
    provider.shutdown()  # flush usage events on the way out


app = FastAPI(lifespan=lifespan)


class SummarizeRequest(BaseModel):
    text: str


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/summarize")
async def summarize(
    body: SummarizeRequest, user: Annotated[User, Depends(current_user)]
) -> dict[str, str | int]:
    llm: openai.AsyncOpenAI = app.state.llm
    with customer_context(user.org_id, plan=user.plan, feature="summarize"):
        reply = await llm.chat.completions.create(
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            messages=[{"role": "user", "content": f"Summarise in one line: {body.text}"}],
        )
    return {
        "summary": reply.choices[0].message.content or "",
        "billed_to": user.org_id,
        "tokens": reply.usage.total_tokens if reply.usage else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the example service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
