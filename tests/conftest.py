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


def running(ids: list[str], status: str = "RUNNING") -> list[dict[str, Any]]:
    """Instance records for ``ids``, all in ``status``."""
    return [
        {"instance_id": i, "name": f"kafka-{n:04d}", "status": status}
        for n, i in enumerate(ids)
    ]


def fake_service(
    actions: Callable[[httpx.Request], httpx.Response],
    records: list[dict[str, Any]],
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that lists and shows ``records`` and sends batch calls to
    ``actions``; statuses never change."""
    fleet = {str(r["instance_id"]): r for r in records}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            return actions(request)
        if path.endswith("/instances"):
            rows = list(fleet.values())
            offset = int(request.url.params.get("offset", "0"))
            limit = int(request.url.params.get("limit", "10"))
            page = {
                "instances": rows[offset : offset + limit],
                "instance_num": len(rows),
            }
            return httpx.Response(200, json=page)
        instance_id = path.rsplit("/", 1)[1]
        if instance_id in fleet:
            return httpx.Response(200, json=fleet[instance_id])
        gone = {
            "error_code": "DMS.00404022",
            "error_msg": "This instance does not exist.",
        }
        return httpx.Response(404, json=gone)

    return handler


def posts(sent: list[httpx.Request]) -> list[httpx.Request]:
    return [request for request in sent if request.method == "POST"]


@pytest.fixture
def mock_client(
    tmp_path: Path,
) -> Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]:
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
        options.setdefault("audit", tmp_path / "test.audit.jsonl")
        if "token" not in options:
            options.setdefault("ak", AK)
            options.setdefault("sk", SK)
        client = dmsnb.Client(transport=httpx.MockTransport(recording), **options)
        made.append(client)
        return client, sent

    yield factory
    for client in made:
        client.close()
