"""The simulator's IAM: password logins that get tokens the DMS routes accept.

``POST /v3/auth/tokens`` with a password identity scoped to the simulator's
project (by id, or by name with its domain) answers 201, the token in the
``X-Subject-Token`` header and ``issued_at``/``expires_at`` in the body, as
the real IAM does. A token lasts ``lifetime`` seconds of the simulator's
clock; afterwards the DMS routes answer 401 ``DMS.10240102``.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ._server import Call, Reply, json_reply

TOKEN_PREFIX = "MIIsim"
"""Real tokens start with ``MII``; simulated ones with this."""


@dataclass(frozen=True)
class _Issued:
    project_id: str
    expires: float
    """On the simulator's clock."""


class Identity:
    """Users with passwords, and the tokens issued to them. Thread-safe."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        domain_name: str,
        project_id: str,
        project_name: str,
        lifetime: float,
        clock: Callable[[], float],
    ) -> None:
        if not users:
            raise ValueError("an IAM needs at least one user")
        if lifetime <= 0:
            raise ValueError("token_lifetime must be positive")
        self._users = dict(users)
        self.domain_name = domain_name
        self.project_id = project_id
        self.project_name = project_name
        self.lifetime = lifetime
        self._clock = clock
        self._tokens: dict[str, _Issued] = {}
        self._every_token: list[str] = []
        self._lock = threading.Lock()
        self.logins = 0
        """Tokens issued so far."""
        self.refused_logins = 0

    def __repr__(self) -> str:
        return (
            f"<Identity users={sorted(self._users)} domain={self.domain_name!r} "
            f"tokens={len(self._tokens)}>"
        )

    @property
    def users(self) -> list[str]:
        return sorted(self._users)

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Every token issued so far, revoked ones too (to look for leaks)."""
        with self._lock:
            return tuple(self._every_token)

    def revoke_all(self) -> None:
        """Invalidate every issued token (as a password change does)."""
        with self._lock:
            self._tokens.clear()

    def check(self, token: str, project_id: str) -> str | None:
        """None when ``token`` is good for ``project_id``; else the error code."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return "DMS.10240101"
        if self._clock() >= issued.expires:
            return "DMS.10240102"
        if project_id and not hmac.compare_digest(issued.project_id, project_id):
            return "DMS.10240104"
        return None

    def issue(self, call: Call) -> Reply:
        """Answer one token call."""
        try:
            body: object = json.loads(call.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "The request body is not JSON.")
        login = _password_login(body)
        if isinstance(login, str):
            return _error(400, login)
        user, password, domain, scope = login

        known = self._users.get(user)
        same_password = known is not None and hmac.compare_digest(
            known.encode("utf-8"), password.encode("utf-8")
        )
        if not same_password or domain != self.domain_name:
            with self._lock:
                self.refused_logins += 1
            return _error(401, "The username or password is wrong.", "IAM.0101")
        if scope != self.project_id and scope != self.project_name:
            return _error(401, "The user has no access to the project.", "IAM.0104")
        return self._token_reply(user)

    def _token_reply(self, user: str) -> Reply:
        token = TOKEN_PREFIX + secrets.token_urlsafe(48)
        issued_at = datetime.now(timezone.utc)
        expires_at = issued_at + timedelta(seconds=self.lifetime)
        with self._lock:
            self._tokens[token] = _Issued(
                self.project_id, self._clock() + self.lifetime
            )
            self._every_token.append(token)
            self.logins += 1
        domain = {"id": "0" * 31 + "1", "name": self.domain_name}
        payload = {
            "token": {
                "methods": ["password"],
                "issued_at": _iam_time(issued_at),
                "expires_at": _iam_time(expires_at),
                "user": {"name": user, "id": "u" + "0" * 31, "domain": domain},
                "project": {
                    "id": self.project_id,
                    "name": self.project_name,
                    "domain": domain,
                },
                "catalog": [],
                "roles": [{"id": "0", "name": "dms_adm"}],
            }
        }
        reply = json_reply(201, payload)
        return Reply(reply.status, reply.body, headers=(("X-Subject-Token", token),))


def _password_login(body: object) -> tuple[str, str, str, str] | str:
    """User, password, user domain and project (id or name); or what is wrong."""
    auth = _get(body, "auth")
    identity = _get(auth, "identity")
    methods = _get(identity, "methods")
    if not isinstance(methods, list) or "password" not in methods:
        return "auth.identity.methods must contain 'password'."
    user = _get(_get(identity, "password"), "user")
    name, password = _get(user, "name"), _get(user, "password")
    domain = _get(_get(user, "domain"), "name")
    if not all(isinstance(v, str) and v for v in (name, password, domain)):
        return "auth.identity.password.user needs name, password and domain.name."
    project = _get(_get(auth, "scope"), "project")
    scope = _get(project, "id") or _get(project, "name")
    if not isinstance(scope, str) or not scope:
        return "The simulator issues project-scoped tokens: set auth.scope.project."
    assert isinstance(name, str) and isinstance(password, str)
    assert isinstance(domain, str)
    return name, password, domain, scope


def _get(value: object, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _iam_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str, code: str | None = None) -> Reply:
    titles = {400: "Bad Request", 401: "Unauthorized"}
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "title": titles[status],
    }
    body: dict[str, Any] = {"error": error}
    if code is not None:
        body["error_code"], body["error_msg"] = code, message
    return json_reply(status, body)
