"""The exceptions dmsnb raises.

All of them derive from one root, so ``except dmsnb.DMSError`` catches
everything the toolkit raises on purpose::

    DMSError
    ├── ConfigError        credentials or settings are missing or wrong
    ├── APIError           the service answered with an error body
    │   ├── AuthError      401 / 403: credentials, token or signature refused
    │   └── NotFoundError  404: the instance does not exist (any more)
    └── TransportError     no usable answer: connection, timeout, bad body
        └── ActionOutcomeUnknown  a write was sent and its answer was lost

Input mistakes that are found before anything is sent (an empty selection,
an id that is not a UUID, an unknown action) raise :class:`ValueError`.
Transport errors are always chained (``raise ... from``) to the error of the
HTTP library that caused them.
"""

from __future__ import annotations


class DMSError(Exception):
    """The root of every error dmsnb raises on purpose."""


class ConfigError(DMSError):
    """Credentials, endpoint or settings are missing or inconsistent."""


class APIError(DMSError):
    """The service answered with an error.

    ``str()`` is one line with the HTTP status, the error code, the message
    and the request id, the four things a support ticket needs.
    """

    def __init__(
        self,
        status_code: int,
        error_code: str | None,
        error_msg: str | None,
        request_id: str | None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.method = method
        self.path = path
        self.retry_after: float | None = None
        super().__init__(self._line())

    def _line(self) -> str:
        code = self.error_code or "no error code"
        message = " ".join((self.error_msg or "no message").split())
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        request = self.request_id or "none"
        return (
            f"HTTP {self.status_code} {code}: {message}{where} [request id {request}]"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status_code,
                self.error_code,
                self.error_msg,
                self.request_id,
                self.method,
                self.path,
            ),
        )


def _rebuild_api_error(
    cls: type[APIError],
    status_code: int,
    error_code: str | None,
    error_msg: str | None,
    request_id: str | None,
    method: str | None,
    path: str | None,
) -> APIError:
    return cls(status_code, error_code, error_msg, request_id, method=method, path=path)


class AuthError(APIError):
    """401 or 403: the credentials, token or signature were refused.

    Check the AK/SK pair and the project id, or get a new token.
    """

    def _line(self) -> str:
        hint = (
            "the tenant is frozen or lacks the permission"
            if self.status_code == 403
            else "check the AK/SK pair (or the token) and the project id"
        )
        return f"{super()._line()}; {hint}"


class NotFoundError(APIError):
    """404: the instance does not exist, or no longer exists."""


class TransportError(DMSError):
    """No usable answer: the connection failed, timed out, or the body was bad."""

    def __init__(self, message: str, *, sent: bool | None = None) -> None:
        super().__init__(message)
        self.sent = sent


class ActionOutcomeUnknown(TransportError):
    """A write call was sent but its answer was lost.

    The service may or may not have acted. Read the instances' statuses to
    find out; do not simply send the action again.
    """
