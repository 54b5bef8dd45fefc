"""The provider's official Python SDK works unchanged against the simulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dmsnb.simulator import Simulator, Timings

pytest.importorskip("huaweicloudsdkkafka")

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
)
from huaweicloudsdkkafka.v2 import (
    BatchRestartOrDeleteInstanceReq,
    BatchRestartOrDeleteInstancesRequest,
    DeleteInstanceRequest,
    KafkaClient,
    ListInstancesRequest,
    ShowInstanceRequest,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    timings = Timings(restart_seconds=3.0, delete_seconds=4.0)
    with Simulator(
        instances=57,
        seed=21,
        failed_creations=3,
        errors=2,
        timings=timings,
        clock=clock,
    ) as simulator:
        yield simulator


def kafka_client(sim: Simulator, sk: str | None = None) -> Any:
    credentials = BasicCredentials(sim.ak, sk or sim.sk, sim.project_id)
    builder = KafkaClient.new_builder().with_credentials(credentials)
    return builder.with_endpoints([sim.base_url]).build()


@pytest.fixture
def sdk(sim: Simulator) -> Iterator[Any]:
    client = kafka_client(sim)
    yield client
    client.close()


def batch(sdk: Any, action: str, ids: list[str] | None = None, **options: Any) -> Any:
    body = BatchRestartOrDeleteInstanceReq(action=action, instances=ids, **options)
    return sdk.batch_restart_or_delete_instances(
        BatchRestartOrDeleteInstancesRequest(body=body)
    )


def sdk_error(call: Any, *args: Any, **kwargs: Any) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call(*args, **kwargs)
    return caught.value


def collect(sdk: Any, **filters: str) -> tuple[list[Any], int]:
    """Page through the list with offset and limit, as an SDK user must."""
    instances: list[Any] = []
    offset, total = 0, None
    while total is None or offset < total:
        request = ListInstancesRequest(
            engine="kafka", offset=str(offset), limit="20", **filters
        )
        page = sdk.list_instances(request)
        total = page.instance_num
        instances.extend(page.instances)
        offset += 20
    return instances, total


def test_paging_collects_every_instance(sdk: Any, sim: Simulator) -> None:
    instances, total = collect(sdk, include_failure="true")
    assert total == 57
    assert len({instance.instance_id for instance in instances}) == 57
    running, total_running = collect(sdk)
    assert total_running == len(running) == 54
    first = instances[0]
    assert first.engine == "kafka"
    assert first.partition_num.isdigit()
    assert sim.requests[("GET", "list")] == 3 + 3


def test_show_instance(sdk: Any, sim: Simulator) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    shown = sdk.show_instance(ShowInstanceRequest(instance_id=iid))
    assert shown.status_code == 200
    assert shown.instance_id == iid
    assert shown.status == "RUNNING"
    assert shown.tags == [] or {tag.key for tag in shown.tags} >= {"env", "team"}


def test_batch_restart_and_delete(sdk: Any, sim: Simulator, clock: FakeClock) -> None:
    first, second = sim.fleet.ids("RUNNING")[:2]
    unknown = str(uuid.uuid4())
    answer = batch(sdk, "restart", [first, unknown])
    assert [(r.instance, r.result) for r in answer.results] == [
        (first, "success"),
        (unknown, "failed"),
    ]
    assert sim.fleet.status(first) == "RESTARTING"

    deleted = batch(sdk, "delete", [second], force_delete=True)
    assert [(r.instance, r.result) for r in deleted.results] == [(second, "success")]
    clock.now += 4.0
    gone = sdk_error(sdk.show_instance, ShowInstanceRequest(instance_id=second))
    assert (gone.status_code, gone.error_code) == (404, "DMS.00404022")


def test_delete_all_failed_gives_no_results(sdk: Any, sim: Simulator) -> None:
    answer = batch(sdk, "delete", all_failure="kafka")
    assert answer.status_code == 204
    assert answer.results is None
    assert "CREATEFAILED" not in sim.fleet.statuses().values()


def test_single_delete(sdk: Any, sim: Simulator) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    answer = sdk.delete_instance(DeleteInstanceRequest(instance_id=iid))
    assert answer.status_code == 204
    assert sim.fleet.status(iid) == "DELETING"


def test_documented_errors_surface_as_the_sdks_exceptions(
    sdk: Any, sim: Simulator
) -> None:
    first, second = sim.fleet.ids("RUNNING")[:2]
    cases = [
        (("reboot", [first]), "DMS.00400064"),
        (("restart", [first, first]), "DMS.00400082"),
        (("restart", [str(uuid.uuid4()) for _ in range(51)]), "DMS.00400100"),
        (("restart", ["not-an-id"]), "DMS.00400030"),
        (("restart", []), "DMS.00400065"),
    ]
    for (action, ids), code in cases:
        error = sdk_error(batch, sdk, action, ids)
        assert (error.status_code, error.error_code) == (400, code)
        assert error.request_id
    batch(sdk, "restart", [first])
    refused = sdk_error(batch, sdk, "delete", [first, second])
    assert (refused.status_code, refused.error_code) == (400, "DMS.00400099")
    assert first in refused.error_msg
    assert sim.fleet.status(second) == "RUNNING"


def test_a_wrong_secret_key_is_refused(sim: Simulator) -> None:
    client = kafka_client(sim, sk="W" * 40)
    try:
        error = sdk_error(client.list_instances, ListInstancesRequest(engine="kafka"))
    finally:
        client.close()
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert error.request_id
