from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import dmsnb
from dmsnb import APIError, AuthError, ConfigError, NotFoundError, TransportError

from .conftest import AK, PROJECT_ID, SK, fake_service, fixture_json, posts, running

MockFactory = Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]


def make_ids(count: int, seed: int = 1) -> list[str]:
    return [str(uuid.UUID(int=seed * 10_000 + n, version=4)) for n in range(count)]


def list_handler(
    records: list[dict[str, Any]],
) -> Callable[[httpx.Request], httpx.Response]:
    """Serve ``records`` the way the service pages them."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        limit = int(request.url.params.get("limit", "10"))
        if records and offset >= len(records):
            return httpx.Response(
                400,
                json={
                    "error_code": "DMS.10240043",
                    "error_msg": "Offset parameter is invalid",
                },
            )
        page = records[offset : offset + limit]
        return httpx.Response(
            200, json={"instances": page, "instance_num": len(records)}
        )

    return handler


def fleet_records(count: int) -> list[dict[str, Any]]:
    template = fixture_json("docs/v2-list-instances-response.json")["instances"][0]
    return [
        {**template, "instance_id": instance_id, "name": f"kafka-{n:04d}"}
        for n, instance_id in enumerate(make_ids(count))
    ]


@pytest.mark.parametrize("count", [0, 1, 49, 50, 51, 100, 101, 260])
def test_instances_reads_every_page_and_never_pages_past_the_total(
    mock_client: MockFactory, count: int
) -> None:
    records = fleet_records(count)
    client, sent = mock_client(list_handler(records))

    frame = client.instances()

    assert list(frame["instance_id"]) == [r["instance_id"] for r in records]
    offsets = sorted(int(r.url.params["offset"]) for r in sent)
    assert offsets == list(range(0, max(count, 1), 50))
    assert all(r.url.params["limit"] == "50" for r in sent)
    assert all(r.url.params["engine"] == "kafka" for r in sent)
    assert all(offset < count or offset == 0 for offset in offsets)


def test_a_fleet_that_changes_while_paging_is_read_again(
    mock_client: MockFactory,
) -> None:
    records = fleet_records(120)
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        # The first sweep sees one instance vanish between pages.
        current = records[1:] if calls["n"] == 2 else records
        return list_handler(current)(request)

    client, sent = mock_client(handler, max_workers=1)
    frame = client.instances()

    assert len(frame) == 120
    assert frame["instance_id"].is_unique
    assert len(sent) > 3


def test_a_fleet_that_shrinks_under_the_later_pages_is_read_again(
    mock_client: MockFactory,
) -> None:
    records = fleet_records(101)
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        # After the first page, 41 instances are gone: offset 100 is past the end.
        current = records if calls["n"] == 1 else records[:60]
        return list_handler(current)(request)

    client, _ = mock_client(handler, max_workers=1)
    frame = client.instances()
    assert len(frame) == 60
    assert calls["n"] == 5  # 3 pages of the first sweep, 2 of the second


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"name": "orders"}, {"name": "orders"}),
        (
            {"exact_name": "kafka-0001"},
            {"name": "kafka-0001", "exact_match_name": "true"},
        ),
        ({"status": "ERROR"}, {"status": "ERROR"}),
        ({"include_failed": True}, {"include_failure": "true"}),
        (
            {"instance_id": "8354dde6-8229-4ff4-844d-ab7121be9745"},
            {"instance_id": "8354dde6-8229-4ff4-844d-ab7121be9745"},
        ),
    ],
)
def test_filters_are_sent(
    mock_client: MockFactory, filters: dict[str, Any], expected: dict[str, str]
) -> None:
    client, sent = mock_client(list_handler([]))
    client.instances(**filters)
    params = dict(sent[0].url.params)
    for key, value in expected.items():
        assert params[key] == value
    assert "include_failure" in params or not filters.get("include_failed")


@pytest.mark.parametrize(
    ("status", "sent", "kept"),
    [
        ("running", {"status": "RUNNING"}, 3),
        (" Error ", {"status": "ERROR"}, 3),
        ("CREATEFAILED", {"status": "CREATEFAILED", "include_failure": "true"}, 3),
        (["RUNNING", "ERROR"], {}, 2),
    ],
)
def test_status_filters(
    mock_client: MockFactory, status: Any, sent: dict[str, str], kept: int
) -> None:
    records = fleet_records(3)
    records[2]["status"] = "DELETING"
    records[1]["status"] = "ERROR"
    client, requests = mock_client(list_handler(records))
    frame = client.instances(status=status)
    params = dict(requests[0].url.params)
    for key, value in sent.items():
        assert params[key] == value
    if not sent:
        assert "status" not in params
    # the mock ignores the status filter; several statuses are filtered here
    assert len(frame) == kept


def test_v1_uses_v1_paths_and_names(mock_client: MockFactory) -> None:
    client, sent = mock_client(list_handler([]), api_version="v1")
    client.instances(exact_name="x", include_failed=True)
    assert sent[0].url.path == f"/v1.0/{PROJECT_ID}/instances"
    assert sent[0].url.params["exactMatchName"] == "true"
    assert sent[0].url.params["includeFailure"] == "true"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": "runing"}, "unknown status 'runing'"),
        ({"status": "BROKEN"}, "RUNNING"),
        ({"status": ["RUNNING", "BROKEN"]}, "unknown status 'BROKEN'"),
        ({"status": []}, "unknown status none"),
        ({"name": "a", "exact_name": "b"}, "not both"),
        ({"instance_id": "nope"}, "'nope' is not an instance id"),
    ],
)
def test_bad_filters_fail_before_sending(
    mock_client: MockFactory, filters: dict[str, Any], message: str
) -> None:
    client, sent = mock_client(list_handler([]))
    with pytest.raises(ValueError, match=message):
        client.instances(**filters)
    assert sent == []


def action_handler(
    result_for: Callable[[str], str] = lambda _: "success",
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        results = [{"instance": i, "result": result_for(i)} for i in body["instances"]]
        return httpx.Response(
            200, json={"results": results}, headers={"X-Request-Id": "rid-1"}
        )

    return handler


def test_restart_sends_chunks_of_at_most_50_and_returns_a_row_each(
    mock_client: MockFactory,
) -> None:
    ids = make_ids(120)
    client, sent = mock_client(fake_service(action_handler(), running(ids)))

    results = client.restart(ids, track=False)

    calls = posts(sent)
    assert [len(json.loads(r.content)["instances"]) for r in calls] == [50, 50, 20]
    assert [json.loads(r.content)["action"] for r in calls] == ["restart"] * 3
    assert [i for r in calls for i in json.loads(r.content)["instances"]] == ids
    assert list(results["instance_id"]) == ids
    assert set(results["result"]) == {"success"}
    assert set(results["action"]) == {"restart"}
    assert set(results["request_id"]) == {"rid-1"}
    assert set(results["status_before"]) == {"RUNNING"}
    assert results.attrs["summary"] == "restart: 120 instance(s), 120 success"


def test_per_instance_failures_are_reported(mock_client: MockFactory) -> None:
    ids = make_ids(3)
    failing = action_handler(lambda i: "failed" if i == ids[1] else "success")
    client, _ = mock_client(fake_service(failing, running(ids)))
    results = client.restart(ids, track=False)
    assert list(results["result"]) == ["success", "failed", "success"]
    assert "no reason" in str(results.loc[1, "reason"])


def test_an_instance_missing_from_the_answer_is_unknown(
    mock_client: MockFactory,
) -> None:
    ids = make_ids(2)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = {"results": [{"instance": ids[0], "result": "success"}]}
        return httpx.Response(200, json=answer)

    client, _ = mock_client(fake_service(handler, running(ids)))
    results = client.restart(ids, track=False)
    assert list(results["result"]) == ["success", "unknown"]


def test_a_refused_chunk_fails_only_its_own_instances(mock_client: MockFactory) -> None:
    ids = make_ids(60)

    def handler(request: httpx.Request) -> httpx.Response:
        chunk = json.loads(request.content)["instances"]
        if ids[55] in chunk:
            return httpx.Response(
                400,
                json={"error_code": "DMS.00400099", "error_msg": "cannot be deleted"},
                headers={"X-Request-Id": "rid-9"},
            )
        return action_handler()(request)

    client, _ = mock_client(fake_service(handler, running(ids)))
    results = client.delete(ids, confirm=60, track=False)
    assert list(results["result"][:50]) == ["success"] * 50
    assert list(results["result"][50:]) == ["failed"] * 10
    assert set(results["error_code"][50:]) == {"DMS.00400099"}
    assert set(results["request_id"][50:]) == {"rid-9"}


def test_a_lost_answer_is_unknown_and_never_resent(mock_client: MockFactory) -> None:
    ids = make_ids(3)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, sent = mock_client(fake_service(handler, running(ids)))
    results = client.restart(ids, track=False)
    assert len(posts(sent)) == 1
    assert set(results["result"]) == {"unknown"}
    assert "not resent" in str(results.loc[0, "reason"])


def test_a_refused_connection_is_failed_not_sent(mock_client: MockFactory) -> None:
    ids = make_ids(2)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = mock_client(fake_service(handler, running(ids)))
    results = client.restart(ids, track=False)
    assert set(results["result"]) == {"failed"}
    assert "not sent" in str(results.loc[0, "reason"])


def test_an_unreadable_answer_is_unknown(mock_client: MockFactory) -> None:
    ids = make_ids(2)
    html = fake_service(
        lambda request: httpx.Response(200, content=b"<html>"), running(ids)
    )
    client, _ = mock_client(html)
    results = client.restart(ids, track=False)
    assert set(results["result"]) == {"unknown"}


ID = make_ids(1)[0]

# Mistakes found before anything is sent: no request at all.
BAD_SELECTIONS = [
    pytest.param("restart", [], None, "no instances selected", id="empty"),
    pytest.param("restart", ["not-a-uuid"], None, "'not-a-uuid'", id="not-uuid"),
    pytest.param("restart", [ID, 7], None, "7", id="not-a-string"),
    pytest.param("restart", [ID, ID], None, ID, id="twice"),
    pytest.param("restart", ID, None, "not a single string", id="bare-string"),
    pytest.param("reboot", [ID], None, "unknown action 'reboot'", id="unknown-action"),
    pytest.param(
        "restart",
        pd.DataFrame({"id": [ID]}),
        None,
        "no 'instance_id' column",
        id="frame",
    ),
]


@pytest.mark.parametrize(("action", "selection", "confirm", "message"), BAD_SELECTIONS)
def test_bad_selections_fail_before_anything_is_sent(
    mock_client: MockFactory, action: str, selection: Any, confirm: Any, message: str
) -> None:
    client, sent = mock_client(fake_service(action_handler(), running([ID])))
    with pytest.raises(ValueError, match=message):
        client.batch_action(action, selection, confirm=confirm)
    assert sent == []


# Mistakes found by the plan: the fleet is read, no write is sent.
BAD_CONFIRMATIONS = [
    pytest.param(None, "pass confirm=1", id="unconfirmed"),
    pytest.param(2, "does not match the plan, which deletes 1", id="wrong-count"),
    pytest.param(True, "does not match", id="bool"),
    pytest.param("1", "does not match", id="str"),
    pytest.param(0, "does not match", id="zero"),
]


@pytest.mark.parametrize(("confirm", "message"), BAD_CONFIRMATIONS)
def test_a_delete_needs_the_planned_count(
    mock_client: MockFactory, confirm: Any, message: str
) -> None:
    client, sent = mock_client(fake_service(action_handler(), running([ID])))
    with pytest.raises(ValueError, match=message):
        client.batch_action("delete", [ID], confirm=confirm)
    assert posts(sent) == []


def test_a_frame_selection_acts_on_its_ids(mock_client: MockFactory) -> None:
    ids = make_ids(3)
    client, sent = mock_client(fake_service(action_handler(), running(ids)))
    client.restart(
        pd.DataFrame({"instance_id": ids, "name": ["a", "b", "c"]}), track=False
    )
    assert json.loads(posts(sent)[0].content)["instances"] == ids


def test_delete_failed_204_is_success_without_per_instance_answers(
    mock_client: MockFactory,
) -> None:
    ids = make_ids(2)
    failed = running(ids, "CREATEFAILED")
    client, sent = mock_client(
        fake_service(lambda request: httpx.Response(204), failed)
    )
    results = client.delete_failed(confirm=2, track=False)
    assert json.loads(posts(sent)[0].content) == fixture_json(
        "docs/v2-delete-all-failed-request.json"
    )
    assert list(results["instance_id"]) == ids
    assert set(results["result"]) == {"success"}
    assert "without naming them (HTTP 204)" in results.attrs["summary"]
    listing = next(r for r in sent if r.method == "GET")
    assert listing.url.params["include_failure"] == "true"


def test_delete_failed_v1_body(mock_client: MockFactory) -> None:
    failed = running(make_ids(1), "CREATEFAILED")
    client, sent = mock_client(
        fake_service(lambda request: httpx.Response(204), failed), api_version="v1"
    )
    client.delete_failed(confirm=1, track=False)
    assert posts(sent)[0].url.path == f"/v1.0/{PROJECT_ID}/instances/action"
    assert json.loads(posts(sent)[0].content) == fixture_json(
        "docs/v1-delete-all-failed-request.json"
    )


def test_delete_failed_with_nothing_to_delete_sends_nothing(
    mock_client: MockFactory,
) -> None:
    client, sent = mock_client(fake_service(action_handler(), running(make_ids(2))))
    results = client.delete_failed()
    assert len(results) == 0
    assert "nothing was sent" in results.attrs["summary"]
    assert posts(sent) == []


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "APIGW.0301", AuthError),
        (403, "DMS.10240306", AuthError),
        (404, "DMS.00404022", NotFoundError),
        (500, "DMS.00500000", APIError),
    ],
)
def test_instance_errors_are_typed(
    mock_client: MockFactory, status: int, code: str, cls: type[APIError]
) -> None:
    client, _ = mock_client(
        lambda request: httpx.Response(
            status,
            json={"error_code": code, "error_msg": "m"},
            headers={"X-Request-Id": "r"},
        )
    )
    with pytest.raises(cls) as caught:
        client.instance(ID)
    assert caught.value.error_code == code
    assert caught.value.request_id == "r"
    assert str(caught.value).startswith(f"HTTP {status} {code}")


def test_instance_returns_the_record(mock_client: MockFactory) -> None:
    record = fixture_json("docs/v2-show-instance-response.json")
    client, sent = mock_client(lambda request: httpx.Response(200, json=record))
    assert client.instance(ID) == record
    assert sent[0].url.path == f"/v2/{PROJECT_ID}/instances/{ID}"


def test_transport_errors_are_translated_and_chained(mock_client: MockFactory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = mock_client(handler)
    with pytest.raises(TransportError) as caught:
        client.instances()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "nothing was sent" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "no endpoint"),
        ({"region": "mars-1"}, "unknown region 'mars-1'"),
        ({"region": "eu-de", "endpoint": "https://x"}, "not both"),
        ({"endpoint": "dms.example.com"}, "not an http"),
        ({"endpoint": "https://dms.example.com/v2"}, "without a path"),
        ({"region": "eu-de", "api_version": "v3"}, "api_version"),
        ({"region": "eu-de", "project_id": ""}, "no project id"),
        ({"region": "eu-de", "ak": None, "sk": None}, "no credentials"),
        ({"region": "eu-de", "sk": None}, "sk is missing"),
        ({"region": "eu-de", "token": "t"}, "not both"),
    ],
)
def test_bad_client_settings(options: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"project_id": PROJECT_ID, "ak": AK, "sk": SK}
    settings.update(options)
    with pytest.raises((ValueError, ConfigError), match=message):
        dmsnb.Client(**settings)


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("eu-de", "https://dms.eu-de.otc.t-systems.com"),
        ("eu-nl", "https://dms.eu-nl.otc.t-systems.com"),
        ("ap-southeast-1", "https://dms.ap-southeast-1.myhuaweicloud.com"),
        ("cn-north-4", "https://dms.cn-north-4.myhuaweicloud.com"),
        ("eu-west-101", "https://dms.eu-west-101.myhuaweicloud.eu"),
    ],
)
def test_region_resolves_the_endpoint(region: str, endpoint: str) -> None:
    with dmsnb.Client(region=region, project_id=PROJECT_ID, ak=AK, sk=SK) as client:
        assert client.endpoint == endpoint
        assert not client.is_simulator


def test_from_env_reads_the_sdk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "sts-token-value")
    with dmsnb.Client.from_env(region="eu-de") as client:
        assert client.credentials.kind == "temporary AK/SK"
        assert client.project_id == PROJECT_ID
        assert client.credentials.source == "environment"


def test_from_env_without_variables_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="HUAWEICLOUD_SDK_AK"):
        dmsnb.Client.from_env(region="eu-de")


def test_token_auth_sends_x_auth_token(mock_client: MockFactory) -> None:
    client, sent = mock_client(list_handler([]), token="iam-token-value")
    client.instances()
    assert sent[0].headers["X-Auth-Token"] == "iam-token-value"
    assert sent[0].headers["X-Project-Id"] == PROJECT_ID
    assert "Authorization" not in sent[0].headers


def test_every_request_is_signed_with_the_project_header(
    mock_client: MockFactory,
) -> None:
    ids = make_ids(1)
    client, sent = mock_client(fake_service(action_handler(), running(ids)))
    client.restart(ids, track=False)
    auth = posts(sent)[0].headers["Authorization"]
    assert auth.startswith(f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=")
    assert "x-project-id" in auth
    assert posts(sent)[0].headers["X-Project-Id"] == PROJECT_ID
    assert all("x-project-id" in r.headers["Authorization"] for r in sent)


def test_repr_is_offline_and_secret_free(mock_client: MockFactory) -> None:
    client, sent = mock_client(list_handler([]))
    text = repr(client)
    assert sent == []
    assert SK not in text
    assert PROJECT_ID in text
    assert "auth=AK/SK" in text
    assert "SIMULATOR" not in text
    assert SK not in repr(client.credentials)


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:9", "https://localhost:8443", "https://[::1]:8443"],
)
def test_only_an_explicit_flag_says_simulator(endpoint: str) -> None:
    # A loopback endpoint can be a tunnel to the real service.
    plain = dmsnb.Client(endpoint, project_id=PROJECT_ID, token="tok-secret")
    flagged = dmsnb.Client(
        endpoint, project_id=PROJECT_ID, token="tok-secret", simulator=True
    )
    assert "SIMULATOR" not in repr(plain)
    assert not plain.is_simulator
    assert "SIMULATOR" in repr(flagged)
    assert "tok-secret" not in repr(plain) + repr(flagged)
    plain.close()
    flagged.close()


def test_no_secret_in_logs_errors_or_the_audit_trail(
    mock_client: MockFactory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    ids = make_ids(2)
    service = fake_service(action_handler(), running(ids))
    refuse = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and refuse["n"]:
            body = {
                "error_code": "APIGW.0301",
                "error_msg": "verify aksk signature fail",
            }
            return httpx.Response(401, json=body)
        return service(request)

    caplog.set_level(logging.DEBUG)
    trail = tmp_path / "secret-check.audit.jsonl"
    client, sent = mock_client(handler, audit=trail)
    client.restart(ids, track=False)
    refuse["n"] = 1
    with pytest.raises(AuthError) as caught:
        client.instances()

    signatures = [r.headers["Authorization"].rsplit("Signature=", 1)[1] for r in sent]
    texts = [
        caplog.text,
        str(caught.value),
        repr(caught.value),
        repr(client),
        trail.read_text(),
    ]
    for text in texts:
        assert SK not in text
        for signature in signatures:
            assert signature not in text
    assert "POST" in caplog.text and "-> 200" in caplog.text
    assert '"kind": "intent"' in trail.read_text()
