from __future__ import annotations

import json
import random
from collections.abc import Callable

import httpx
import pytest

import dmsnb
from dmsnb._retry import Outcome, RetryPolicy, decide, parse_retry_after

from .conftest import fake_service, posts, running

POLICY = RetryPolicy(
    attempts=4, base_delay=1.0, max_delay=8.0, total_seconds=30.0, busy_attempts=2
)

# kind, outcome, attempt, elapsed, retry?
DECISIONS = [
    ("read", Outcome("refused"), 1, 0.0, True),
    ("write", Outcome("refused"), 1, 0.0, True),
    ("read", Outcome("timeout"), 1, 0.0, True),
    ("write", Outcome("timeout"), 1, 0.0, False),
    ("read", Outcome("reset"), 2, 0.0, True),
    ("write", Outcome("reset"), 1, 0.0, False),
    ("read", Outcome("bad_body", status_code=200), 1, 0.0, True),
    ("write", Outcome("bad_body", status_code=200), 1, 0.0, False),
    ("read", Outcome("http", status_code=429), 1, 0.0, True),
    ("write", Outcome("http", status_code=429), 1, 0.0, True),
    ("read", Outcome("http", status_code=500), 1, 0.0, True),
    ("read", Outcome("http", status_code=503), 3, 0.0, True),
    ("write", Outcome("http", status_code=500), 1, 0.0, False),
    ("write", Outcome("http", status_code=502), 1, 0.0, False),
    ("write", Outcome("http", 400, "DMS.00400026"), 1, 0.0, True),
    ("write", Outcome("http", 400, "DMS.00400017"), 1, 0.0, True),
    ("write", Outcome("http", 400, "DMS.00400026"), 2, 0.0, False),
    ("read", Outcome("http", 400, "DMS.00400026"), 1, 0.0, False),
    ("write", Outcome("http", 400, "DMS.00400099"), 1, 0.0, False),
    ("read", Outcome("http", status_code=401), 1, 0.0, False),
    ("read", Outcome("http", status_code=404), 1, 0.0, False),
    ("read", Outcome("http", status_code=500), 4, 0.0, False),
    ("read", Outcome("http", status_code=500), 1, 29.95, False),
]


@pytest.mark.parametrize(("kind", "outcome", "attempt", "elapsed", "retry"), DECISIONS)
def test_policy_table(
    kind: str, outcome: Outcome, attempt: int, elapsed: float, retry: bool
) -> None:
    decision = decide(kind, outcome, attempt, elapsed, POLICY, random.Random(1))  # type: ignore[arg-type]
    assert decision.retry is retry, decision.why
    assert decision.why


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_backoff_grows_within_its_cap(attempt: int) -> None:
    ceiling = min(8.0, 2 ** (attempt - 1))
    for seed in range(50):
        delay = decide(
            "read", Outcome("timeout"), attempt, 0.0, POLICY, random.Random(seed)
        ).delay
        assert 0.1 * ceiling <= delay <= ceiling


def test_retry_after_is_honoured_and_capped() -> None:
    honoured = decide("read", Outcome("http", 429, retry_after=3.0), 1, 0.0, POLICY)
    assert honoured.delay == 3.0
    policy = RetryPolicy(max_retry_after=20.0, total_seconds=30.0)
    capped = decide("read", Outcome("http", 429, retry_after=600.0), 1, 0.0, policy)
    assert capped.retry
    assert capped.delay == 20.0
    too_long = decide("read", Outcome("http", 429, retry_after=25.0), 1, 11.0, policy)
    assert not too_long.retry
    assert "limit" in too_long.why


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("", None),
        (None, None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


MockFactory = Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]
ID = "8354dde6-8229-4ff4-844d-ab7121be9745"


def scripted(
    *answers: httpx.Response | type[Exception],
) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, type):
            raise answer("scripted", request=request)  # type: ignore[call-arg]
        return answer

    return handler


def ok_action() -> httpx.Response:
    return httpx.Response(
        200, json={"results": [{"instance": ID, "result": "success"}]}
    )


def test_read_retries_429_and_5xx_then_succeeds(mock_client: MockFactory) -> None:
    client, sent = mock_client(
        scripted(
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
            httpx.Response(200, json={"instances": [], "instance_num": 0}),
        )
    )
    assert len(client.instances()) == 0
    assert len(sent) == 3


def test_read_gives_up_with_the_last_error(mock_client: MockFactory) -> None:
    client, sent = mock_client(
        scripted(httpx.Response(500, json={"error_code": "DMS.00500000"}))
    )
    with pytest.raises(dmsnb.APIError, match=r"DMS\.00500000"):
        client.instances()
    assert len(sent) == 6


def test_read_retries_a_body_that_is_not_json(mock_client: MockFactory) -> None:
    client, sent = mock_client(
        scripted(
            httpx.Response(200, content=b'{"instances": ['),
            httpx.Response(200, json={"instances": [], "instance_num": 0}),
        )
    )
    client.instances()
    assert len(sent) == 2


def on_service(
    mock_client: MockFactory, *answers: httpx.Response | type[Exception]
) -> tuple[dmsnb.Client, list[httpx.Request]]:
    """A client whose batch calls get ``answers``; ``ID`` is listed RUNNING."""
    return mock_client(fake_service(scripted(*answers), running([ID])))


def test_write_is_resent_only_when_it_never_arrived(mock_client: MockFactory) -> None:
    client, sent = on_service(
        mock_client, httpx.ConnectError, httpx.ConnectError, ok_action()
    )
    results = client.restart([ID], track=False)
    assert list(results["result"]) == ["success"]
    assert len(posts(sent)) == 3


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout,
        httpx.RemoteProtocolError,
        httpx.Response(502),
        httpx.Response(200, content=b"<html>"),
    ],
)
def test_write_with_a_lost_answer_is_sent_once(
    mock_client: MockFactory, answer: object
) -> None:
    client, sent = on_service(mock_client, answer, ok_action())  # type: ignore[arg-type]
    results = client.restart([ID], track=False)
    assert len(posts(sent)) == 1
    assert list(results["result"]) == ["unknown"]


def test_write_retries_busy_within_its_bound(mock_client: MockFactory) -> None:
    busy = httpx.Response(400, json={"error_code": "DMS.00400026", "error_msg": "busy"})
    client, sent = on_service(mock_client, busy)
    results = client.restart([ID], track=False)
    assert len(posts(sent)) == client.retry.busy_attempts
    assert list(results["result"]) == ["failed"]
    assert list(results["error_code"]) == ["DMS.00400026"]

    client, sent = on_service(mock_client, busy, ok_action())
    assert list(client.restart([ID], track=False)["result"]) == ["success"]
    assert len(posts(sent)) == 2


def test_write_never_retries_a_refusal(mock_client: MockFactory) -> None:
    refused = httpx.Response(
        400, json={"error_code": "DMS.00400099", "error_msg": "no"}
    )
    client, sent = on_service(mock_client, refused, ok_action())
    assert list(client.delete([ID], confirm=1, track=False)["result"]) == ["failed"]
    assert len(posts(sent)) == 1
    assert json.loads(posts(sent)[0].content)["action"] == "delete"
