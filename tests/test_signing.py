from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from dmsnb._signing import (
    AKSKAuth,
    TokenAuth,
    canonical_query,
    canonical_uri,
    parse_authorization,
    sign_request,
)

from .conftest import AK, PROJECT_ID, SK, fixture_json


def test_reproduces_the_published_example_to_the_character() -> None:
    vector = fixture_json("signing/published-vector.json")
    request = httpx.Request(vector["method"], vector["url"], headers=vector["headers"])
    for name in list(request.headers):
        if name not in {key.lower() for key in vector["headers"]}:
            del request.headers[name]

    sign_request(request, vector["access_key"], vector["secret_key"])

    assert request.headers["Authorization"] == vector["authorization"]
    fields = parse_authorization(request.headers["Authorization"])
    assert fields is not None
    assert fields["SignedHeaders"] == vector["signed_headers"]
    assert fields["Signature"] == vector["signature"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/p/instances", "/v2/p/instances/"),
        ("/v2/p/instances/", "/v2/p/instances/"),
        ("/a b/c", "/a%20b/c/"),
        ("/a%20b/c~d", "/a%20b/c~d/"),
        ("/", "/"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("limit=2&marker=x", "limit=2&marker=x"),
        ("b=2&a=1", "a=1&b=2"),
        ("name=a%20b&engine=kafka", "engine=kafka&name=a%20b"),
        ("name=a+b", "name=a%20b"),
        ("flag=", "flag="),
        ("a=2&a=1", "a=1&a=2"),
    ],
)
def test_canonical_query(raw: str, expected: str) -> None:
    assert canonical_query(raw) == expected


def _sdk_authorization(request: httpx.Request, signed: list[str]) -> str:
    """What the official SDK's signer computes for the same request."""
    headers = {name: request.headers[name] for name in signed}
    sdk_request = SdkRequest(
        method=request.method,
        schema=request.url.scheme,
        host=request.url.host,
        resource_path=request.url.path,
        query_params=[(k, v) for k, v in request.url.params.multi_items()],
        header_params=headers,
        body=request.content,
    )
    credentials = BasicCredentials(AK, SK, PROJECT_ID)
    return str(Signer(credentials).sign(sdk_request).header_params["Authorization"])


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "https://dms.eu-de.otc.t-systems.com/v2/p/instances", b""),
        (
            "GET",
            "https://dms.eu-de.otc.t-systems.com/v2/p/instances"
            "?engine=kafka&name=orders%20prod&offset=50&limit=50",
            b"",
        ),
        (
            "POST",
            "https://dms.eu-de.otc.t-systems.com/v2/p/instances/action",
            b'{"action": "restart", "instances": ["a"]}',
        ),
        ("DELETE", "http://127.0.0.1:8123/v1.0/p/instances/x", b""),
    ],
)
def test_official_sdk_signer_agrees(method: str, url: str, body: bytes) -> None:
    request = httpx.Request(
        method, url, content=body, headers={"Content-Type": "application/json"}
    )
    request.headers["X-Project-Id"] = PROJECT_ID
    sign_request(
        request, AK, SK, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    )
    fields = parse_authorization(request.headers["Authorization"])
    assert fields is not None
    signed = fields["SignedHeaders"].split(";")
    assert "x-project-id" in signed

    assert _sdk_authorization(request, signed) == request.headers["Authorization"]


def test_auth_sets_project_and_security_token_before_signing() -> None:
    auth = AKSKAuth(AK, SK, PROJECT_ID, security_token="temporary-token-value")
    request = httpx.Request("GET", "https://dms.example.com/v2/p/instances")
    signed_request = next(auth.auth_flow(request))

    fields = parse_authorization(signed_request.headers["Authorization"])
    assert fields is not None
    assert signed_request.headers["X-Project-Id"] == PROJECT_ID
    assert {"x-project-id", "x-security-token", "x-sdk-date", "host"} <= set(
        fields["SignedHeaders"].split(";")
    )


@pytest.mark.parametrize(
    "auth",
    [
        AKSKAuth(AK, SK, PROJECT_ID),
        AKSKAuth(AK, SK, PROJECT_ID, security_token="temporary-token-value"),
        TokenAuth("iam-token-value", PROJECT_ID),
    ],
)
def test_auth_repr_has_no_secret(auth: httpx.Auth) -> None:
    text = repr(auth)
    for secret in (SK, "temporary-token-value", "iam-token-value", AK):
        assert secret not in text


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "SDK-HMAC-SHA256 Access=a, SignedHeaders=b",
        "SDK-HMAC-SHA256 garbage",
    ],
)
def test_parse_authorization_rejects_other_forms(value: str) -> None:
    assert parse_authorization(value) is None


def test_requests_the_client_sends_verify_with_the_official_signer(
    mock_client: Any,
) -> None:
    from .conftest import fake_service, running

    ids = ["8354dde6-8229-4ff4-844d-ab7121be9745"]

    def answer(request: httpx.Request) -> httpx.Response:
        results = [{"instance": i, "result": "success"} for i in ids]
        return httpx.Response(200, json={"results": results})

    client, sent = mock_client(fake_service(answer, running(ids)))
    client.instances(name="kafka orders", include_failed=True)
    client.instance(ids[0])
    client.restart(ids, track=False)

    assert {r.method for r in sent} == {"GET", "POST"}
    for request in sent:
        fields = parse_authorization(request.headers["Authorization"])
        assert fields is not None
        signed = fields["SignedHeaders"].split(";")
        assert "x-project-id" in signed
        assert _sdk_authorization(request, signed) == request.headers["Authorization"]
