"""Request authentication: SDK-HMAC-SHA256 (AK/SK) signing and IAM tokens.

The signer is an :class:`httpx.Auth`, so it sees the request exactly as it
will go on the wire (final path, query, headers and body bytes) and signs
that. The canonical-request helpers are shared with the simulator, which
uses them to verify what it receives.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Generator, Iterable, Mapping
from datetime import datetime, timezone
from typing import Protocol
from urllib.parse import parse_qsl, quote, unquote

import httpx

logger = logging.getLogger(__name__)

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_HEADER = "X-Sdk-Date"


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Percent-encode each segment of ``path`` and end it with ``/``."""
    segments = [_encode(segment) for segment in unquote(path).split("/")]
    uri = "/".join(segments)
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query: str) -> str:
    """Sort and encode the pairs of a raw query string as they were sent."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    encoded = sorted((_encode(key), _encode(value)) for key, value in pairs)
    return "&".join(f"{key}={value}" for key, value in encoded)


def signed_header_names(names: Iterable[str]) -> list[str]:
    """Every header name without ``_``, lowercased and sorted."""
    return sorted({name.lower() for name in names if "_" not in name})


def canonical_request(
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """The canonical request of the SDK-HMAC-SHA256 algorithm.

    ``headers`` must map lowercased names to values; every name in
    ``signed_headers`` must be present.
    """
    header_lines = "".join(
        f"{name}:{headers[name].strip()}\n" for name in signed_headers
    )
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(raw_query),
            header_lines,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed with the secret key."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    mac = hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), "sha256")
    return mac.hexdigest()


def authorization_header(access_key: str, signed_headers: list[str], sig: str) -> str:
    names = ";".join(signed_headers)
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={names}, Signature={sig}"


def parse_authorization(value: str) -> dict[str, str] | None:
    """Split an ``Authorization`` header into Access, SignedHeaders, Signature.

    Returns None when the header is not of the SDK-HMAC-SHA256 form.
    """
    prefix = ALGORITHM + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        key, sep, field_value = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = field_value
    if not {"Access", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def sign_request(
    request: httpx.Request,
    access_key: str,
    secret_key: str,
    *,
    now: datetime | None = None,
) -> None:
    """Add ``X-Sdk-Date`` (unless present) and ``Authorization`` to ``request``."""
    if DATE_HEADER not in request.headers:
        moment = now or datetime.now(timezone.utc)
        request.headers[DATE_HEADER] = moment.strftime(DATE_FORMAT)
    request.headers.pop("Authorization", None)

    names = signed_header_names(request.headers.keys())
    lowered = {name.lower(): value for name, value in request.headers.items()}
    body = request.read()
    canonical = canonical_request(
        request.method,
        request.url.path,
        request.url.query.decode("ascii"),
        lowered,
        names,
        body,
    )

    sig = signature(secret_key, request.headers[DATE_HEADER], canonical)
    request.headers["Authorization"] = authorization_header(access_key, names, sig)


class AKSKAuth(httpx.Auth):
    """Signs every request with an access key and secret key.

    ``X-Project-Id`` (and ``X-Security-Token`` for temporary credentials) is
    set before signing, so it is part of the signature.
    """

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        project_id: str,
        security_token: str | None = None,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._project_id = project_id
        self._security_token = security_token

    def __repr__(self) -> str:
        kind = "temporary AK/SK" if self._security_token else "AK/SK"
        return f"<AKSKAuth {kind} access_key={mask(self._access_key)}>"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Project-Id"] = self._project_id
        if self._security_token:
            request.headers["X-Security-Token"] = self._security_token
        sign_request(request, self._access_key, self._secret_key)
        yield request


class TokenAuth(httpx.Auth):
    """Sends an IAM token as ``X-Auth-Token``."""

    def __init__(self, token: str, project_id: str) -> None:
        self._token = token
        self._project_id = project_id

    def __repr__(self) -> str:
        return "<TokenAuth token=***>"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Project-Id"] = self._project_id
        request.headers["X-Auth-Token"] = self._token
        yield request


class TokenSource(Protocol):
    """Where :class:`RenewingTokenAuth` gets its tokens (an IAM token provider).

    ``token()`` answers a token that is valid now, fetching one when needed;
    ``renew(refused)`` answers a fresh one after the service refused
    ``refused`` (a source shared by threads fetches once for all of them).
    Neither may show a token or password in its ``repr``.
    """

    def token(self) -> str: ...

    def renew(self, refused: str) -> str: ...


class RenewingTokenAuth(httpx.Auth):
    """Sends the token of a :class:`TokenSource` as ``X-Auth-Token``.

    When the service answers 401 (the token expired early or was revoked),
    the request is sent once more with a fresh token. A 401 is given before
    the service looks at the request, so this cannot make an action happen
    twice.
    """

    requires_request_body = True  # the body must be there to send it again

    def __init__(self, source: TokenSource, project_id: str) -> None:
        self._source = source
        self._project_id = project_id

    def __repr__(self) -> str:
        return f"<RenewingTokenAuth {self._source!r}>"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Project-Id"] = self._project_id
        token = self._source.token()
        request.headers["X-Auth-Token"] = token
        response = yield request
        if response.status_code != 401:
            return

        logger.info(
            "%s %s: the token was refused (HTTP 401); sending once more with a "
            "new token",
            request.method,
            request.url.path,
        )
        request.headers["X-Auth-Token"] = self._source.renew(token)
        yield request


def mask(access_key: str) -> str:
    """Show an access key the way consoles do: the first four characters."""
    if len(access_key) <= 4:
        return "***"
    return access_key[:4] + "***"
