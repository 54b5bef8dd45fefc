"""IAM tokens from a password, against the simulator's IAM over real HTTP."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import dmsnb
from dmsnb import AuthError, ConfigError, TransportError
from dmsnb._iam import IAMTokenProvider, PasswordLogin, parse_iam_time, tokens_url
from dmsnb._retry import RetryPolicy
from dmsnb._signing import RenewingTokenAuth
from dmsnb.simulator import Call, Reply, Serve, Simulator, Timings

PASSWORD = "correct horse %battery% staple"
DOMAIN = "OTC-EU-DE-00000000001000000001"
TIMINGS = Timings(
    restart_seconds=0.2, delete_seconds=0.2, list_hides_deleting_after=0.1
)
FAST = dmsnb.Tracking(interval=0.02, max_interval=0.05, settle_seconds=0.5, timeout=5)
QUICK_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, total_seconds=5)


class JumpingClock:
    """Monotonic time that tests can move forward at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class SlowIAM:
    """An interceptor that delays the token calls, or answers them itself."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.answer: Reply | None = None

    def __call__(self, call: Call, serve: Serve) -> Reply | None:
        if call.route.kind != "token":
            return serve()
        time.sleep(self.delay)
        return self.answer or serve()


class RevokeAtTheAction:
    """Refuses the first batch action for its token; then IAM answers ``status``
    (None: IAM serves)."""

    def __init__(self, status: int | None, body: bytes = b"") -> None:
        self.status = status
        self.body = body or b'{"error": {"code": 0, "message": "busy"}}'
        self.iam_down = False

    def __call__(self, call: Call, serve: Serve) -> Reply | None:
        if call.route.kind == "action" and not self.iam_down:
            self.iam_down = True
            body = b'{"error_code": "DMS.10240101", "error_msg": "Invalid token."}'
            return Reply(401, body)
        if call.route.kind == "token" and self.iam_down and self.status:
            return Reply(self.status, self.body)
        return serve()


@pytest.fixture
def clock() -> JumpingClock:
    return JumpingClock()


@pytest.fixture
def sim(clock: JumpingClock) -> Iterator[Simulator]:
    with Simulator(
        instances=12,
        seed=21,
        timings=TIMINGS,
        users={"ops-alice": PASSWORD},
        domain_name=DOMAIN,
        token_lifetime=100.0,
        clock=clock,
    ) as simulator:
        yield simulator


@pytest.fixture
def slow_iam(sim: Simulator) -> SlowIAM:
    slow = SlowIAM()
    sim.interceptor = slow
    return slow


def login(sim: Simulator, **changes: Any) -> PasswordLogin:
    fields: dict[str, Any] = {
        "auth_url": sim.iam_url,
        "username": "ops-alice",
        "password": PASSWORD,
        "domain_name": DOMAIN,
        "project_id": sim.project_id,
    }
    fields.update(changes)
    return PasswordLogin(**fields)


def token_body(sim: Simulator, **user: Any) -> dict[str, Any]:
    return login(sim, **user).request_body()


def password_client(sim: Simulator, **options: Any) -> dmsnb.Client:
    credentials = dmsnb.Credentials.from_password(
        login(sim, **options.pop("login", {})),
        retry=options.pop("iam_retry", QUICK_RETRY),
        clock=options.pop("iam_clock", time.monotonic),
    )
    options.setdefault("tracking", FAST)
    options.setdefault("retry", QUICK_RETRY)
    options.setdefault("audit", None)
    return dmsnb.Client(sim.base_url, credentials=credentials, **options)


def requests_of(sim: Simulator, method: str, kind: str) -> int:
    return sim.requests.get((method, kind), 0)


# -- the simulated IAM on the wire ------------------------------------------------


def test_a_password_login_answers_201_with_the_token_in_the_header(
    sim: Simulator,
) -> None:
    response = httpx.post(sim.iam_url + "/auth/tokens", json=token_body(sim))

    assert response.status_code == 201
    assert response.headers["X-Subject-Token"].startswith("MII")
    token = response.json()["token"]
    issued = parse_iam_time(token["issued_at"])
    expires = parse_iam_time(token["expires_at"])
    assert (expires - issued).total_seconds() == pytest.approx(100.0, abs=0.01)
    assert token["project"]["id"] == sim.project_id
    assert token["user"]["name"] == "ops-alice"
    assert PASSWORD not in response.text


def test_a_token_issued_by_the_iam_is_accepted_by_the_dms_routes(
    sim: Simulator,
) -> None:
    answer = httpx.post(sim.iam_url + "/auth/tokens", json=token_body(sim))
    headers = {"X-Auth-Token": answer.headers["X-Subject-Token"]}

    listed = httpx.get(f"{sim.base_url}/v2/{sim.project_id}/instances", headers=headers)

    assert listed.status_code == 200
    assert listed.json()["instance_num"] == 12


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"password": "wrong"}, 401, "username or password is wrong"),
        ({"username": "ops-bob"}, 401, "username or password is wrong"),
        ({"domain_name": "another-domain"}, 401, "username or password is wrong"),
        ({"project_id": "f" * 32}, 401, "no access to the project"),
        ({"project_id": None, "project_name": "eu-nl"}, 401, "no access"),
    ],
)
def test_the_iam_refuses_a_wrong_login(
    sim: Simulator, change: dict[str, Any], status: int, message: str
) -> None:
    response = httpx.post(sim.iam_url + "/auth/tokens", json=token_body(sim, **change))

    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert "X-Subject-Token" not in response.headers


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"auth": {"identity": {"methods": ["token"]}}}', "must contain 'password'"),
        (
            b'{"auth": {"identity": {"methods": ["password"], "password": '
            b'{"user": {"name": "ops-alice", "password": "x"}}}}}',
            "domain.name",
        ),
    ],
)
def test_the_iam_answers_400_to_a_malformed_login(
    sim: Simulator, body: bytes, message: str
) -> None:
    response = httpx.post(sim.iam_url + "/auth/tokens", content=body)

    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_a_login_scoped_by_project_name_gets_the_project_id(sim: Simulator) -> None:
    body = token_body(sim, project_id=None, project_name=sim.identity.project_name)
    response = httpx.post(sim.iam_url + "/auth/tokens", json=body)

    assert response.status_code == 201
    assert response.json()["token"]["project"]["id"] == sim.project_id


def test_without_users_the_simulator_has_no_iam() -> None:
    with Simulator(instances=1) as plain:
        response = httpx.post(plain.base_url + "/v3/auth/tokens", json={})
        assert response.status_code == 404
        assert response.json()["error_code"] == "APIGW.0101"
        with pytest.raises(ValueError, match="needs an IAM"):
            plain.client(auth="password")
        with pytest.raises(ValueError, match="no IAM"):
            plain.revoke_tokens()


@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("expired", "DMS.10240102"),
        ("revoked", "DMS.10240101"),
        ("other project", "DMS.10240104"),
    ],
)
def test_the_dms_routes_refuse_expired_revoked_and_foreign_tokens(
    sim: Simulator, clock: JumpingClock, what: str, code: str
) -> None:
    answer = httpx.post(sim.iam_url + "/auth/tokens", json=token_body(sim))
    headers = {"X-Auth-Token": answer.headers["X-Subject-Token"]}
    project = sim.project_id
    if what == "expired":
        clock.advance(100.0)
    elif what == "revoked":
        sim.revoke_tokens()
    else:
        project = "e" * 32

    response = httpx.get(f"{sim.base_url}/v2/{project}/instances", headers=headers)

    assert response.status_code == 401
    assert response.json()["error_code"] == code


# -- the provider: cache, renewal, threads ----------------------------------------


def test_the_token_is_cached_and_renewed_a_tenth_of_its_life_before_it_expires(
    sim: Simulator, clock: JumpingClock
) -> None:
    provider = IAMTokenProvider(login(sim), clock=clock)
    first = provider.token()
    clock.advance(89.0)
    assert provider.token() == first
    assert provider.fetches == 1

    clock.advance(2.0)  # 91 s of 100: inside the last tenth
    second = provider.token()

    assert second != first
    assert provider.fetches == 2
    assert provider.expires_in == pytest.approx(100.0, abs=1.0)


def test_a_long_token_is_renewed_refresh_margin_seconds_before_it_expires(
    clock: JumpingClock,
) -> None:
    with Simulator(
        instances=1, password=PASSWORD, token_lifetime=86400.0, clock=clock
    ) as day:
        provider = IAMTokenProvider(
            login(day, username="dmsnb", domain_name=day.identity.domain_name),
            clock=clock,
            refresh_margin=300.0,
        )
        first = provider.token()
        clock.advance(86400.0 - 301.0)
        assert provider.token() == first
        clock.advance(2.0)
        assert provider.token() != first


def test_threads_that_need_a_token_at_once_cause_one_call(
    sim: Simulator, slow_iam: SlowIAM
) -> None:
    slow_iam.delay = 0.2
    provider = IAMTokenProvider(login(sim))
    start = threading.Barrier(8)

    def fetch(_: int) -> str:
        start.wait()
        return provider.token()

    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(fetch, range(8)))

    assert len(tokens) == 1
    assert provider.fetches == 1
    assert requests_of(sim, "POST", "token") == 1


def test_renew_fetches_once_for_threads_that_saw_the_same_refusal(
    sim: Simulator,
) -> None:
    provider = IAMTokenProvider(login(sim))
    refused = provider.token()

    fresh = provider.renew(refused)
    again = provider.renew(refused)  # another thread, same old token

    assert fresh == again != refused
    assert provider.fetches == 2


def test_a_project_name_login_learns_the_project_id_from_the_token(
    sim: Simulator,
) -> None:
    named = login(sim, project_id=None, project_name=sim.identity.project_name)
    credentials = dmsnb.Credentials.from_password(named)

    assert credentials.project_id == sim.project_id
    assert credentials.kind == "IAM token (password)"
    assert requests_of(sim, "POST", "token") == 1


# -- the client: renew on 401, never twice the action -----------------------------


def test_a_client_lists_with_a_password_and_renews_a_revoked_token(
    sim: Simulator,
) -> None:
    with password_client(sim) as client:
        assert len(client.instances()) == 12
        lists_before = requests_of(sim, "GET", "list")
        sim.revoke_tokens()

        assert len(client.instances()) == 12

    assert requests_of(sim, "GET", "list") == lists_before + 2  # 401, then 200
    assert requests_of(sim, "POST", "token") == 2


def test_an_expired_token_is_replaced_before_the_call(
    sim: Simulator, clock: JumpingClock
) -> None:
    with password_client(sim, iam_clock=clock) as client:
        client.instances()
        clock.advance(100.0)  # both clocks: the token is expired on both sides
        lists_before = requests_of(sim, "GET", "list")

        client.instances()

    assert requests_of(sim, "GET", "list") == lists_before + 1  # no 401 first
    assert requests_of(sim, "POST", "token") == 2


def test_a_restart_refused_for_its_token_is_sent_again_and_applied_once(
    sim: Simulator,
) -> None:
    with password_client(sim) as client:
        fleet = client.instances()
        ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:2])
        plan = client.plan("restart", ids, fleet=fleet)
        sim.interceptor = RevokeAtTheAction(None)

        results = client.execute(plan)

    assert list(results["result"]) == ["success", "success"]
    assert sorted(r.instance_id for r in sim.action_log) == sorted(ids)
    assert requests_of(sim, "POST", "action") == 2  # 401, then applied
    assert requests_of(sim, "POST", "token") == 2


def test_a_401_that_a_new_token_does_not_cure_is_raised_after_one_retry(
    sim: Simulator,
) -> None:
    with password_client(sim) as client:
        client.instances()
        foreign = "/v2/" + "e" * 32 + "/instances"
        with pytest.raises(AuthError, match=r"DMS\.10240104"):
            client._send("GET", foreign)

    assert requests_of(sim, "GET", "list") == 3  # the first list, then 401 twice


def test_a_refused_password_is_an_auth_error_that_names_the_user(
    sim: Simulator,
) -> None:
    named = {"project_id": None, "project_name": sim.identity.project_name}
    with pytest.raises(AuthError) as caught:
        password_client(sim, login={"password": "hunter2-not-it", **named})

    text = str(caught.value)
    assert "HTTP 401 IAM.0101" in text and "'ops-alice'" in text
    assert "check the user, password" in text
    assert "hunter2" not in text and "hunter2" not in repr(caught.value)


def test_a_refused_password_before_a_write_sends_nothing(sim: Simulator) -> None:
    with password_client(sim) as good:
        fleet = good.instances()
    ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:2])
    with password_client(sim, login={"password": "wrong"}) as client:
        plan = client.plan("restart", ids, fleet=fleet)
        with pytest.raises(dmsnb.PlanError, match=r"IAM\.0101.*Nothing was sent"):
            client.execute(plan, track=False)

    assert sim.action_log == ()
    assert requests_of(sim, "POST", "action") == 0


def test_an_unreachable_iam_means_the_call_was_not_sent(sim: Simulator) -> None:
    with Simulator(instances=1) as gone:
        port = gone.port
    credentials = dmsnb.Credentials.from_password(
        login(sim, auth_url=f"http://127.0.0.1:{port}/v3"), retry=QUICK_RETRY
    )
    client = dmsnb.Client(sim.base_url, credentials=credentials, audit=None)
    with client, pytest.raises(TransportError) as caught:
        client.instances()

    assert caught.value.sent is False
    assert "could not get an IAM token" in str(caught.value)
    assert requests_of(sim, "GET", "list") == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_iam_faults_at_a_write_are_retried_and_reported_as_not_sent(
    sim: Simulator, status: int
) -> None:
    with password_client(sim) as client:
        fleet = client.instances()
        ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:1])
        plan = client.plan("restart", ids, fleet=fleet)
        sim.interceptor = RevokeAtTheAction(status)

        results = client.execute(plan, track=False)

    assert list(results["result"]) == ["failed"]
    assert results["reason"][0].startswith(f"not sent: IAM answered HTTP {status}")
    assert requests_of(sim, "POST", "token") == 1 + 3  # the first, then 3 tries
    assert sim.action_log == ()


def test_a_login_refused_at_a_write_fails_the_restart_without_acting(
    sim: Simulator,
) -> None:
    refusal = (
        b'{"error": {"code": 401, "message": "The username or password is wrong.",'
        b' "title": "Unauthorized"}, "error_code": "IAM.0101",'
        b' "error_msg": "The username or password is wrong."}'
    )
    with password_client(sim) as client:
        fleet = client.instances()
        ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:2])
        plan = client.plan("restart", ids, fleet=fleet)
        sim.interceptor = RevokeAtTheAction(401, refusal)

        results = client.execute(plan, track=False)

    assert set(results["result"]) == {"failed"}
    assert results["reason"].str.startswith("refused: HTTP 401 IAM.0101").all()
    assert results["reason"].str.contains("IAM login of user 'ops-alice'").all()
    assert sim.action_log == ()


def test_iam_faults_at_a_read_raise_a_transport_error(sim: Simulator) -> None:
    down = SlowIAM()
    down.answer = Reply(503, b"<html>down</html>", content_type="text/html")
    sim.interceptor = down
    with password_client(sim) as client, pytest.raises(TransportError) as caught:
        client.instances()

    assert caught.value.sent is False
    assert "IAM answered HTTP 503" in str(caught.value)
    assert "not JSON" in str(caught.value)


# -- nothing secret anywhere -------------------------------------------------------


def test_no_password_or_token_in_logs_errors_reprs_or_the_audit_trail(
    sim: Simulator, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    trail = tmp_path / "iam.audit.jsonl"
    texts: list[str] = []
    with password_client(sim, audit=trail) as client:
        fleet = client.instances()
        sim.revoke_tokens()
        ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:1])
        results = client.restart(ids)
        texts += [repr(client), repr(client.credentials), str(client.credentials)]
        texts += [repr(client.credentials.token_provider), repr(client._http.auth)]
        texts += [results.to_csv(), repr(results.attrs)]
    named = {"project_id": None, "project_name": sim.identity.project_name}
    with pytest.raises(AuthError) as refused:
        password_client(sim, login={"password": PASSWORD + "x", **named})
    texts += [str(refused.value), repr(refused.value), caplog.text]
    texts += [trail.read_text(), repr(sim), repr(sim.identity)]

    tokens = sim.identity.issued_tokens
    assert len(tokens) >= 2
    assert "X-Subject-Token', b'***'" in caplog.text  # the debug line was there
    assert '"kind": "intent"' in texts[-3]
    for text in texts:
        assert PASSWORD not in text
        assert "battery" not in text
        for token in tokens:
            assert token not in text
            assert token[-20:] not in text


def test_a_password_login_repr_hides_the_password(sim: Simulator) -> None:
    text = repr(login(sim))
    credentials = dmsnb.Credentials.from_password(login(sim))
    with dmsnb.Client(sim.base_url, credentials=credentials, audit=None) as client:
        assert isinstance(client._http.auth, RenewingTokenAuth)
        texts = [text, repr(client._http.auth), repr(credentials), repr(client)]

    for shown in texts:
        assert PASSWORD not in shown
    assert "ops-alice" in text
    assert "auth=IAM token (password)" in texts[-1]


# -- rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_url", "expected"),
    [
        ("https://iam.eu-de.otc.t-systems.com", "https://iam.eu-de.otc.t-systems.com"),
        (
            "https://iam.eu-de.otc.t-systems.com/v3",
            "https://iam.eu-de.otc.t-systems.com",
        ),
        (
            "https://iam.eu-de.otc.t-systems.com/v3/",
            "https://iam.eu-de.otc.t-systems.com",
        ),
        ("https://iam.example.com:443/v3", "https://iam.example.com:443"),
        ("https://gw.example.com/identity/v3", "https://gw.example.com/identity"),
        ("http://127.0.0.1:5000/v3", "http://127.0.0.1:5000"),
    ],
)
def test_tokens_url(auth_url: str, expected: str) -> None:
    assert tokens_url(auth_url) == expected + "/v3/auth/tokens"


@pytest.mark.parametrize(
    ("auth_url", "message"),
    [
        ("http://iam.eu-de.otc.t-systems.com/v3", "only over HTTPS"),
        ("iam.eu-de.otc.t-systems.com", "not an http"),
        ("ftp://iam.example.com", "not an http"),
    ],
)
def test_a_password_is_never_sent_in_clear_text(auth_url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tokens_url(auth_url)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"username": ""}, "user name"),
        ({"password": ""}, "no password for IAM user 'u'"),
        ({"domain_name": None}, "needs its domain"),
        ({"project_id": None}, "scoped to a project"),
    ],
)
def test_a_password_login_says_what_is_missing(
    change: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "auth_url": "https://iam.eu-de.otc.t-systems.com/v3",
        "username": "u",
        "password": "p",
        "domain_name": "d",
        "project_id": "0" * 32,
    }
    fields.update(change)
    with pytest.raises(ConfigError, match=message):
        PasswordLogin(**fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00.123000Z", datetime(2024, 5, 1, 10, 0, 0, 123000)),
        ("2024-05-01T10:00:00.1Z", datetime(2024, 5, 1, 10, 0, 0, 100000)),
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10)),
    ],
)
def test_parse_iam_time(text: str, expected: datetime) -> None:
    assert parse_iam_time(text) == expected.replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("login_fields", "scope"),
    [
        ({"project_id": "p" * 32}, {"project": {"id": "p" * 32}}),
        (
            {"project_name": "eu-de_x"},
            {"project": {"name": "eu-de_x", "domain": {"name": "acme"}}},
        ),
        (
            {"project_name": "eu-de_x", "project_domain_name": "other"},
            {"project": {"name": "eu-de_x", "domain": {"name": "other"}}},
        ),
    ],
)
def test_the_token_call_is_scoped_to_the_project(
    login_fields: dict[str, Any], scope: dict[str, Any]
) -> None:
    body = PasswordLogin(
        auth_url="https://iam.eu-de.otc.t-systems.com",
        username="u",
        password="p",
        domain_name="acme",
        **login_fields,
    ).request_body()
    assert body["auth"]["scope"] == scope
    assert body["auth"]["identity"]["methods"] == ["password"]
    assert body["auth"]["identity"]["password"]["user"]["domain"] == {"name": "acme"}


# -- python -m dmsnb.simulator --password ------------------------------------------


def test_the_simulator_process_serves_an_iam_and_writes_a_clouds_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clouds = tmp_path / "clouds.yaml"
    command = [sys.executable, "-m", "dmsnb.simulator", "--instances", "6"]
    command += ["--password", PASSWORD, "--clouds-yaml", str(clouds)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.readline()  # the base URL: serving
        child.stderr.readline()  # the project line
        assert "wrote cloud 'simulator' (password)" in child.stderr.readline()
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        with dmsnb.Client.from_profile("simulator", audit=None) as client:
            count = len(client.instances(include_failed=True))
            kind = client.credentials.kind
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()

    assert (count, kind) == (6, "IAM token (password)")
    assert PASSWORD not in out + err
    assert clouds.stat().st_mode & 0o077 == 0
