"""IAM tokens got with a password, kept until shortly before they expire.

T Cloud Public users often keep a user name and password in ``clouds.yaml``.
:class:`IAMTokenProvider` trades them for a token scoped to one project
(``POST {auth_url}/v3/auth/tokens`` with a password identity; the token is
the ``X-Subject-Token`` header of the 201 answer and ``expires_at`` is in
the body), reuses it, and fetches a new one ``refresh_margin`` seconds
before it expires, or at once when the service refuses it. A lock
serialises the fetches: threads that need a token at the same moment cause
one call.

How long a token lasts is taken from the answer's own ``issued_at`` and
``expires_at`` and counted on this machine's monotonic clock, so a wrong
wall clock here cannot make an expired token look valid.

The password and the tokens never appear in a ``repr``, a log line or an
exception message. Failures reach the caller as the errors a DMS call
raises, so a batch action never mistakes a failed login for a lost answer:
:class:`~dmsnb.AuthError` when IAM refuses the login,
:class:`~dmsnb.APIError` for another 4xx, and
:class:`~dmsnb.TransportError` with ``sent=False`` when IAM cannot be
reached or answers nonsense (the DMS call was not sent).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._endpoints import is_loopback
from ._errors import APIError, AuthError, ConfigError, TransportError
from ._retry import Failure, Outcome, RetryPolicy, decide, parse_retry_after

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN = 300.0
"""Seconds before its expiry at which a token is replaced (at most a tenth
of its lifetime)."""

IAM_RETRY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0, total_seconds=20)
"""Token fetches are tried again on 429, 5xx, timeouts and refused
connections; asking for a token twice does no harm."""

TOKEN_HEADER = "X-Subject-Token"
_TOKENS_PATH = "/v3/auth/tokens"
_SECRET_HEADERS = (
    "x-subject-token",
    "x-auth-token",
    "x-security-token",
    "authorization",
)


@dataclass(frozen=True)
class PasswordLogin:
    """An IAM user's password login, scoped to one project.

    ``auth_url`` is the IAM endpoint (``https://iam.eu-de.otc.t-systems.com``,
    with or without ``/v3``). The user belongs to the domain (the account)
    named ``domain_name`` or with id ``domain_id``. The project is given by
    ``project_id`` or by ``project_name``, whose domain is
    ``project_domain_name`` (by default the user's). The password is kept
    out of ``repr``.
    """

    auth_url: str
    username: str
    password: str = field(repr=False)
    domain_name: str | None = None
    domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_name: str | None = None

    def __post_init__(self) -> None:
        tokens_url(self.auth_url)  # checks the URL
        if not self.username:
            raise ConfigError("a password login needs the IAM user name (username)")
        if not self.password:
            raise ConfigError(f"no password for IAM user {self.username!r}")
        if not (self.domain_name or self.domain_id):
            raise ConfigError(
                f"IAM user {self.username!r} needs its domain (the account name): "
                "set user_domain_name (or domain_name)"
            )
        if not (self.project_id or self.project_name):
            raise ConfigError(
                "a token for DMS is scoped to a project: set project_id or project_name"
            )

    def __repr__(self) -> str:
        project = self.project_id or self.project_name
        domain = self.domain_name or self.domain_id
        return (
            f"PasswordLogin(user={self.username!r}, domain={domain!r}, "
            f"project={project!r}, auth_url={self.auth_url!r})"
        )

    @property
    def tokens_url(self) -> str:
        return tokens_url(self.auth_url)

    def request_body(self) -> dict[str, Any]:
        """The body of the token call: a password identity and a project scope."""
        domain = (
            {"name": self.domain_name} if self.domain_name else {"id": self.domain_id}
        )
        user = {"name": self.username, "password": self.password, "domain": domain}
        project: dict[str, Any]
        if self.project_id:
            project = {"id": self.project_id}
        else:
            owner = (
                {"name": self.project_domain_name}
                if self.project_domain_name
                else domain
            )
            project = {"name": self.project_name, "domain": owner}
        return {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": project},
            }
        }


def tokens_url(auth_url: str) -> str:
    """``{auth_url}/v3/auth/tokens``; an ``auth_url`` ending in ``/v3`` is fine.

    A password is only ever sent over HTTPS, or over HTTP to this machine
    (the simulator).
    """
    parts = urlsplit(auth_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"auth_url {auth_url!r} is not an http(s) URL; give e.g. "
            "'https://iam.eu-de.otc.t-systems.com/v3'"
        )
    if parts.scheme == "http" and not is_loopback(auth_url):
        raise ConfigError(
            f"auth_url {auth_url!r} is plain HTTP: dmsnb sends a password only "
            "over HTTPS; use the https:// address of IAM"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v3"):
        path = path[: -len("/v3")]
    return f"{parts.scheme}://{parts.netloc}{path}{_TOKENS_PATH}"


class IAMTokenProvider:
    """Fetches, caches and renews the IAM token of a :class:`PasswordLogin`.

    Thread-safe. ``token()`` answers a token valid for more than
    ``refresh_margin`` seconds (or a tenth of its lifetime, if that is
    shorter), fetching one when needed; ``renew(refused)`` replaces a token
    the service refused. ``clock`` is a monotonic clock (for tests);
    ``transport`` an httpx transport for the token calls.
    """

    def __init__(
        self,
        login: PasswordLogin,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        timeout: float = 30.0,
        retry: RetryPolicy = IAM_RETRY,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must not be negative")
        self.login = login
        self.refresh_margin = refresh_margin
        self._timeout = timeout
        self._retry = retry
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._expires_at_clock = 0.0
        self.project_id: str | None = login.project_id
        """The project of the tokens: given, or read from the first token."""
        self.expires_at: datetime | None = None
        """When the current token expires, as IAM said (UTC)."""
        self.fetches = 0
        """How many tokens were fetched so far."""
        _redact_http_logs()

    def __repr__(self) -> str:
        # No lock: a repr must not wait for a token call under way.
        left = self.expires_in
        if left is None:
            state = "none yet"
        else:
            state = f"valid for {left:.0f} s" if left > 0 else "expired"
        return f"<IAMTokenProvider {self.login!r} token={state}>"

    @property
    def expires_in(self) -> float | None:
        """Seconds until the current token expires; None before the first."""
        if self._token is None:
            return None
        return self._expires_at_clock - self._clock()

    def token(self) -> str:
        """A token that stays valid for a while yet; fetched when needed."""
        with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            return self._fetch()

    def renew(self, refused: str) -> str:
        """A new token after the service refused ``refused``.

        When another thread has replaced it already, that token is answered
        and nothing is fetched.
        """
        with self._lock:
            if self._token is not None and self._token != refused:
                return self._token
            return self._fetch()

    def forget(self) -> None:
        """Drop the cached token; the next request fetches a new one."""
        with self._lock:
            self._token = None
            self._renew_at = 0.0

    # -- the call -------------------------------------------------------------

    def _fetch(self) -> str:
        url = self.login.tokens_url
        body = json.dumps(self.login.request_body()).encode("utf-8")
        first_try = self._clock()
        attempt = 0
        while True:
            attempt += 1
            sent_at = self._clock()
            answer = self._attempt(url, body)
            if isinstance(answer, httpx.Response):
                return self._accept(answer, sent_at)

            outcome, failure = answer
            elapsed = self._clock() - first_try
            decision = decide("read", outcome, attempt, elapsed, self._retry)
            if not decision.retry:
                raise failure
            logger.info(
                "retrying the IAM token call in %.2f s: %s (attempt %d)",
                decision.delay,
                decision.why,
                attempt + 1,
            )
            time.sleep(decision.delay)

    def _attempt(
        self, url: str, body: bytes
    ) -> httpx.Response | tuple[Outcome, Exception]:
        """One token call: the 201 answer, or what failed and the error to raise."""
        headers = {"Content-Type": "application/json;charset=utf8"}
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
                response = http.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            failure: Failure = (
                "refused" if isinstance(error, httpx.ConnectError) else "timeout"
            )
            message = (
                f"could not get an IAM token from {url} ({type(error).__name__}: "
                f"{error}); the DMS call was not sent"
            )
            return Outcome(failure), TransportError(message, sent=False)

        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "POST %s -> %d (%.0f ms)", _TOKENS_PATH, response.status_code, elapsed_ms
        )
        if response.status_code == 201:
            return response
        outcome = Outcome(
            "http",
            status_code=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
        return outcome, self._refusal(response)

    def _refusal(self, response: httpx.Response) -> Exception:
        status = response.status_code
        code, message = _iam_error(response)
        if status == 429 or status >= 500:
            return TransportError(
                f"IAM answered HTTP {status} {code or ''} to the token call "
                f"({message}); the DMS call was not sent",
                sent=False,
            )
        domain = self.login.domain_name or self.login.domain_id
        context = (
            f"{message} [IAM login of user {self.login.username!r} in domain "
            f"{domain!r}: check the user, password, domain and project]"
        )
        cls = AuthError if status in (401, 403) else APIError
        return cls(
            status,
            code,
            context,
            response.headers.get("X-Request-Id"),
            method="POST",
            path=_TOKENS_PATH,
        )

    def _accept(self, response: httpx.Response, sent_at: float) -> str:
        """Keep the token of a 201 answer and work out when to renew it."""
        token = str(response.headers.get(TOKEN_HEADER) or "")
        if not token:
            raise TransportError(
                f"IAM answered 201 without an {TOKEN_HEADER} header; the DMS "
                "call was not sent",
                sent=False,
            )
        issued, expires, project_id = _token_facts(response)
        lifetime = (expires - issued).total_seconds()
        if lifetime <= 0:
            raise TransportError(
                f"IAM answered a token that expires ({expires:%Y-%m-%d %H:%M:%S} "
                "UTC) before it was issued; the DMS call was not sent",
                sent=False,
            )

        margin = min(self.refresh_margin, lifetime / 10)
        self._token = token
        self._expires_at_clock = sent_at + lifetime
        self._renew_at = self._expires_at_clock - margin
        self.expires_at = expires
        self.project_id = self.project_id or project_id
        self.fetches += 1
        logger.info(
            "IAM token for user %s fetched; it lasts %.0f s and is renewed %.0f s "
            "before it expires",
            self.login.username,
            lifetime,
            margin,
        )
        return token


def _token_facts(response: httpx.Response) -> tuple[datetime, datetime, str | None]:
    """``issued_at``, ``expires_at`` and the project id of a token answer."""
    try:
        payload = response.json()
        token = payload["token"]
        expires = parse_iam_time(str(token["expires_at"]))
    except (ValueError, KeyError, TypeError) as error:
        raise TransportError(
            "IAM answered 201 with a body that has no readable token.expires_at "
            f"({type(error).__name__}); the DMS call was not sent",
            sent=False,
        ) from None
    issued_text = token.get("issued_at") if isinstance(token, dict) else None
    try:
        issued = parse_iam_time(str(issued_text))
    except ValueError:
        issued = datetime.now(timezone.utc)
    project = token.get("project") if isinstance(token, dict) else None
    project_id = project.get("id") if isinstance(project, dict) else None
    return issued, expires, str(project_id) if project_id else None


_FRACTION = re.compile(r"\.(\d+)")


def parse_iam_time(text: str) -> datetime:
    """An IAM time such as ``2024-05-01T10:00:00.123000Z``, as an aware UTC time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iam_error(response: httpx.Response) -> tuple[str | None, str]:
    """The error code and message of an IAM error answer (both styles)."""
    try:
        payload: object = response.json()
    except ValueError:
        return None, f"a body that is not JSON ({len(response.content)} bytes)"
    if not isinstance(payload, dict):
        return None, "an unexpected body"
    nested = payload.get("error")
    nested = nested if isinstance(nested, dict) else {}
    # The Keystone style nests {"code": 401, "message": ...}; its code is the
    # HTTP status again, so an IAM error code ("IAM.0101") is preferred.
    code = payload.get("error_code") or None
    message = payload.get("error_msg") or nested.get("message") or nested.get("title")
    return (str(code) if code else None), " ".join(str(message or "no message").split())


# -- keeping tokens out of the HTTP library's debug log ---------------------------


class _RedactSecretHeaders(logging.Filter):
    """Blanks secret header values in httpcore's debug lines.

    At DEBUG, httpcore logs every answer's headers, which for the token call
    include ``X-Subject-Token``.
    """

    _PATTERN = re.compile(
        r"(\(b['\"](?:" + "|".join(_SECRET_HEADERS) + r")['\"],\s*)"
        r"b(?:'[^']*'|\"[^\"]*\")",
        re.IGNORECASE,
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._PATTERN.sub(r"\1b'***'", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACTOR = _RedactSecretHeaders()
_HTTP_LOGGERS = ("httpcore.http11", "httpcore.http2", "httpcore.connection")


def _redact_http_logs() -> None:
    for name in _HTTP_LOGGERS:
        http_logger = logging.getLogger(name)
        if _REDACTOR not in http_logger.filters:
            http_logger.addFilter(_REDACTOR)
