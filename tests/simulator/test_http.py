"""The simulator over real HTTP on 127.0.0.1, driven with raw httpx."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from dmsnb import _api
from dmsnb._signing import DATE_FORMAT, DATE_HEADER, AKSKAuth, sign_request
from dmsnb.simulator import Call, Reply, Serve, Simulator, Timings
from dmsnb.simulator._server import ERRORS, loopback_host, passthrough

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"
TOKEN = "MIIsimulated-token-for-tests"
TIMINGS = Timings(
    restart_seconds=3.0, delete_seconds=4.0, list_hides_deleting_after=2.0
)
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def documented_errors() -> dict[str, tuple[int, str]]:
    lines = (DOCS / "error-codes.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return {code: (int(status), message) for status, code, message in rows}


def docs_json(name: str) -> Any:
    return json.loads((DOCS / name).read_text())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(
        instances=123,
        seed=11,
        failed_creations=4,
        errors=3,
        token=TOKEN,
        timings=TIMINGS,
        clock=clock,
    ) as simulator:
        yield simulator


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    auth = AKSKAuth(sim.ak, sim.sk, sim.project_id)
    with httpx.Client(base_url=sim.base_url, auth=auth) as client:
        yield client


def list_path(sim: Simulator, version: str = "v2") -> str:
    return _api.instances_path(version, sim.project_id)


def one_path(sim: Simulator, instance_id: str, version: str = "v2") -> str:
    return _api.instance_path(version, sim.project_id, instance_id)


def action_path(sim: Simulator, version: str = "v2") -> str:
    return _api.action_path(version, sim.project_id)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code
    return body


def listing(http: httpx.Client, sim: Simulator, **params: str) -> dict[str, Any]:
    response = http.get(list_path(sim), params={"engine": "kafka", **params})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


# -- listing and paging ---------------------------------------------------------


def test_paging_collects_every_instance_in_order(
    http: httpx.Client, sim: Simulator
) -> None:
    pages = [
        listing(http, sim, offset=str(offset), limit="50", include_failure="true")
        for offset in (0, 50, 100)
    ]
    assert [len(page["instances"]) for page in pages] == [50, 50, 23]
    assert {page["instance_num"] for page in pages} == {123}
    records = [record for page in pages for record in page["instances"]]
    assert len({record["instance_id"] for record in records}) == 123
    keys = [(-int(r["created_at"]), r["instance_id"]) for r in records]
    assert keys == sorted(keys)


def test_default_limit_and_failures_hidden_by_default(
    http: httpx.Client, sim: Simulator
) -> None:
    page = listing(http, sim)
    assert len(page["instances"]) == 10
    assert page["instance_num"] == 119
    statuses = {r["status"] for r in listing(http, sim, limit="50")["instances"]}
    assert "CREATEFAILED" not in statuses


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"limit": "0"}, "DMS.10240042", None),
        ({"limit": "51"}, "DMS.10240042", None),
        ({"limit": "ten"}, "DMS.10240042", None),
        ({"limit": ""}, "DMS.10240042", None),
        ({"offset": "-1"}, "DMS.10240043", None),
        ({"offset": "x"}, "DMS.10240043", None),
        ({"offset": "119"}, "DMS.10240043", "Offset parameter is invalid"),
        (
            {"offset": "500", "limit": "50"},
            "DMS.10240043",
            "Offset parameter is invalid",
        ),
    ],
)
def test_paging_errors(
    http: httpx.Client,
    sim: Simulator,
    params: dict[str, str],
    code: str,
    message: str | None,
) -> None:
    response = http.get(list_path(sim), params={"engine": "kafka", **params})
    body = assert_error(response, 400, code)
    assert body["error_msg"] == (message or ERRORS[code][1])


def test_the_last_offset_and_an_empty_result(
    http: httpx.Client, sim: Simulator
) -> None:
    assert len(listing(http, sim, offset="118")["instances"]) == 1
    empty = listing(http, sim, engine="rabbitmq", offset="20")
    assert empty == {"instances": [], "instance_num": 0}


def test_name_filters_v2(http: httpx.Client, sim: Simulator) -> None:
    name = listing(http, sim, limit="1")["instances"][0]["name"]
    fuzzy = listing(http, sim, name=name.upper()[:-3], limit="50")
    assert name in [r["name"] for r in fuzzy["instances"]]
    exact = listing(http, sim, name=name, exact_match_name="true")
    assert [r["name"] for r in exact["instances"]] == [name]
    assert (
        listing(http, sim, name=name.upper(), exact_match_name="true")["instance_num"]
        == 0
    )


def test_id_status_and_project_filters_v2(http: httpx.Client, sim: Simulator) -> None:
    record = listing(http, sim, offset="7", limit="1")["instances"][0]
    found = listing(http, sim, instance_id=record["instance_id"])
    assert [r["instance_id"] for r in found["instances"]] == [record["instance_id"]]
    assert listing(http, sim, status="ERROR")["instance_num"] == 3
    failed = listing(http, sim, status="CREATEFAILED", include_failure="true")
    assert failed["instance_num"] == 4
    assert listing(http, sim, enterprise_project_id="0")["instance_num"] == 119
    assert listing(http, sim, enterprise_project_id="other")["instance_num"] == 0


def test_v1_uses_its_own_names(http: httpx.Client, sim: Simulator) -> None:
    def v1(**params: str) -> dict[str, Any]:
        response = http.get(list_path(sim, "v1"), params={"engine": "kafka", **params})
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    assert v1(includeFailure="true")["instance_num"] == 123
    assert v1(include_failure="true")["instance_num"] == 119
    record = v1(limit="1")["instances"][0]
    by_id = v1(id=record["instance_id"])
    assert [r["instance_id"] for r in by_id["instances"]] == [record["instance_id"]]
    exact = v1(name=record["name"], exactMatchName="true")
    assert exact["instance_num"] == 1
    assert v1(name=record["name"].upper(), exactMatchName="true")["instance_num"] == 0


# -- show --------------------------------------------------------------------------


def test_show_answers_a_record_with_every_documented_field(
    http: httpx.Client, sim: Simulator
) -> None:
    documented = docs_json("v2-show-instance-response.json")
    listed = docs_json("v2-list-instances-response.json")["instances"][0]
    iid = listing(http, sim, limit="1")["instances"][0]["instance_id"]
    for version in ("v2", "v1"):
        response = http.get(one_path(sim, iid, version))
        assert response.status_code == 200
        record = response.json()
        assert record["instance_id"] == iid
        assert documented.keys() <= record.keys()
        assert listed.keys() <= record.keys()
        for key, value in documented.items():
            assert type(record[key]) is type(value), key


def test_show_of_unknown_and_malformed_ids(http: httpx.Client, sim: Simulator) -> None:
    assert_error(http.get(one_path(sim, str(uuid.uuid4()))), 404, "DMS.00404022")
    assert_error(http.get(one_path(sim, "not-a-uuid")), 400, "DMS.00400061")
    assert_error(http.delete(one_path(sim, "not-a-uuid")), 400, "DMS.00400061")


# -- batch actions: validation ------------------------------------------------------

IDS = [str(uuid.UUID(int=n, version=4)) for n in range(1, 52)]


@pytest.mark.parametrize("version", ["v2", "v1"])
@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"", "DMS.00400004", id="empty"),
        pytest.param(b"  \n", "DMS.00400004", id="blank"),
        pytest.param(b"{not json", "DMS.00400005", id="not-json"),
        pytest.param(b"[1, 2]", "DMS.00400005", id="not-an-object"),
        pytest.param(b"\xff\xfe", "DMS.00400005", id="not-utf8"),
        pytest.param({"action": "reboot", "instances": IDS[:1]}, "DMS.00400064"),
        pytest.param({"instances": IDS[:1]}, "DMS.00400064", id="no-action"),
        pytest.param({"action": "reboot", "instances": []}, "DMS.00400064"),
        pytest.param({"action": "restart"}, "DMS.00400065", id="no-instances"),
        pytest.param({"action": "delete", "instances": []}, "DMS.00400065"),
        pytest.param({"action": "restart", "instances": IDS}, "DMS.00400100"),
        pytest.param(
            {"action": "restart", "instances": IDS[:50] + IDS[:1]},
            "DMS.00400100",
            id="too-many-before-repeated",
        ),
        pytest.param(
            {"action": "restart", "instances": [IDS[0], IDS[0]]}, "DMS.00400082"
        ),
        pytest.param(
            {"action": "delete", "instances": ["x", "x"]},
            "DMS.00400082",
            id="repeated-before-not-uuid",
        ),
        pytest.param(
            {"action": "delete", "instances": [IDS[0], "kafka-orders"]},
            "DMS.00400030",
        ),
        pytest.param({"action": "delete", "instances": [7]}, "DMS.00400030"),
        pytest.param({"action": "delete", "instances": "abc"}, "DMS.00400062"),
    ],
)
def test_batch_validation(
    http: httpx.Client, sim: Simulator, version: str, body: Any, code: str
) -> None:
    if isinstance(body, bytes):
        response = http.post(
            action_path(sim, version),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    else:
        response = http.post(action_path(sim, version), json=body)
    answer = assert_error(response, 400, code)
    assert answer["error_msg"] == ERRORS[code][1]
    assert "request_id" not in answer
    assert sim.action_log == ()


def test_the_error_table_matches_the_documented_codes() -> None:
    documented = documented_errors()
    for code, (status, message) in ERRORS.items():
        if code.startswith("DMS."):
            assert documented[code] == (status, message), code


# -- batch actions: effects -------------------------------------------------------


def running_ids(http: httpx.Client, sim: Simulator, count: int) -> list[str]:
    page = listing(http, sim, status="RUNNING", limit=str(count))
    return [record["instance_id"] for record in page["instances"]]


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_batch_restart_answers_per_instance_in_request_order(
    http: httpx.Client, sim: Simulator, version: str
) -> None:
    first, second = running_ids(http, sim, 2)
    unknown = str(uuid.uuid4())
    body = {"action": "restart", "instances": [second, unknown, first]}
    response = http.post(action_path(sim, version), json=body)
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"instance": second, "result": "success"},
            {"instance": unknown, "result": "failed"},
            {"instance": first, "result": "success"},
        ]
    }
    assert http.get(one_path(sim, first)).json()["status"] == "RESTARTING"


@pytest.mark.parametrize(
    "name", ["v2-batch-restart-request.json", "v1-batch-delete-request.json"]
)
def test_documented_requests_are_understood(
    http: httpx.Client, sim: Simulator, name: str
) -> None:
    body = docs_json(name)
    version = "v1" if name.startswith("v1") else "v2"
    response = http.post(action_path(sim, version), json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [entry["instance"] for entry in results] == body["instances"]
    assert {entry["result"] for entry in results} == {"failed"}


def test_batch_delete_and_the_deleting_timeline(
    http: httpx.Client, sim: Simulator, clock: FakeClock
) -> None:
    iid = running_ids(http, sim, 1)[0]
    response = http.post(
        action_path(sim), json={"action": "delete", "instances": [iid]}
    )
    assert response.json() == {"results": [{"instance": iid, "result": "success"}]}
    again = http.post(action_path(sim), json={"action": "delete", "instances": [iid]})
    assert again.json()["results"] == [{"instance": iid, "result": "failed"}]

    def listed() -> bool:
        page = listing(http, sim, instance_id=iid)
        return bool(page["instances"])

    assert listed()
    clock.now += 2.0
    assert not listed()
    assert http.get(one_path(sim, iid)).json()["status"] == "DELETING"
    clock.now += 2.0
    assert_error(http.get(one_path(sim, iid)), 404, "DMS.00404022")


def test_batch_delete_is_refused_while_an_instance_restarts(
    http: httpx.Client, sim: Simulator
) -> None:
    restarting, other = running_ids(http, sim, 2)
    http.post(action_path(sim), json={"action": "restart", "instances": [restarting]})
    body = {"action": "delete", "instances": [other, restarting]}
    answer = assert_error(http.post(action_path(sim), json=body), 400, "DMS.00400099")
    assert answer["error_msg"].startswith(ERRORS["DMS.00400099"][1])
    assert restarting in answer["error_msg"]
    assert other not in answer["error_msg"]
    assert http.get(one_path(sim, other)).json()["status"] == "RUNNING"


def test_force_delete_skips_the_recycle_bin(clock: FakeClock) -> None:
    timings = Timings(1.0, 1.0, 0.5, recycle_bin=True)
    with (
        Simulator(instances=5, errors=0, timings=timings, clock=clock) as sim,
        httpx.Client(
            base_url=sim.base_url, auth=AKSKAuth(sim.ak, sim.sk, sim.project_id)
        ) as http,
    ):
        kept, forced = sim.fleet.ids()[:2]
        for iid, force in ((kept, False), (forced, True)):
            body = {"action": "delete", "instances": [iid], "force_delete": force}
            assert http.post(action_path(sim), json=body).status_code == 200
        clock.now += 1.0
        assert http.get(one_path(sim, kept)).json()["status"] == "RECYCLE"
        assert http.get(one_path(sim, forced)).status_code == 404
        bad = {"action": "delete", "instances": [kept], "force_delete": "yes"}
        assert_error(http.post(action_path(sim), json=bad), 400, "DMS.00400062")


@pytest.mark.parametrize(
    ("version", "name"),
    [
        ("v2", "v2-delete-all-failed-request.json"),
        ("v1", "v1-delete-all-failed-request.json"),
    ],
)
def test_delete_all_failed_answers_204_with_an_empty_body(
    http: httpx.Client, sim: Simulator, version: str, name: str
) -> None:
    response = http.post(action_path(sim, version), json=docs_json(name))
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    page = listing(http, sim, include_failure="true", limit="50")
    assert page["instance_num"] == 119
    assert {entry.via for entry in sim.action_log} == {"all_failure"}


def test_delete_all_failed_needs_the_right_name_for_the_version(
    http: httpx.Client, sim: Simulator
) -> None:
    body = {"action": "delete", "allFailure": "kafka"}
    assert_error(http.post(action_path(sim), json=body), 400, "DMS.00400065")
    restart = {"action": "restart", "all_failure": "kafka"}
    assert_error(http.post(action_path(sim), json=restart), 400, "DMS.00400065")
    assert sim.action_log == ()


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_single_delete(
    http: httpx.Client, sim: Simulator, clock: FakeClock, version: str
) -> None:
    iid, restarting = running_ids(http, sim, 2)
    response = http.delete(one_path(sim, iid, version))
    assert response.status_code == 204
    assert response.content == b""
    assert http.get(one_path(sim, iid)).json()["status"] == "DELETING"
    assert_error(http.delete(one_path(sim, iid, version)), 400, "DMS.00400026")
    http.post(action_path(sim), json={"action": "restart", "instances": [restarting]})
    refused = assert_error(
        http.delete(one_path(sim, restarting, version)), 400, "DMS.00400099"
    )
    assert restarting in refused["error_msg"]
    clock.now += 4.0
    assert_error(http.delete(one_path(sim, iid, version)), 404, "DMS.00404022")


# -- authentication -----------------------------------------------------------------


def signed_request(
    sim: Simulator, method: str, url: str, *, sk: str | None = None, **kwargs: Any
) -> httpx.Request:
    request = httpx.Request(method, sim.base_url + url, **kwargs)
    request.headers["X-Project-Id"] = sim.project_id
    sign_request(request, sim.ak, sk or sim.sk)
    return request


def assert_gateway_error(response: httpx.Response, status: int, code: str) -> None:
    body = assert_error(response, status, code)
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_a_wrong_secret_or_access_key_is_refused(sim: Simulator) -> None:
    wrong = [
        AKSKAuth(sim.ak, sim.sk[:-1] + "x", sim.project_id),
        AKSKAuth("WRONGAK0000000000000", sim.sk, sim.project_id),
    ]
    for auth in wrong:
        with httpx.Client(base_url=sim.base_url, auth=auth) as client:
            response = client.get(list_path(sim))
        assert_gateway_error(response, 401, "APIGW.0301")
        assert response.json()["error_msg"] == ERRORS["APIGW.0301"][1]


def test_a_tampered_request_is_refused(sim: Simulator) -> None:
    with httpx.Client() as client:
        request = signed_request(sim, "GET", list_path(sim) + "?limit=5&offset=0")
        assert client.send(request).status_code == 200
        tampered = signed_request(sim, "GET", list_path(sim) + "?limit=5")
        tampered.url = tampered.url.copy_with(query=b"limit=6")
        assert_gateway_error(client.send(tampered), 401, "APIGW.0301")
        body = json.dumps({"action": "restart", "instances": IDS[:1]}).encode()
        signed = signed_request(sim, "POST", action_path(sim), content=body)
        same_length = body.replace(b"restart", b"delete ")
        altered = httpx.Request(
            "POST", signed.url, headers=signed.headers, content=same_length
        )
        assert_gateway_error(client.send(altered), 401, "APIGW.0301")


def test_the_project_header_must_be_signed_and_match(sim: Simulator) -> None:
    url = sim.base_url + list_path(sim)
    with httpx.Client() as client:
        missing = httpx.Request("GET", url)
        sign_request(missing, sim.ak, sim.sk)
        assert_gateway_error(client.send(missing), 401, "APIGW.0301")

        unsigned = httpx.Request("GET", url)
        sign_request(unsigned, sim.ak, sim.sk)
        unsigned.headers["X-Project-Id"] = sim.project_id
        assert_gateway_error(client.send(unsigned), 401, "APIGW.0301")

        other = httpx.Request("GET", url, headers={"X-Project-Id": "f" * 32})
        sign_request(other, sim.ak, sim.sk)
        assert_gateway_error(client.send(other), 401, "DMS.10240104")


def test_a_stale_signature_date_is_refused(sim: Simulator) -> None:
    with httpx.Client() as client:
        for minutes, status in ((20, 401), (-20, 401), (10, 200)):
            request = httpx.Request("GET", sim.base_url + list_path(sim))
            request.headers["X-Project-Id"] = sim.project_id
            moment = datetime.now(timezone.utc) - timedelta(minutes=minutes)
            request.headers[DATE_HEADER] = moment.strftime(DATE_FORMAT)
            sign_request(request, sim.ak, sim.sk)
            assert client.send(request).status_code == status


def test_a_path_project_other_than_the_simulators(sim: Simulator) -> None:
    auth = AKSKAuth(sim.ak, sim.sk, sim.project_id)
    with httpx.Client(base_url=sim.base_url, auth=auth) as client:
        response = client.get(_api.instances_path("v2", "0" * 32))
    assert_gateway_error(response, 401, "DMS.10240104")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"X-Auth-Token": TOKEN}, 200, None),
        ({"X-Auth-Token": TOKEN + "x"}, 401, "DMS.10240101"),
        ({"X-Auth-Token": "ünïcode"}, 401, "DMS.10240101"),
        ({}, 401, "DMS.10240103"),
        ({"Authorization": "Basic abc"}, 401, "APIGW.0301"),
    ],
)
def test_token_auth(
    sim: Simulator, headers: dict[str, str], status: int, code: str | None
) -> None:
    encoded = {name.encode(): value.encode("utf-8") for name, value in headers.items()}
    with httpx.Client(base_url=sim.base_url) as client:
        response = client.get(list_path(sim), headers=encoded)
    assert response.status_code == status
    if code:
        assert_gateway_error(response, status, code)


def test_token_auth_is_off_without_a_token() -> None:
    with (
        Simulator(instances=3) as sim,
        httpx.Client(base_url=sim.base_url) as client,
    ):
        response = client.get(list_path(sim), headers={"X-Auth-Token": "anything"})
    assert_gateway_error(response, 401, "DMS.10240101")


# -- routes, headers, connections -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v3/{pid}/instances"),
        ("GET", "/v2/{pid}/kafka/instances"),
        ("PUT", "/v2/{pid}/instances"),
        ("POST", "/v2/{pid}/instances"),
        ("DELETE", "/v2/{pid}/instances"),
        ("GET", "/"),
    ],
)
def test_unknown_routes(
    http: httpx.Client, sim: Simulator, method: str, url: str
) -> None:
    response = http.request(method, url.format(pid=sim.project_id))
    assert_gateway_error(response, 404, "APIGW.0101")


def test_every_answer_carries_a_request_id(http: httpx.Client, sim: Simulator) -> None:
    iid = running_ids(http, sim, 1)[0]
    answers = [
        http.get(list_path(sim)),
        http.get(one_path(sim, iid)),
        http.get(one_path(sim, str(uuid.uuid4()))),
        http.post(action_path(sim), content=b""),
        http.delete(one_path(sim, iid)),
        http.get("/nowhere"),
    ]
    with httpx.Client(base_url=sim.base_url) as anonymous:
        answers.append(anonymous.get(list_path(sim)))
    assert [a.status_code for a in answers] == [200, 200, 404, 400, 204, 404, 401]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert all(REQUEST_ID.match(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def test_request_counters(http: httpx.Client, sim: Simulator) -> None:
    iid = running_ids(http, sim, 1)[0]
    http.get(one_path(sim, iid))
    http.get(one_path(sim, iid, "v1"))
    http.post(action_path(sim), json={"action": "restart", "instances": [iid]})
    http.delete(one_path(sim, str(uuid.uuid4())))
    http.get("/nowhere")
    assert sim.requests == {
        ("GET", "list"): 1,
        ("GET", "show"): 2,
        ("POST", "action"): 1,
        ("DELETE", "delete_one"): 1,
        ("GET", "unknown"): 1,
    }


def test_many_concurrent_keep_alive_connections(sim: Simulator) -> None:
    auth = AKSKAuth(sim.ak, sim.sk, sim.project_id)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(base_url=sim.base_url, auth=auth, limits=limits) as client:

        def page(offset: int) -> int:
            params = {"offset": str(offset % 100), "limit": "5"}
            return client.get(list_path(sim), params=params).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            codes = list(pool.map(page, range(320)))
        elapsed = time.perf_counter() - started
    assert codes == [200] * 320
    assert elapsed < 10
    assert sim.requests[("GET", "list")] == 320


def test_one_keep_alive_connection_answers_quickly(
    http: httpx.Client, sim: Simulator
) -> None:
    started = time.perf_counter()
    for _ in range(100):
        assert http.get(list_path(sim), params={"limit": "1"}).status_code == 200
    assert time.perf_counter() - started < 3  # no per-answer Nagle stalls


def test_a_raw_http11_exchange_has_a_content_length(sim: Simulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
        conn.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\n\r\n")
        head = conn.recv(65536).split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 401")
    assert re.search(r"(?im)^content-length: \d+\r?$", head)
    assert re.search(r"(?im)^x-request-id: [0-9a-f]{32}\r?$", head)
    assert re.search(r"(?im)^server: dmsnb-simulator\r?$", head)


# -- the Simulator object ------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::1", "192.168.1.10", "example.org", ""])
def test_only_loopback_is_served(host: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        Simulator(host=host)
    assert loopback_host("localhost") == "127.0.0.1"


def test_repr_never_shows_the_secret_or_the_token() -> None:
    sim = Simulator(instances=4, token=TOKEN)
    assert "not running" in repr(sim)
    with sim:
        text = repr(sim)
        assert sim.base_url in text
        assert sim.project_id in text
        assert "instances=4" in text
        assert sim.sk not in text
        assert TOKEN not in text


def test_derived_keys_have_the_documented_shape() -> None:
    sim = Simulator(seed=5)
    assert re.fullmatch(r"[0-9a-f]{32}", sim.project_id)
    assert re.fullmatch(r"[A-Z0-9]{20}", sim.ak)
    assert len(sim.sk) == 40
    assert Simulator(seed=5).sk == sim.sk
    assert Simulator(seed=6).sk != sim.sk
    given = Simulator(ak="AK", sk="SK", project_id="p" * 32)
    assert (given.ak, given.sk, given.project_id) == ("AK", "SK", "p" * 32)


def test_stop_is_idempotent_and_frees_the_port() -> None:
    sim = Simulator(instances=2).start()
    port = sim.port
    held = httpx.Client(base_url=sim.base_url, headers={"X-Auth-Token": "t"})
    assert held.get("/").status_code == 401  # a keep-alive connection stays open
    started = time.perf_counter()
    sim.stop()
    sim.stop()
    assert time.perf_counter() - started < 2
    held.close()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    again = Simulator(instances=2, port=port).start()
    assert again.port == port
    again.stop()


def test_an_interceptor_sees_every_request(http: httpx.Client, sim: Simulator) -> None:
    seen: list[str] = []

    def interceptor(call: Any, serve: Any) -> Any:
        seen.append(call.route.kind)
        return serve()

    sim.interceptor = interceptor
    assert http.get(list_path(sim)).status_code == 200
    assert seen == ["list"]


def test_an_interceptor_can_answer_in_place_of_the_service(
    http: httpx.Client, sim: Simulator
) -> None:
    def throttle(call: Call, serve: Serve) -> Reply | None:
        return Reply(429, b'{"error_code":"APIGW.0308","error_msg":"throttled"}')

    sim.interceptor = throttle
    iid = sim.fleet.ids("RUNNING")[0]
    body = {"action": "restart", "instances": [iid]}
    response = http.post(action_path(sim), json=body)
    assert response.status_code == 429
    assert REQUEST_ID.match(response.headers["X-Request-Id"])
    assert sim.action_log == ()
    assert sim.requests == {("POST", "action"): 1}


def test_an_interceptor_can_lose_the_answer_after_the_action(
    http: httpx.Client, sim: Simulator
) -> None:
    def lose_answer(call: Call, serve: Serve) -> Reply | None:
        serve()
        return None

    sim.interceptor = lose_answer
    iid = sim.fleet.ids("RUNNING")[0]
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(action_path(sim), json={"action": "restart", "instances": [iid]})
    assert [(r.action, r.instance_id) for r in sim.action_log] == [("restart", iid)]
    sim.interceptor = passthrough
    assert http.get(one_path(sim, iid)).json()["status"] == "RESTARTING"


def test_expect_100_continue_is_answered_at_once(sim: Simulator) -> None:
    body = b'{"action": "restart", "instances": []}'
    request = (
        f"POST {action_path(sim)} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {TOKEN}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as conn:
        conn.sendall(request)
        assert conn.recv(1024).startswith(b"HTTP/1.1 100")
        conn.sendall(body)
        assert b"DMS.00400065" in conn.recv(65536)


def test_client_gives_a_ready_dmsnb_client(sim: Simulator) -> None:
    import dmsnb

    client = sim.client()
    try:
        assert isinstance(client, dmsnb.Client)
        assert sim.sk not in repr(client)
    finally:
        client.close()
    with pytest.raises(ValueError, match="auth"):
        sim.client(auth="password")
    with Simulator(instances=1) as tokenless, pytest.raises(ValueError, match="token"):
        tokenless.client(auth="token")
