"""The customer module with no baggage secret set, restored after each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from opentelemetry_instrumentation_cmdrdata import customer


@pytest.fixture(autouse=True)
def no_secret() -> Iterator[None]:
    saved = os.environ.pop(customer.SECRET_ENV, None)
    customer._reload_settings()
    try:
        yield
    finally:
        if saved is not None:
            os.environ[customer.SECRET_ENV] = saved
        customer._reload_settings()
