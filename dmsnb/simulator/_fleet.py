"""The simulated fleet: instances, their statuses on a clock, the action rules.

No I/O here. Every read and write first applies the status transitions that
have fallen due on the clock, under one lock, so the fleet is always seen in
a consistent state by concurrent requests.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Clock = Callable[[], float]
Result = Literal["success", "failed"]
Outcome = Literal["normal", "stuck", "error", "error_blip"]
"""How an applied action ends for one instance.

``normal``: restart back to RUNNING, delete gone (or RECYCLE); ``stuck``:
RESTARTING or DELETING forever; ``error`` (restart): ERROR after the restart
time; ``error_blip`` (delete): ERROR for the middle third of the delete time,
then DELETING again and gone as usual.
"""

RUNNING = "RUNNING"
RESTARTING = "RESTARTING"
DELETING = "DELETING"
RECYCLE = "RECYCLE"
CREATEFAILED = "CREATEFAILED"
ERROR = "ERROR"

DELETE_FORBIDDEN = frozenset(
    {"CREATING", "STARTING", "STOPPING", "CLOSING", RESTARTING}
)
"""Statuses in which an instance cannot be deleted (DMS.00400099)."""

_GONE = "<gone>"
_DAY = 86_400.0
_YEAR = 365 * _DAY


@dataclass(frozen=True)
class Timings:
    """How long the simulated service takes, in seconds of the fleet's clock."""

    restart_seconds: float = 3.0
    delete_seconds: float = 4.0
    list_hides_deleting_after: float = 2.0
    """A DELETING instance leaves the list this long after its delete began."""
    recycle_bin: bool = False
    """When True a deleted instance ends in RECYCLE (and stays listed)."""

    def __post_init__(self) -> None:
        for name in ("restart_seconds", "delete_seconds", "list_hides_deleting_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class ActionRecord:
    """One action the simulator applied to one instance."""

    time: float
    action: str
    """``restart`` or ``delete``."""
    instance_id: str
    status_before: str
    via: str
    """``batch``, ``single`` (DELETE of one instance) or ``all_failure``."""


class Outcomes(Protocol):
    """The fleet's fault hooks, asked while the fleet applies an action."""

    def refuses(self, action: str, instance_id: str) -> bool:
        """Whether this instance of a batch action answers ``failed`` instead.

        Asked only for an instance the action would otherwise be applied to.
        """
        ...

    def outcome(self, action: str, instance_id: str) -> Outcome:
        """How the action now applied to the instance ends."""
        ...


class NoFaults:
    """Outcomes without faults: nothing refused, every action ends normally."""

    def refuses(self, action: str, instance_id: str) -> bool:
        return False

    def outcome(self, action: str, instance_id: str) -> Outcome:
        return "normal"


@dataclass(frozen=True)
class InstanceFilter:
    """The list filters of the API, in the v2 names."""

    engine: str | None = None
    name: str | None = None
    exact_match_name: bool = False
    instance_id: str | None = None
    status: str | None = None
    include_failure: bool = False
    enterprise_project_id: str | None = None


class DeleteRefused(Exception):
    """Some instances are in a status that forbids deleting (DMS.00400099)."""

    def __init__(self, instance_ids: Iterable[str]) -> None:
        self.instance_ids = tuple(instance_ids)
        super().__init__(", ".join(self.instance_ids))


class UnknownInstance(LookupError):
    """The instance does not exist, or no longer exists (DMS.00404022)."""


class StatusForbids(Exception):
    """The instance's status does not allow the operation (DMS.00400026)."""


@dataclass
class _Instance:
    record: dict[str, Any]
    steps: list[tuple[float, str]] = field(default_factory=list)
    """The transitions still to come, ``(due time, status)``, in order."""
    generation: int = 0
    deleting_since: float | None = None

    @property
    def status(self) -> str:
        return str(self.record["status"])


class Fleet:
    """A seeded, deterministic fleet of Kafka instances.

    ``failed_creations`` and ``errors`` give exact counts of CREATEFAILED and
    ERROR instances; when either is given every other instance is RUNNING.
    Otherwise the statuses are a realistic mix (mostly RUNNING, about 5 %
    ERROR, about 5 % CREATEFAILED, a rare FROZEN or EXTENDING).
    ``now_epoch`` anchors ``created_at`` (default: the start of today, UTC).
    ``outcomes`` (settable as :attr:`outcomes`) decides per instance whether a
    batch action fails for it and how an applied action ends.
    """

    def __init__(
        self,
        *,
        instances: int = 40,
        seed: int = 7,
        timings: Timings | None = None,
        clock: Clock | None = None,
        failed_creations: int | None = None,
        errors: int | None = None,
        now_epoch: float | None = None,
        outcomes: Outcomes | None = None,
    ) -> None:
        self.seed = seed
        self.outcomes: Outcomes = outcomes or NoFaults()
        self.timings = timings or Timings()
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, str, int]] = []
        self._sequence = itertools.count()
        self._log: list[ActionRecord] = []
        # The filtered listing is kept until something a list shows changes:
        # a status, an instance gone, a DELETING instance leaving the list.
        self._version = 0
        self._hides: list[float] = []
        self._listings: dict[tuple[InstanceFilter, int], list[_Instance]] = {}
        records = generate_records(
            instances,
            seed,
            failed_creations=failed_creations,
            errors=errors,
            now_epoch=now_epoch,
        )
        records.sort(key=_listing_order)
        self._order = [record["instance_id"] for record in records]
        self._instances = {
            record["instance_id"]: _Instance(record) for record in records
        }

    def __repr__(self) -> str:
        return f"<Fleet seed={self.seed} instances={len(self)}>"

    def __len__(self) -> int:
        with self._lock:
            self._advance()
            return len(self._instances)

    # -- reads -------------------------------------------------------------

    def page(
        self, filters: InstanceFilter, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the filtered, listed instances and the filtered total."""
        with self._lock:
            now = self._advance()
            matching = self._matching(filters, now)
            chosen = matching[offset : offset + limit]
            return [_copied(inst.record) for inst in chosen], len(matching)

    def show(self, instance_id: str) -> dict[str, Any] | None:
        """The full record of one instance, or None when it does not exist."""
        with self._lock:
            self._advance()
            inst = self._instances.get(instance_id)
            return _copied(inst.record) if inst else None

    def status(self, instance_id: str) -> str | None:
        """The status of one instance, or None when it does not exist."""
        with self._lock:
            self._advance()
            inst = self._instances.get(instance_id)
            return inst.status if inst else None

    def statuses(self) -> dict[str, str]:
        """``{instance_id: status}`` of every existing instance, listed or not."""
        with self._lock:
            self._advance()
            return {iid: self._instances[iid].status for iid in self._existing()}

    def ids(self, status: str | None = None) -> list[str]:
        """Ids of the existing instances in listing order, optionally by status."""
        return [
            iid for iid, current in self.statuses().items() if status in (None, current)
        ]

    @property
    def action_log(self) -> tuple[ActionRecord, ...]:
        """Every action applied so far, oldest first."""
        with self._lock:
            return tuple(self._log)

    # -- writes ------------------------------------------------------------

    def restart(self, instance_ids: Iterable[str]) -> list[tuple[str, Result]]:
        """Restart every RUNNING instance; any other id gets ``failed``."""
        with self._lock:
            now = self._advance()
            return [(iid, self._restart_one(iid, now)) for iid in instance_ids]

    def delete(
        self, instance_ids: Iterable[str], *, force: bool = False
    ) -> list[tuple[str, Result]]:
        """Delete instances, all or nothing on forbidden statuses.

        Raises :class:`DeleteRefused` (and changes nothing) when any of them
        is creating, starting, stopping or restarting. Unknown ids,
        instances already DELETING and instances the :attr:`outcomes` refuse
        get ``failed``. ``force`` skips the recycle bin.
        """
        ids = list(instance_ids)
        with self._lock:
            now = self._advance()
            self._refuse_forbidden(ids)
            results: list[tuple[str, Result]] = []
            for iid in ids:
                inst = self._instances.get(iid)
                if (
                    inst is None
                    or inst.status == DELETING
                    or self.outcomes.refuses("delete", iid)
                ):
                    results.append((iid, "failed"))
                else:
                    self._start_delete(inst, now, force=force, via="batch")
                    results.append((iid, "success"))
            return results

    def delete_one(self, instance_id: str) -> None:
        """Delete one instance (the single DELETE call).

        Raises :class:`UnknownInstance`, :class:`DeleteRefused`, or
        :class:`StatusForbids` when it is already being deleted.
        """
        with self._lock:
            now = self._advance()
            inst = self._instances.get(instance_id)
            if inst is None:
                raise UnknownInstance(instance_id)
            self._refuse_forbidden([instance_id])
            if inst.status == DELETING:
                raise StatusForbids(instance_id)
            self._start_delete(inst, now, force=False, via="single")

    def delete_failed(self) -> list[str]:
        """Remove every CREATEFAILED instance at once; their ids, in list order."""
        with self._lock:
            now = self._advance()
            failed = [
                iid
                for iid in self._existing()
                if self._instances[iid].status == CREATEFAILED
            ]
            for iid in failed:
                self._record(now, "delete", iid, CREATEFAILED, "all_failure")
                del self._instances[iid]
            return failed

    def set_status(self, instance_id: str, status: str) -> None:
        """Put an instance in ``status`` at once, cancelling any transition.

        Meant for tests and demos (e.g. an instance stuck in CREATING).
        """
        with self._lock:
            self._advance()
            inst = self._instances.get(instance_id)
            if inst is None:
                raise UnknownInstance(instance_id)
            inst.generation += 1
            inst.steps = []
            inst.deleting_since = None
            inst.record["status"] = status
            self._version += 1

    # -- internals (the lock is held) --------------------------------------

    def _advance(self) -> float:
        """Apply every transition due by now; return now."""
        now = self._clock()
        while self._queue and self._queue[0][0] <= now:
            _, _, iid, generation = heapq.heappop(self._queue)
            inst = self._instances.get(iid)
            if inst is None or inst.generation != generation or not inst.steps:
                continue
            _, status = inst.steps.pop(0)
            self._version += 1
            if status == _GONE:
                del self._instances[iid]
                continue
            inst.record["status"] = status
            if inst.steps:
                self._push(inst)
            else:
                inst.deleting_since = None
        return now

    def _schedule(
        self, inst: _Instance, now: float, steps: list[tuple[float, str]]
    ) -> None:
        """Replace the instance's transitions by ``(delay, status)`` steps."""
        inst.generation += 1
        inst.steps = [(now + delay, status) for delay, status in steps]
        if inst.steps:
            self._push(inst)

    def _push(self, inst: _Instance) -> None:
        entry = (inst.steps[0][0], next(self._sequence), inst.record["instance_id"])
        heapq.heappush(self._queue, (*entry, inst.generation))

    def _existing(self) -> Iterator[str]:
        return (iid for iid in self._order if iid in self._instances)

    def _listed(self, now: float) -> Iterator[_Instance]:
        hide_after = self.timings.list_hides_deleting_after
        for iid in self._existing():
            inst = self._instances[iid]
            since = inst.deleting_since
            hidden = since is not None and now - since >= hide_after
            if hidden and inst.status == DELETING:
                continue
            yield inst

    def _restart_one(self, iid: str, now: float) -> Result:
        inst = self._instances.get(iid)
        if inst is None or inst.status != RUNNING:
            return "failed"
        if self.outcomes.refuses("restart", iid):
            return "failed"
        self._record(now, "restart", iid, RUNNING, "batch")
        inst.record["status"] = RESTARTING
        outcome = self.outcomes.outcome("restart", iid)
        took = self.timings.restart_seconds
        if outcome == "stuck":
            self._schedule(inst, now, [])
        else:
            self._schedule(
                inst, now, [(took, ERROR if outcome == "error" else RUNNING)]
            )
        return "success"

    def _refuse_forbidden(self, ids: list[str]) -> None:
        forbidden = [
            iid
            for iid in dict.fromkeys(ids)
            if iid in self._instances
            and self._instances[iid].status in DELETE_FORBIDDEN
        ]
        if forbidden:
            raise DeleteRefused(forbidden)

    def _start_delete(
        self, inst: _Instance, now: float, *, force: bool, via: str
    ) -> None:
        before = inst.status
        self._record(now, "delete", inst.record["instance_id"], before, via)
        to_bin = self.timings.recycle_bin and not force and before != RECYCLE
        inst.record["status"] = DELETING
        inst.deleting_since = now
        heapq.heappush(self._hides, now + self.timings.list_hides_deleting_after)
        outcome = self.outcomes.outcome("delete", inst.record["instance_id"])
        took = self.timings.delete_seconds
        end = RECYCLE if to_bin else _GONE
        if outcome == "stuck":
            self._schedule(inst, now, [])
        elif outcome == "error_blip":
            blip = [(took / 3, ERROR), (2 * took / 3, DELETING), (took, end)]
            self._schedule(inst, now, blip)
        else:
            self._schedule(inst, now, [(took, end)])

    def _record(self, now: float, action: str, iid: str, before: str, via: str) -> None:
        self._log.append(ActionRecord(now, action, iid, before, via))
        self._version += 1

    def _matching(self, filters: InstanceFilter, now: float) -> list[_Instance]:
        """The listed instances that match ``filters``, in listing order."""
        while self._hides and self._hides[0] <= now:
            heapq.heappop(self._hides)
            self._version += 1
        key = (filters, self._version)
        matching = self._listings.get(key)
        if matching is None:
            if len(self._listings) >= 8:
                self._listings.clear()
            matching = [inst for inst in self._listed(now) if _matches(inst, filters)]
            self._listings[key] = matching
        return matching


def _copied(value: Any) -> Any:
    """A copy of a record down to its last list and dict (``deepcopy`` is
    several times slower for these plain JSON values)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _listing_order(record: dict[str, Any]) -> tuple[int, str]:
    """Newest first, then by id: the order the list call answers in."""
    return (-int(record["created_at"]), str(record["instance_id"]))


def _matches(inst: _Instance, filters: InstanceFilter) -> bool:
    record = inst.record
    checks = (
        filters.engine is None or filters.engine.lower() == record["engine"],
        filters.include_failure or inst.status != CREATEFAILED,
        _name_matches(str(record["name"]), filters),
        filters.instance_id is None or filters.instance_id == record["instance_id"],
        filters.status is None or filters.status.upper() == inst.status,
        filters.enterprise_project_id is None
        or filters.enterprise_project_id == record["enterprise_project_id"],
    )
    return all(checks)


def _name_matches(name: str, filters: InstanceFilter) -> bool:
    if filters.name is None:
        return True
    if filters.exact_match_name:
        return name == filters.name
    return filters.name.lower() in name.lower()


# -- the records ---------------------------------------------------------------

_TEAMS = (
    "orders", "billing", "payments", "checkout", "search", "inventory",
    "catalog", "ledger", "fraud", "identity", "logistics", "telemetry",
    "analytics", "notify", "pricing", "shipping", "audit", "clickstream",
)  # fmt: skip
_ENVS = ("prod", "stg", "dev")
_ENV_WEIGHTS = (5, 3, 2)
_ENGINE_VERSIONS = ("1.1.0", "2.3.0", "2.7", "3.x")
_ENGINE_WEIGHTS = (1, 2, 4, 5)
_OWNERS = ("a.tan", "j.meyer", "r.kumar", "s.li", "m.rossi", "platform-team")
_USERS = ("ops-admin", "platform-ci", "deploy-bot")
_WINDOWS = (
    ("02:00:00", "06:00:00"),
    ("22:00:00", "02:00:00"),
    ("18:00:00", "22:00:00"),
    ("10:00:00", "14:00:00"),
)


@dataclass(frozen=True)
class _Flavor:
    specification: str
    size: str
    product_id: str
    partitions: int
    storage_choices: tuple[int, ...]
    weight: int


_FLAVORS = (
    _Flavor("100MB", "mini", "00300-30308-0--0", 300, (300, 600, 900), 4),
    _Flavor("300MB", "small", "00300-30310-0--0", 900, (600, 1200, 1800), 3),
    _Flavor("600MB", "middle", "00300-30312-0--0", 1800, (1200, 2400, 3600), 2),
    _Flavor("1200MB", "high", "00300-30314-0--0", 1800, (2400, 4800, 7200), 1),
)


@dataclass(frozen=True)
class _Network:
    vpc_id: str
    vpc_name: str
    subnet_id: str
    subnet_name: str
    octet: int
    security_group_id: str
    security_group_name: str


@dataclass(frozen=True)
class _World:
    """What the instances of one fleet share: owner, zones, networks."""

    user_id: str
    zones: tuple[tuple[str, str], ...]
    networks: dict[str, _Network]
    now_ms: int


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _world(rng: random.Random, now_epoch: float | None) -> _World:
    if now_epoch is None:
        now_epoch = time.time() // _DAY * _DAY
    networks = {}
    for index, env in enumerate(_ENVS):
        networks[env] = _Network(
            vpc_id=_uuid(rng),
            vpc_name=f"vpc-{env}-core",
            subnet_id=_uuid(rng),
            subnet_name=f"subnet-{env}-kafka",
            octet=10 * (index + 1),
            security_group_id=_uuid(rng),
            security_group_name=f"sg-kafka-{env}",
        )
    zones = tuple((_hex(rng, 32), f"AZ{n}") for n in (1, 2, 3))
    return _World(_hex(rng, 32), zones, networks, int(now_epoch * 1000))


def _statuses(
    rng: random.Random, count: int, failed: int | None, errors: int | None
) -> list[str]:
    if failed is None and errors is None:
        return [_random_status(rng.random()) for _ in range(count)]
    failed, errors = failed or 0, errors or 0
    if failed < 0 or errors < 0 or failed + errors > count:
        raise ValueError(
            f"failed_creations ({failed}) and errors ({errors}) must be >= 0 "
            f"and fit in {count} instances"
        )
    statuses = [RUNNING] * count
    chosen = rng.sample(range(count), failed + errors)
    for position, index in enumerate(chosen):
        statuses[index] = CREATEFAILED if position < failed else ERROR
    return statuses


def _random_status(draw: float) -> str:
    for bound, status in ((0.05, ERROR), (0.10, CREATEFAILED), (0.11, "FROZEN")):
        if draw < bound:
            return status
    return "EXTENDING" if draw < 0.12 else RUNNING


def generate_records(
    count: int,
    seed: int,
    *,
    failed_creations: int | None = None,
    errors: int | None = None,
    now_epoch: float | None = None,
) -> list[dict[str, Any]]:
    """``count`` instance records in the service's format, the same for a seed."""
    if count < 0:
        raise ValueError("the number of instances must not be negative")
    rng = random.Random(seed)
    world = _world(rng, now_epoch)
    statuses = _statuses(rng, count, failed_creations, errors)
    numbers: dict[tuple[str, str], int] = {}
    records = []
    for status in statuses:
        team = rng.choice(_TEAMS)
        env = rng.choices(_ENVS, _ENV_WEIGHTS)[0]
        numbers[team, env] = numbers.get((team, env), 0) + 1
        name = f"kafka-{team}-{env}-{numbers[team, env]:02d}"
        records.append(_record(rng, world, name, team, env, status))
    return records


def _ips(rng: random.Random, octet: int) -> list[str]:
    hosts = rng.sample(range(2, 255), 3)
    return [f"192.168.{octet}.{host}" for host in hosts]


def _tags(rng: random.Random, team: str, env: str) -> list[dict[str, str]]:
    if rng.random() < 0.1:
        return []
    tags = [{"key": "env", "value": env}, {"key": "team", "value": team}]
    if rng.random() < 0.4:
        tags.append({"key": "owner", "value": rng.choice(_OWNERS)})
    if rng.random() < 0.3:
        tags.append({"key": "cost-center", "value": f"cc-{rng.randint(1000, 1999)}"})
    return tags


def _cross_vpc_info(rng: random.Random, ips: list[str]) -> str:
    info = {
        ip: {"advertised_ip": ip, "port": 9011, "port_id": _uuid(rng)} for ip in ips
    }
    return json.dumps(info, separators=(",", ":"))


def _record(
    rng: random.Random, world: _World, name: str, team: str, env: str, status: str
) -> dict[str, Any]:
    """One instance, with every field of the documented show answer."""
    flavor = rng.choices(_FLAVORS, [f.weight for f in _FLAVORS])[0]
    network = world.networks[env]
    failed = status == CREATEFAILED
    ssl = rng.random() < 0.4
    port = 9093 if ssl else 9092
    ips = _ips(rng, network.octet)
    zones = list(world.zones) if rng.random() < 0.4 else [rng.choice(world.zones)]
    total = rng.choice(flavor.storage_choices)
    storage = total * 82 // 100
    age = rng.uniform(0, 60 * _DAY) if failed else rng.uniform(_DAY, 3 * _YEAR)
    charging_mode = 1 if rng.random() < 0.7 else 0
    begin, end = rng.choice(_WINDOWS)
    cross_vpc = _cross_vpc_info(rng, ips)
    pods = ",".join(
        f"100.86.{rng.randint(0, 255)}.{rng.randint(2, 254)}:9080" for _ in ips
    )
    addresses = not failed
    return {
        "name": name,
        "engine": "kafka",
        "port": port,
        "status": status,
        "type": "cluster",
        "specification": flavor.specification,
        "engine_version": rng.choices(_ENGINE_VERSIONS, _ENGINE_WEIGHTS)[0],
        "connect_address": ",".join(ips) if addresses else "",
        "instance_id": _uuid(rng),
        "resource_spec_code": f"dms.instance.kafka.cluster.c3.{flavor.size}",
        "charging_mode": charging_mode,
        "vpc_id": network.vpc_id,
        "vpc_name": network.vpc_name,
        "created_at": str(world.now_ms - int(age * 1000)),
        "product_id": flavor.product_id,
        "security_group_id": network.security_group_id,
        "security_group_name": network.security_group_name,
        "subnet_id": network.subnet_id,
        "available_zones": [zone_id for zone_id, _ in zones],
        "available_zone_names": [zone_name for _, zone_name in zones],
        "user_id": world.user_id,
        "user_name": rng.choice(_USERS),
        "access_user": "kafka-admin" if ssl else "",
        "maintain_begin": begin,
        "maintain_end": end,
        "enable_log_collection": rng.random() < 0.2,
        "new_auth_cert": False,
        "storage_space": storage,
        "total_storage_space": total,
        "used_storage_space": 0 if failed else rng.randint(0, storage * 7 // 10),
        "partition_num": str(flavor.partitions),
        "enable_publicip": False,
        "ssl_enable": ssl,
        "broker_ssl_enable": False,
        "cert_replaced": False,
        "kafka_security_protocol": "SASL_SSL" if ssl else "PLAINTEXT",
        "management_connect_address": f"https://{ips[0]}:9999" if addresses else "",
        "cross_vpc_info": cross_vpc if addresses else "",
        "storage_resource_id": _uuid(rng),
        "storage_spec_code": rng.choice(
            ("dms.physical.storage.ultra", "dms.physical.storage.high")
        ),
        "service_type": "advanced",
        "storage_type": "hec",
        "enterprise_project_id": "0",
        "retention_policy": rng.choice(("produce_reject", "time_base")),
        "ipv6_enable": False,
        "ipv6_connect_addresses": [],
        "rest_enable": False,
        "rest_connect_address": "",
        "kafka_public_status": "closed",
        "public_bandwidth": 0,
        "trace_enable": False,
        "agent_enable": False,
        "pod_connect_address": pods if addresses else "",
        "disk_encrypted": False,
        "kafka_private_connect_address": (
            ",".join(f"{ip}:{port}" for ip in ips) if addresses else ""
        ),
        "new_spec_billing_enable": False,
        "ces_version": "linux",
        "description": rng.choice(("", f"{team} event streams ({env})")),
        "dns_enable": False,
        "subnet_name": network.subnet_name,
        "subnet_cidr": f"192.168.{network.octet}.0/24",
        "order_id": "" if charging_mode else f"CS{rng.randint(10**15, 10**16 - 1)}",
        "sasl_enabled_mechanisms": ["PLAIN"] if ssl else [],
        "ssl_two_way_enable": False,
        "is_logical_volume": True,
        "extend_times": 0,
        "enable_auto_topic": rng.random() < 0.3,
        "public_boundwidth": 0,
        "node_num": 3,
        "broker_num": 3,
        "enable_acl": False,
        "tags": _tags(rng, team, env),
        "dr_enable": False,
    }
