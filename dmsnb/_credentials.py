"""Where credentials come from, kept out of every ``repr``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._errors import ConfigError

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"


@dataclass(frozen=True)
class Credentials:
    """An AK/SK pair (optionally temporary) or an IAM token, for one project.

    The secret key, security token and IAM token are excluded from ``repr``
    and comparison output.
    """

    project_id: str
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "arguments"

    def __post_init__(self) -> None:
        if not self.project_id:
            raise ConfigError(
                "no project id: pass project_id=... or set " + ENV_PROJECT_ID
            )
        has_keys = bool(self.access_key or self.secret_key)
        if has_keys and self.token:
            raise ConfigError("give either ak/sk or token, not both")
        if has_keys and not (self.access_key and self.secret_key):
            missing = "sk" if self.access_key else "ak"
            raise ConfigError(f"an AK/SK pair needs both keys; {missing} is missing")
        if not has_keys and not self.token:
            raise ConfigError(
                "no credentials: pass ak=... and sk=..., or token=..., or set "
                f"{ENV_AK} and {ENV_SK}"
            )

    @property
    def kind(self) -> str:
        """``AK/SK``, ``temporary AK/SK`` or ``token``."""
        if self.token:
            return "token"
        return "temporary AK/SK" if self.security_token else "AK/SK"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, project_id: str | None = None
    ) -> Credentials:
        """Read the environment variables of the official SDK."""
        env = os.environ if environ is None else environ
        if not env.get(ENV_AK) and not env.get(ENV_SK):
            raise ConfigError(
                f"{ENV_AK} and {ENV_SK} are not set; export them (and "
                f"{ENV_PROJECT_ID}) or pass ak=..., sk=... to Client"
            )
        return cls(
            project_id=project_id or env.get(ENV_PROJECT_ID, ""),
            access_key=env.get(ENV_AK) or None,
            secret_key=env.get(ENV_SK) or None,
            security_token=env.get(ENV_SECURITY_TOKEN) or None,
            source="environment",
        )
