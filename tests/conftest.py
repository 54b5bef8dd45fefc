"""Shared test helpers: the documented payloads and a client on a mock transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import dmsnb
from dmsnb._retry import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_ID = "0b8a3c56e8a94f1a9a7d2d5c1e6f4a21"
AK = "HPUAEXAMPLEAK1234567"
SK = "sk-for-tests-0123456789abcdefghijklmnopqrs"
FAST_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.005, max_retry_after=0.01)


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def mock_client() -> Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]:
    """A factory: ``mock_client(handler)`` gives a client and its sent requests."""
    made: list[dmsnb.Client] = []

    def factory(
        handler: Callable[[httpx.Request], httpx.Response], **options: Any
    ) -> tuple[dmsnb.Client, list[httpx.Request]]:
        sent: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            request.read()
            sent.append(request)
            return handler(request)

        options.setdefault("endpoint", "https://dms.eu-de.otc.t-systems.com")
        options.setdefault("project_id", PROJECT_ID)
        options.setdefault("retry", FAST_RETRY)
        if "token" not in options:
            options.setdefault("ak", AK)
            options.setdefault("sk", SK)
        client = dmsnb.Client(transport=httpx.MockTransport(recording), **options)
        made.append(client)
        return client, sent

    yield factory
    for client in made:
        client.close()
