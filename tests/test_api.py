from __future__ import annotations

import json

import pytest

from dmsnb import APIError, AuthError, NotFoundError
from dmsnb._api import (
    action_body,
    api_error,
    is_instance_id,
    list_params,
    parse_action_results,
    parse_page,
)

from .conftest import fixture_json

# Every error-body form the service, its gateway and the official SDK know.
ERROR_BODIES = [
    pytest.param(
        400,
        {"error_code": "DMS.00400064", "error_msg": "The action parameter ..."},
        "req-h",
        ("DMS.00400064", "The action parameter ...", "req-h"),
        APIError,
        id="service",
    ),
    pytest.param(
        401,
        {
            "error_code": "APIGW.0301",
            "error_msg": "verify aksk signature fail",
            "request_id": "req-body",
        },
        None,
        ("APIGW.0301", "verify aksk signature fail", "req-body"),
        AuthError,
        id="gateway-with-request-id",
    ),
    pytest.param(
        400,
        {"errorCode": "DMS.00400082", "errorMsg": "Instance id is repeated."},
        "req-h",
        ("DMS.00400082", "Instance id is repeated.", "req-h"),
        APIError,
        id="camel-case",
    ),
    pytest.param(
        404,
        {"code": "DMS.00404022", "message": "This instance does not exist."},
        "req-h",
        ("DMS.00404022", "This instance does not exist.", "req-h"),
        NotFoundError,
        id="code-message",
    ),
    pytest.param(
        403,
        {"error": {"code": "DMS.10240306", "message": "frozen"}, "request_id": "r9"},
        None,
        ("DMS.10240306", "frozen", "r9"),
        AuthError,
        id="nested-error",
    ),
    pytest.param(
        502, None, "req-h", (None, "Bad Gateway", "req-h"), APIError, id="text"
    ),
    pytest.param(500, None, None, (None, None, None), APIError, id="empty"),
]


@pytest.mark.parametrize(("status", "body", "header_id", "fields", "cls"), ERROR_BODIES)
def test_error_bodies(
    status: int,
    body: object,
    header_id: str | None,
    fields: tuple[str | None, str | None, str | None],
    cls: type[APIError],
) -> None:
    if body is None and fields[1] == "Bad Gateway":
        content = b"Bad Gateway"
    else:
        content = json.dumps(body).encode() if body is not None else b""

    error = api_error(status, content, header_id, method="GET", path="/v2/p/instances")

    assert type(error) is cls
    assert (error.error_code, error.error_msg, error.request_id) == fields
    assert error.status_code == status
    line = str(error)
    assert "\n" not in line
    assert f"HTTP {status}" in line
    for part in fields:
        if part:
            assert part in line


def test_error_line_reads_as_one_line() -> None:
    error = api_error(
        400,
        b'{"error_code": "DMS.00400099", "error_msg": "cannot be\\n deleted."}',
        "abc123",
        method="POST",
        path="/v2/p/instances/action",
    )
    assert str(error) == (
        "HTTP 400 DMS.00400099: cannot be deleted. "
        "(POST /v2/p/instances/action) [request id abc123]"
    )


def test_error_survives_pickling() -> None:
    import pickle

    error = api_error(404, b'{"error_code": "DMS.00404022"}', "r1")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NotFoundError
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    ("version", "filters", "expected"),
    [
        ("v2", {}, {"engine": "kafka", "offset": "0", "limit": "50"}),
        (
            "v2",
            {"name": "orders", "exact_match_name": True, "include_failure": True},
            {
                "engine": "kafka",
                "name": "orders",
                "exact_match_name": "true",
                "include_failure": "true",
                "offset": "0",
                "limit": "50",
            },
        ),
        (
            "v1",
            {"instance_id": "x", "exact_match_name": True, "include_failure": True},
            {
                "engine": "kafka",
                "id": "x",
                "exactMatchName": "true",
                "includeFailure": "true",
                "offset": "0",
                "limit": "50",
            },
        ),
        ("v2", {"status": None}, {"engine": "kafka", "offset": "0", "limit": "50"}),
    ],
)
def test_list_params(
    version: str, filters: dict[str, object], expected: dict[str, str]
) -> None:
    assert list_params(version, filters, 0, 50) == expected


@pytest.mark.parametrize(
    ("version", "request_fixture"),
    [
        ("v1", "docs/v1-batch-restart-request.json"),
        ("v2", "docs/v2-batch-restart-request.json"),
    ],
)
def test_action_body_matches_documented_requests(
    version: str, request_fixture: str
) -> None:
    documented = fixture_json(request_fixture)
    body = action_body(version, documented["action"], documented["instances"])
    assert body == documented


@pytest.mark.parametrize(
    ("version", "request_fixture"),
    [
        ("v1", "docs/v1-delete-all-failed-request.json"),
        ("v2", "docs/v2-delete-all-failed-request.json"),
    ],
)
def test_delete_all_failed_body(version: str, request_fixture: str) -> None:
    assert action_body(version, "delete", all_failure=True) == fixture_json(
        request_fixture
    )


@pytest.mark.parametrize(
    "fixture",
    ["docs/v1-batch-action-response.json", "docs/v2-batch-action-response.json"],
)
def test_parse_documented_action_answers(fixture: str) -> None:
    payload = fixture_json(fixture)
    outcome = parse_action_results(payload)
    assert outcome == {
        entry["instance"]: entry["result"] for entry in payload["results"]
    }


@pytest.mark.parametrize(
    "fixture",
    ["docs/v1-list-instances-response.json", "docs/v2-list-instances-response.json"],
)
def test_parse_documented_list_answers(fixture: str) -> None:
    page = parse_page(fixture_json(fixture))
    assert page.total == 1
    assert page.instances[0]["engine"] == "kafka"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"results": None},
        {"instances": "x"},
        {"instances": [], "instance_num": "x"},
    ],
)
def test_malformed_answers_raise(payload: object) -> None:
    with pytest.raises(ValueError):
        if isinstance(payload, dict) and "results" in payload:
            parse_action_results(payload)
        else:
            parse_page(payload)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("8354dde6-8229-4ff4-844d-ab7121be9745", True),
        ("8354DDE6-8229-4FF4-844D-AB7121BE9745", True),
        ("8354dde6822948ff4844dab7121be9745", False),
        ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", False),
        ("", False),
        (None, False),
        (42, False),
        (" 8354dde6-8229-4ff4-844d-ab7121be9745", False),
    ],
)
def test_is_instance_id(value: object, valid: bool) -> None:
    assert is_instance_id(value) is valid
