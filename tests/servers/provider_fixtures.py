"""Pytest fixtures for the fake provider servers.

Import them into a conftest with::

    from tests.servers.provider_fixtures import (  # noqa: F401
        anthropic_server, gemini_server, openai_server,
    )

The servers of section 9 (``bedrock_server``, ``mistral_server``, ``cohere_server``,
``groq_server``, ``ollama_server``) have the same pair of fixtures each.

Each server process-wide is started once per test session (cheap, but avoids
a bind per test) and the function-scoped fixture calls ``reset()`` before and
after every test: recorded requests, queued steps, the default scenario and
the model map never leak between tests.  Use ``server.client()`` /
``server.async_client()`` (and ``gemini_server.vertex_client()``) for real SDK
clients pointed at the fake with ``max_retries=0``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_server import AnthropicFakeServer
from .bedrock_server import BedrockFakeServer
from .cohere_server import CohereFakeServer
from .gemini_server import GeminiFakeServer
from .groq_server import GroqFakeServer
from .mistral_server import MistralFakeServer
from .ollama_server import OllamaFakeServer
from .openai_server import OpenAIFakeServer

__all__ = [
    "anthropic_server",
    "anthropic_server_session",
    "bedrock_server",
    "bedrock_server_session",
    "cohere_server",
    "cohere_server_session",
    "gemini_server",
    "gemini_server_session",
    "groq_server",
    "groq_server_session",
    "mistral_server",
    "mistral_server_session",
    "ollama_server",
    "ollama_server_session",
    "openai_server",
    "openai_server_session",
]


@pytest.fixture(scope="session")
def openai_server_session() -> Iterator[OpenAIFakeServer]:
    with OpenAIFakeServer() as server:
        yield server


@pytest.fixture(scope="session")
def anthropic_server_session() -> Iterator[AnthropicFakeServer]:
    with AnthropicFakeServer() as server:
        yield server


@pytest.fixture(scope="session")
def gemini_server_session() -> Iterator[GeminiFakeServer]:
    with GeminiFakeServer() as server:
        yield server


@pytest.fixture
def openai_server(openai_server_session: OpenAIFakeServer) -> Iterator[OpenAIFakeServer]:
    openai_server_session.reset()
    yield openai_server_session
    openai_server_session.reset()


@pytest.fixture
def anthropic_server(
    anthropic_server_session: AnthropicFakeServer,
) -> Iterator[AnthropicFakeServer]:
    anthropic_server_session.reset()
    yield anthropic_server_session
    anthropic_server_session.reset()


@pytest.fixture
def gemini_server(gemini_server_session: GeminiFakeServer) -> Iterator[GeminiFakeServer]:
    gemini_server_session.reset()
    yield gemini_server_session
    gemini_server_session.reset()


@pytest.fixture(scope="session")
def bedrock_server_session() -> Iterator[BedrockFakeServer]:
    with BedrockFakeServer() as server:
        yield server


@pytest.fixture
def bedrock_server(bedrock_server_session: BedrockFakeServer) -> Iterator[BedrockFakeServer]:
    bedrock_server_session.reset()
    yield bedrock_server_session
    bedrock_server_session.reset()


@pytest.fixture(scope="session")
def mistral_server_session() -> Iterator[MistralFakeServer]:
    with MistralFakeServer() as server:
        yield server


@pytest.fixture
def mistral_server(mistral_server_session: MistralFakeServer) -> Iterator[MistralFakeServer]:
    mistral_server_session.reset()
    yield mistral_server_session
    mistral_server_session.reset()


@pytest.fixture(scope="session")
def cohere_server_session() -> Iterator[CohereFakeServer]:
    with CohereFakeServer() as server:
        yield server


@pytest.fixture
def cohere_server(cohere_server_session: CohereFakeServer) -> Iterator[CohereFakeServer]:
    cohere_server_session.reset()
    yield cohere_server_session
    cohere_server_session.reset()


@pytest.fixture(scope="session")
def groq_server_session() -> Iterator[GroqFakeServer]:
    with GroqFakeServer() as server:
        yield server


@pytest.fixture
def groq_server(groq_server_session: GroqFakeServer) -> Iterator[GroqFakeServer]:
    groq_server_session.reset()
    yield groq_server_session
    groq_server_session.reset()


@pytest.fixture(scope="session")
def ollama_server_session() -> Iterator[OllamaFakeServer]:
    with OllamaFakeServer() as server:
        yield server


@pytest.fixture
def ollama_server(ollama_server_session: OllamaFakeServer) -> Iterator[OllamaFakeServer]:
    ollama_server_session.reset()
    yield ollama_server_session
    ollama_server_session.reset()
