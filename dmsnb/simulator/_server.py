"""The HTTP front end of the simulator: the DMS wire format on 127.0.0.1.

A request travels: socket -> :class:`_Handler` (bytes to a :class:`Call`) ->
:meth:`DmsService.handle` -> the fault layer (the :class:`~._faults.Faults`
settings) -> the **interceptor** (the fault-injection hook) ->
authentication -> routing -> the fleet -> a :class:`Reply` -> socket.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import re
import socket
import socketserver
import struct
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .. import _api
from .._signing import (
    DATE_FORMAT,
    canonical_request,
    parse_authorization,
    signature,
)
from ._fleet import (
    DeleteRefused,
    Fleet,
    InstanceFilter,
    StatusForbids,
    UnknownInstance,
)

if TYPE_CHECKING:
    from ._iam import Identity

logger = logging.getLogger("dmsnb.simulator")

LOOPBACK = "127.0.0.1"
MAX_CLOCK_SKEW = timedelta(minutes=15)

ERRORS: dict[str, tuple[int, str]] = {
    # code: (HTTP status, message), as documented
    "DMS.00400004": (400, "The request body is empty."),
    "DMS.00400005": (
        400,
        "The message body is not in JSON format or contains invalid characters.",
    ),
    "DMS.00400026": (400, "This operation is not allowed due to the instance status."),
    "DMS.00400030": (400, "Invalid DMS instance id. The id must be a uuid."),
    "DMS.00400061": (400, "Invalid instance ID format."),
    "DMS.00400062": (400, "Invalid request parameter."),
    "DMS.00400064": (
        400,
        "The action parameter in the request must be delete or restart.",
    ),
    "DMS.00400065": (400, "The instances parameter in the request is empty."),
    "DMS.00400082": (400, "Instance id is repeated."),
    "DMS.00400099": (
        400,
        "The following instances in the Creating, Starting, Stopping, or "
        "Restarting state cannot be deleted.",
    ),
    "DMS.00400100": (
        400,
        "The instances array can contain a maximum of 50 instance IDs.",
    ),
    "DMS.00404022": (404, "This instance does not exist."),
    "DMS.10240042": (
        400,
        "The number of records on each page for pagination query exceeds the "
        "upper limit.",
    ),
    "DMS.10240043": (
        400,
        "The number of skipped records for pagination query exceeds the upper limit.",
    ),
    "DMS.10240101": (401, "Invalid token."),
    "DMS.10240102": (401, "Expired token."),
    "DMS.10240103": (401, "Missing token."),
    "DMS.10240104": (401, "The project ID and token do not match."),
    "DMS.00500000": (500, "Internal service error."),
    "DMS.111501025": (503, "Query Busy. Please try again later."),
    # the API gateway in front of the service
    "APIGW.0101": (
        404,
        "The API does not exist or has not been published in the environment",
    ),
    "APIGW.0301": (
        401,
        "Incorrect IAM authentication information: verify aksk signature fail",
    ),
    "APIGW.0308": (429, "The throttling threshold has been reached"),
}

OFFSET_INVALID = "Offset parameter is invalid"
ROUTE_KINDS = ("list", "show", "action", "delete_one", "token", "unknown")
TOKENS_PATH = "/v3/auth/tokens"
"""The IAM token call, served when the simulator has users (``_iam.py``)."""
READS = frozenset({"list", "show"})
WRITES = frozenset({"action", "delete_one"})
_ALL_FAILURE = {"v1": "allFailure", "v2": "all_failure"}
_ROUTE = re.compile(r"^/(v2|v1\.0)/([^/]+)/instances(?:/([^/]+))?/?$")


@dataclass(frozen=True)
class Route:
    """What a request path and method address."""

    kind: str
    api_version: str = ""
    project_id: str = ""
    instance_id: str = ""


@dataclass(frozen=True)
class Call:
    """One request exactly as received (header names lowercased)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    route: Route
    request_id: str


@dataclass(frozen=True)
class Reply:
    """One answer: status, body bytes and their content type.

    ``headers`` are sent besides the usual ones (e.g. ``Retry-After``).
    ``truncated`` sends the headers (with the full ``Content-Length``) and
    only the first half of the body, then closes the connection; an answer
    without a body is cut in the middle of its headers. ``reset`` sends
    nothing and resets the connection (TCP RST); status and body are then
    ignored.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    truncated: bool = False
    reset: bool = False


RESET = Reply(0, content_type="", reset=True)
"""The answer that is no answer: the connection is reset at once."""

Serve = Callable[[], Reply]
Interceptor = Callable[[Call, Serve], "Reply | None"]
"""The fault-injection hook.

It is called with the request and a function that serves it for real. It
may delay, answer in its place (5xx, 429, :data:`RESET`), call ``serve``
and change the answer, or return None to close the connection without
answering (an answer lost after the action happened).
"""

Layer = Callable[[Call, Callable[[], "Reply | None"]], "Reply | None"]
"""The outer fault layer: like an interceptor, but what it wraps may itself
answer None (the interceptor inside it closed the connection)."""


def passthrough(call: Call, serve: Serve) -> Reply | None:
    """The default interceptor: serve every request as it is."""
    return serve()


@dataclass(frozen=True)
class Keys:
    """What the simulator accepts: an AK/SK pair, a project, maybe a token."""

    ak: str
    sk: str
    project_id: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Keys(ak={self.ak!r}, project_id={self.project_id!r})"


def loopback_host(host: str) -> str:
    """The address to listen on; anything but the loopback address is refused."""
    if host in (LOOPBACK, "localhost"):
        return LOOPBACK
    raise ValueError(
        f"the simulator listens on {LOOPBACK} only; refusing host {host!r}"
    )


def parse_route(method: str, path: str) -> Route:
    """Classify a request: list, show, action, delete_one, token or unknown."""
    if method == "POST" and path.rstrip("/") == TOKENS_PATH:
        return Route("token")
    match = _ROUTE.match(path)
    if not match:
        return Route("unknown")
    prefix, project_id, instance_id = match.groups()
    api_version = "v2" if prefix == "v2" else "v1"
    project_id, instance_id = unquote(project_id), unquote(instance_id or "")
    kind = {
        ("GET", False): "list",
        ("GET", True): "show",
        ("DELETE", True): "delete_one",
    }.get((method, bool(instance_id)), "unknown")
    if method == "POST" and instance_id == "action":
        kind = "action"
    return Route(kind, api_version, project_id, instance_id)


def json_reply(status: int, payload: object) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def error_reply(
    code: str,
    *,
    detail: str | None = None,
    message: str | None = None,
    request_id: str | None = None,
) -> Reply:
    """A documented error; ``request_id`` in the body marks a gateway answer.

    ``detail`` is appended to the documented message; ``message`` replaces it.
    """
    status, documented = ERRORS[code]
    message = message or documented
    if detail:
        message = f"{message} {detail}"
    body: dict[str, str] = {"error_code": code, "error_msg": message}
    if request_id is not None:
        body["request_id"] = request_id
    return json_reply(status, body)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _fresh(sdk_date: str, now: datetime) -> bool:
    try:
        moment = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return False
    return abs(now - moment) <= MAX_CLOCK_SKEW


def _int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return None


def _true(text: str | None) -> bool:
    return text is not None and text.lower() == "true"


class DmsService:
    """The service behind the sockets: Call in, Reply out. Thread-safe."""

    def __init__(
        self,
        fleet: Fleet,
        keys: Keys,
        *,
        interceptor: Interceptor | None = None,
        faults: Layer | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.fleet = fleet
        self.keys = keys
        self.interceptor: Interceptor = interceptor or passthrough
        self.faults = faults
        self.identity = identity
        """The IAM of password logins and their tokens; None: no IAM."""
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        """Requests received so far per ``(method, route kind)``."""
        with self._counts_lock:
            return dict(self._counts)

    def handle(self, call: Call) -> Reply | None:
        """Count the request and serve it through the faults and the interceptor."""
        with self._counts_lock:
            self._counts[call.method, call.route.kind] += 1

        def intercepted() -> Reply | None:
            return self.interceptor(call, lambda: self.serve(call))

        if self.faults is None:
            return intercepted()
        return self.faults(call, intercepted)

    def serve(self, call: Call) -> Reply:
        """Authenticate, route and answer one request."""
        if call.route.kind == "token":
            if self.identity is None:
                return error_reply("APIGW.0101", request_id=call.request_id)
            return self.identity.issue(call)
        denied = self._authenticate(call)
        if denied is not None:
            return denied
        route = call.route
        if route.kind == "unknown":
            return error_reply("APIGW.0101", request_id=call.request_id)
        if route.project_id != self.keys.project_id:
            return error_reply("DMS.10240104", request_id=call.request_id)
        if route.kind == "list":
            return self._list(call)
        if route.kind == "action":
            return self._action(call)
        if not _api.is_instance_id(route.instance_id):
            return error_reply("DMS.00400061")
        if route.kind == "show":
            return self._show(route.instance_id)
        return self._delete_one(route.instance_id)

    # -- authentication ------------------------------------------------------

    def _authenticate(self, call: Call) -> Reply | None:
        authorization = call.headers.get("authorization")
        if authorization is not None:
            return self._check_aksk(call, authorization)
        token = call.headers.get("x-auth-token")
        if token is None:
            return error_reply("DMS.10240103", request_id=call.request_id)
        if self.keys.token is not None and _same(token, self.keys.token):
            return None
        if self.identity is not None:
            refused = self.identity.check(token, call.route.project_id)
            if refused is None:
                return None
            return error_reply(refused, request_id=call.request_id)
        return error_reply("DMS.10240101", request_id=call.request_id)

    def _check_aksk(self, call: Call, authorization: str) -> Reply | None:
        if not self._signature_valid(call, authorization):
            return error_reply("APIGW.0301", request_id=call.request_id)
        if call.headers["x-project-id"] != self.keys.project_id:
            return error_reply("DMS.10240104", request_id=call.request_id)
        return None

    def _signature_valid(self, call: Call, authorization: str) -> bool:
        fields = parse_authorization(authorization)
        if fields is None or not _same(fields["Access"], self.keys.ak):
            return False
        signed = [name.strip().lower() for name in fields["SignedHeaders"].split(";")]
        if not {"x-sdk-date", "x-project-id"} <= set(signed):
            return False
        if any(name not in call.headers for name in signed):
            return False
        sdk_date = call.headers["x-sdk-date"]
        if not _fresh(sdk_date, datetime.now(timezone.utc)):
            return False
        canonical = canonical_request(
            call.method, call.path, call.query, call.headers, signed, call.body
        )
        expected = signature(self.keys.sk, sdk_date, canonical)
        return _same(fields["Signature"], expected)

    # -- the API -------------------------------------------------------------

    def _list(self, call: Call) -> Reply:
        query = parse_qs(call.query, keep_blank_values=True)
        params = {key: values[0] for key, values in query.items()}
        limit = _int(params.get("limit"), 10)
        if limit is None or not 1 <= limit <= _api.PAGE_LIMIT:
            return error_reply("DMS.10240042")
        offset = _int(params.get("offset"), 0)
        if offset is None or offset < 0:
            return error_reply("DMS.10240043")
        filters = _filters(call.route.api_version, params)
        instances, total = self.fleet.page(filters, offset, limit)
        if total > 0 and offset >= total:
            return error_reply("DMS.10240043", message=OFFSET_INVALID)
        return json_reply(200, {"instances": instances, "instance_num": total})

    def _show(self, instance_id: str) -> Reply:
        record = self.fleet.show(instance_id)
        if record is None:
            return error_reply("DMS.00404022")
        return json_reply(200, record)

    def _delete_one(self, instance_id: str) -> Reply:
        try:
            self.fleet.delete_one(instance_id)
        except UnknownInstance:
            return error_reply("DMS.00404022")
        except DeleteRefused as refused:
            return error_reply("DMS.00400099", detail=",".join(refused.instance_ids))
        except StatusForbids:
            return error_reply("DMS.00400026")
        return Reply(204, content_type="")

    def _action(self, call: Call) -> Reply:
        if not call.body.strip():
            return error_reply("DMS.00400004")
        try:
            body: object = json.loads(call.body)
        except (ValueError, UnicodeDecodeError):
            return error_reply("DMS.00400005")
        if not isinstance(body, dict):
            return error_reply("DMS.00400005")
        return self._act(call.route.api_version, body)

    def _act(self, api_version: str, body: dict[str, Any]) -> Reply:
        action = body.get("action")
        if action not in _api.ACTIONS:
            return error_reply("DMS.00400064")
        force = body.get("force_delete") if api_version == "v2" else None
        force = False if force is None else force
        if not isinstance(force, bool):
            return error_reply("DMS.00400062")
        if action == "delete" and body.get(_ALL_FAILURE[api_version]) == "kafka":
            self.fleet.delete_failed()
            return Reply(204, content_type="")
        instances = body.get("instances")
        problem = _instances_problem(instances)
        if problem is not None or not isinstance(instances, list):
            return error_reply(problem or "DMS.00400062")
        try:
            if action == "restart":
                results = self.fleet.restart(instances)
            else:
                results = self.fleet.delete(instances, force=force)
        except DeleteRefused as refused:
            return error_reply("DMS.00400099", detail=",".join(refused.instance_ids))
        entries = [{"instance": iid, "result": result} for iid, result in results]
        return json_reply(200, {"results": entries})


def _instances_problem(instances: object) -> str | None:
    """The error code for a bad ``instances`` array, in the documented order."""
    if instances is None or instances == []:
        return "DMS.00400065"
    if not isinstance(instances, list):
        return "DMS.00400062"
    if len(instances) > _api.BATCH_LIMIT:
        return "DMS.00400100"
    texts = [item for item in instances if isinstance(item, str)]
    if len(set(texts)) != len(texts):
        return "DMS.00400082"
    if not all(_api.is_instance_id(item) for item in instances):
        return "DMS.00400030"
    return None


def _filters(api_version: str, params: Mapping[str, str]) -> InstanceFilter:
    """Read the list filters under the names of the API version."""
    wire = _api.LIST_FILTERS[api_version]
    values = {key: params.get(name) for key, name in wire.items()}
    return InstanceFilter(
        engine=params.get("engine"),
        name=values["name"],
        exact_match_name=_true(values["exact_match_name"]),
        instance_id=values["instance_id"],
        status=values["status"],
        include_failure=_true(values["include_failure"]),
        enterprise_project_id=values["enterprise_project_id"],
    )


# -- sockets --------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP/1.1 keep-alive requests into Calls and Replies into bytes."""

    protocol_version = "HTTP/1.1"
    server_version = "dmsnb-simulator"
    disable_nagle_algorithm = True
    wbufsize = -1  # one write per answer: headers and body leave together
    server: _ThreadingServer
    _request_id: str | None = None

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def handle_expect_100(self) -> bool:
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the interim answer must not wait in the buffer
        return accepted

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        self.send_header("X-Request-Id", self._request_id or _api.new_request_id())

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        call = Call(
            method=self.command,
            path=path,
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            route=parse_route(self.command, path),
            request_id=_api.new_request_id(),
        )
        reply = self.server.service.handle(call)
        if reply is None:
            self.close_connection = True
            logger.debug(
                "%s %s: connection closed without an answer", call.method, path
            )
            return
        if reply.reset:
            logger.debug("%s %s: connection reset", call.method, path)
            self._reset()
            return
        self._send(reply, call.request_id)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the peer sees a reset, not an orderly end."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        # The files made from the socket hold it open until finish() closes
        # them; the reset goes out then, before the server's orderly shutdown.
        with contextlib.suppress(OSError):
            self.connection.close()

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Send the body with a Content-Length")
            return None
        length = _int(self.headers.get("Content-Length"), 0)
        if length is None or length < 0:
            self.send_error(400, "Bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply, request_id: str) -> None:
        if not reply.truncated:
            self._write(reply, request_id)
            return
        wire = self.wfile
        self.wfile = answer = io.BytesIO()
        try:
            self._write(reply, request_id)
        finally:
            self.wfile = wire
        encoded = answer.getvalue()
        body = reply.body if reply.status != 204 else b""
        head = len(encoded) - len(body)
        cut = head + len(body) // 2 if body else head // 2
        self.close_connection = True
        wire.write(encoded[:cut])
        wire.flush()

    def _write(self, reply: Reply, request_id: str) -> None:
        self._request_id = request_id
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.status != 204:  # a 204 carries neither body nor length
                if reply.content_type:
                    self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status != 204:
                self.wfile.write(reply.body)
        finally:
            self._request_id = None


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: DmsService) -> None:
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host name up; no lookups here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open keep-alive connection, so its thread ends."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while serving %s", client_address, exc_info=True)


class LoopbackServer:
    """The HTTP server in a daemon thread, on 127.0.0.1."""

    def __init__(self, service: DmsService, *, host: str = LOOPBACK, port: int = 0):
        self.service = service
        self._address = (loopback_host(host), port)
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Bind, listen and serve in the background; idempotent."""
        with self._lock:
            if self._server is not None:
                return
            server = _ThreadingServer(self._address, self.service)
            thread = threading.Thread(
                target=server.serve_forever,
                name=f"dmsnb-simulator-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            logger.debug("serving on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving, close the socket and every connection; idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        # shutdown() waits for the serving loop to look at its flag; a
        # connection wakes the loop at once instead of after a poll interval.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            _wake(server.server_port)
            stopper.join(0.01)
        server.server_close()
        server.close_connections()
        thread.join()
        logger.debug("stopped")


def _wake(port: int) -> None:
    with contextlib.suppress(OSError):
        socket.create_connection((LOOPBACK, port), timeout=0.5).close()
