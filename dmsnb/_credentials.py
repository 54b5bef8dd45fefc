"""Where credentials come from, kept out of every ``repr``.

:func:`resolve_credentials` finds them the way users keep them, in this
order, and the first source that is there decides:

1. the arguments (``ak=``/``sk=``, ``token=``);
2. a named profile (``profile=...``, or the ``DMSNB_PROFILE`` variable):
   the section of that name in the official SDK's credentials file, or the
   cloud of that name in ``clouds.yaml``; nothing else is looked at;
3. the official SDK's environment variables (``HUAWEICLOUD_SDK_AK``,
   ``HUAWEICLOUD_SDK_SK``, ``HUAWEICLOUD_SDK_PROJECT_ID``,
   ``HUAWEICLOUD_SDK_SECURITY_TOKEN``);
4. the SDK's credentials file (``HUAWEICLOUD_SDK_CREDENTIALS_FILE``, by
   default ``~/.huaweicloud/credentials``): its ``[basic]`` section, the one
   the SDK reads, or else ``[default]``;
5. ``clouds.yaml`` (``OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``,
   ``~/.config/openstack/clouds.yaml``, ``/etc/openstack/clouds.yaml``; the
   first that exists, with the secrets of a ``secure.yaml`` beside it
   merged in): the cloud named by ``OS_CLOUD``, or the file's only cloud.

Besides the keys, a source may say where the project is served: ``region``
(and ``endpoint``) in a credentials-file section, which the SDK ignores, and
``region_name`` (and ``dms_endpoint_override``) in a ``clouds.yaml`` cloud.

A source that is there but incomplete or ambiguous (a credentials file
without a default section, a ``clouds.yaml`` with several clouds and no
``OS_CLOUD``) is an error that says what to add; dmsnb never guesses which
account to act on. ``Credentials.source`` says where the keys came from,
for example ``environment``, ``credentials file [basic]`` or
``clouds.yaml cloud otc-prod (password)``.
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError
from ._iam import IAMTokenProvider, PasswordLogin
from ._signing import TokenSource, mask

logger = logging.getLogger(__name__)

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_CREDENTIALS_FILE = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
ENV_PROFILE = "DMSNB_PROFILE"
ENV_CLOUDS_FILE = "OS_CLIENT_CONFIG_FILE"
ENV_SECURE_FILE = "OS_CLIENT_SECURE_FILE"
ENV_CLOUD = "OS_CLOUD"

DEFAULT_SECTIONS = ("basic", "default")
"""The credentials-file sections read when no profile is named, in order."""

SYSTEM_CONFIG_DIR = Path("/etc/openstack")
_YAML_SUFFIXES = (".yaml", ".yml")
_AUTH_TYPES = ("", "password", "v3password", "aksk", "token", "v3token")
_T_CLOUD_IAM = "https://iam.{region}.otc.t-systems.com/v3"
_T_CLOUD_REGIONS = ("eu-de", "eu-nl")


@dataclass(frozen=True)
class Credentials:
    """An AK/SK pair (optionally temporary), an IAM token, or a token provider,
    for one project.

    ``token_provider`` (an :class:`~dmsnb._iam.IAMTokenProvider`, or any
    object with ``token()`` and ``renew(refused)``) supplies IAM tokens that
    are fetched and renewed as needed. ``source`` says where the credentials
    came from; ``region`` is the project's region and ``endpoint`` its DMS
    endpoint, when the source names them. The secret key, security token,
    token and provider stay out of ``repr``.
    """

    project_id: str
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "arguments"
    token_provider: TokenSource | None = field(default=None, repr=False, compare=False)
    region: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not self.project_id:
            raise ConfigError(
                "no project id: pass project_id=... or set " + ENV_PROJECT_ID
            )
        has_keys = bool(self.access_key or self.secret_key)
        has_token = bool(self.token or self.token_provider is not None)
        if self.token and self.token_provider is not None:
            raise ConfigError("give either token or token_provider, not both")
        if has_keys and has_token:
            raise ConfigError("give either ak/sk or token, not both")
        if has_keys and not (self.access_key and self.secret_key):
            missing = "sk" if self.access_key else "ak"
            raise ConfigError(f"an AK/SK pair needs both keys; {missing} is missing")
        if not has_keys and not has_token:
            raise ConfigError(
                "no credentials: pass ak=... and sk=..., or token=..., or set "
                f"{ENV_AK} and {ENV_SK}"
            )

    def __repr__(self) -> str:
        key = f" access_key={mask(self.access_key)}" if self.access_key else ""
        region = f" region={self.region}" if self.region else ""
        endpoint = f" endpoint={self.endpoint}" if self.endpoint else ""
        return (
            f"<Credentials {self.kind} project={self.project_id}{key}{region}"
            f"{endpoint} from {self.source}>"
        )

    @property
    def kind(self) -> str:
        """``AK/SK``, ``temporary AK/SK``, ``token`` or ``IAM token (password)``."""
        if self.token_provider is not None:
            if isinstance(self.token_provider, IAMTokenProvider):
                return "IAM token (password)"
            return "IAM token (provider)"
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

    @classmethod
    def from_password(
        cls,
        login: PasswordLogin,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        source: str = "arguments (password)",
        **provider_options: Any,
    ) -> Credentials:
        """Credentials whose IAM tokens are got with ``login``'s password.

        When the login names its project by name only, the first token is
        fetched now, to learn the project id. ``provider_options`` go to
        :class:`~dmsnb._iam.IAMTokenProvider` (``refresh_margin``,
        ``timeout``, ``transport``).
        """
        provider = IAMTokenProvider(login, **provider_options)
        if provider.project_id is None:
            provider.token()
        if not provider.project_id:
            raise ConfigError(
                f"IAM's token for project {login.project_name!r} names no project "
                "id; set project_id in the login"
            )
        return cls(
            project_id=provider.project_id,
            token_provider=provider,
            source=source,
            region=region,
            endpoint=endpoint,
        )


def resolve_credentials(
    profile: str | None = None,
    *,
    project_id: str | None = None,
    ak: str | None = None,
    sk: str | None = None,
    security_token: str | None = None,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The credentials to use, found as the module docstring says.

    ``profile`` names a credentials-file section or a ``clouds.yaml`` cloud
    (``DMSNB_PROFILE`` when not given). ``project_id`` replaces the
    project of whatever source is used. ``environ`` replaces
    ``os.environ`` (for tests). Raises :class:`~dmsnb.ConfigError` saying
    what is missing; a password login fetches its first token now when the
    project is given by name.
    """
    env = os.environ if environ is None else environ
    explicit = bool(ak or sk or token or security_token)
    profile = profile or env.get(ENV_PROFILE) or None
    if explicit and profile:
        raise ConfigError(
            f"give keys (ak/sk or token) or a profile ({profile!r}), not both"
        )

    if explicit:
        return Credentials(
            project_id=project_id or "",
            access_key=ak,
            secret_key=sk,
            security_token=security_token,
            token=token,
        )
    if profile:
        return _named_profile(profile, project_id, env)
    if env.get(ENV_AK) or env.get(ENV_SK):
        return Credentials.from_env(env, project_id=project_id)

    credentials_file = _credentials_file(env)
    if credentials_file is not None:
        return _default_section(credentials_file, project_id)
    clouds = _clouds_config(env)
    if clouds is not None:
        return _default_cloud(clouds, project_id, env)
    raise ConfigError(
        "no credentials found. Pass ak=... and sk=... (and project_id=...); or "
        f"set {ENV_AK}, {ENV_SK} and {ENV_PROJECT_ID}; or write "
        f"{_credentials_path(env)} with a [basic] section (ak, sk, project_id); "
        "or a clouds.yaml (looked for: "
        + ", ".join(str(path) for path in _clouds_candidates(env, "clouds"))
        + ")"
    )


# -- a named profile ------------------------------------------------------------


def _named_profile(
    profile: str, project_id: str | None, env: Mapping[str, str]
) -> Credentials:
    credentials_file = _credentials_file(env)
    clouds = _clouds_config(env)
    sections = [] if credentials_file is None else credentials_file.sections()
    in_file = profile in sections
    in_clouds = clouds is not None and profile in clouds.clouds
    if in_file and in_clouds:
        assert credentials_file is not None and clouds is not None
        raise ConfigError(
            f"profile {profile!r} is both a section of {credentials_file.path} and "
            f"a cloud of {clouds.path}; rename one so that the name says which "
            "account to use"
        )
    if in_file:
        assert credentials_file is not None
        return _section_credentials(credentials_file, profile, project_id)
    if in_clouds:
        assert clouds is not None
        return _cloud_credentials(clouds, profile, project_id)

    known = (
        [f"[{name}] in {credentials_file.path}" for name in sections]
        if (credentials_file is not None)
        else []
    )
    if clouds is not None:
        known += [f"{name} in {clouds.path}" for name in clouds.clouds]
    where = (
        "; ".join(known)
        if known
        else (
            f"there is no credentials file ({_credentials_path(env)}) and no "
            "clouds.yaml"
        )
    )
    raise ConfigError(f"no profile named {profile!r}. Known: {where}")


# -- the SDK's credentials file -------------------------------------------------


@dataclass(frozen=True)
class _CredentialsFile:
    path: Path
    parser: configparser.ConfigParser

    def sections(self) -> list[str]:
        return self.parser.sections()


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else Path.home()


def _credentials_path(env: Mapping[str, str]) -> Path:
    explicit = env.get(ENV_CREDENTIALS_FILE)
    if explicit:
        return Path(explicit).expanduser()
    return _home(env) / ".huaweicloud" / "credentials"


def _credentials_file(env: Mapping[str, str]) -> _CredentialsFile | None:
    """The SDK's credentials file, parsed as the SDK parses it; None if absent."""
    path = _credentials_path(env)
    if not path.is_file():
        if env.get(ENV_CREDENTIALS_FILE):
            raise ConfigError(
                f"{ENV_CREDENTIALS_FILE} names {path}, which is not a file; fix "
                "the variable or unset it"
            )
        return None

    # The SDK reads it with a default ConfigParser: keys are case-insensitive
    # and "%%" stands for "%". Error texts of configparser can quote a line,
    # and so a key: only the kind of problem and its place are shown.
    # The errors are raised outside the handlers, so that not even the
    # context of a traceback carries the original text.
    parser = configparser.ConfigParser()
    problem = None
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        problem = f"is not a valid INI file: {_ini_problem(error)}"
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({type(error).__name__})"
    if problem is not None:
        raise ConfigError(f"credentials file {path} {problem}")
    return _CredentialsFile(path, parser)


def _ini_problem(error: configparser.Error) -> str:
    where = []
    lineno = getattr(error, "lineno", None)
    if lineno is None and isinstance(error, configparser.ParsingError) and error.errors:
        lineno = error.errors[0][0]
    if lineno is not None:
        where.append(f"line {lineno}")
    section = getattr(error, "section", None)
    option = getattr(error, "option", None)
    if option:
        where.append(f"key {option!r}" + (f" of [{section}]" if section else ""))
    elif section:
        where.append(f"section [{section}]")
    place = f" ({', '.join(where)})" if where else ""
    return f"{type(error).__name__}{place}"


def _default_section(
    credentials_file: _CredentialsFile, project_id: str | None
) -> Credentials:
    for section in DEFAULT_SECTIONS:
        if credentials_file.parser.has_section(section):
            return _section_credentials(credentials_file, section, project_id)
    sections = ", ".join(f"[{name}]" for name in credentials_file.sections())
    raise ConfigError(
        f"credentials file {credentials_file.path} has no [basic] or [default] "
        f"section ({sections or 'no sections at all'}); name one with "
        f"profile=... or {ENV_PROFILE}"
    )


def _section_credentials(
    credentials_file: _CredentialsFile, section: str, project_id: str | None
) -> Credentials:
    path = credentials_file.path
    values: dict[str, str] = {}
    problem = None
    try:
        values = dict(credentials_file.parser.items(section))
    except configparser.Error as error:
        problem = _ini_problem(error)
    if problem is not None:
        raise ConfigError(f"credentials file {path}: {problem}; write a '%' as '%%'")

    if values.get("idp_id") or values.get("id_token_file"):
        # TODO: federated identities (idp_id, id_token_file) need a call to
        # IAM's token exchange, which dmsnb does not make yet.
        raise ConfigError(
            f"section [{section}] of {path} holds a federated identity (idp_id, "
            "id_token_file), which dmsnb cannot use yet; give it ak and sk"
        )
    if not (values.get("ak") and values.get("sk")):
        raise ConfigError(f"section [{section}] of {path} needs both ak and sk")
    project = project_id or values.get("project_id")
    if not project:
        raise ConfigError(
            f"section [{section}] of {path} has no project_id; add "
            "'project_id = ...' (32 hex characters) or pass project_id=..."
        )
    logger.info("credentials from section [%s] of %s", section, path)
    return Credentials(
        project_id=project,
        access_key=values["ak"],
        secret_key=values["sk"],
        security_token=values.get("security_token") or None,
        source=f"credentials file [{section}]",
        region=values.get("region") or None,
        endpoint=values.get("endpoint") or None,
    )


# -- clouds.yaml ----------------------------------------------------------------


@dataclass(frozen=True)
class _CloudsConfig:
    path: Path
    clouds: Mapping[str, Any]


def _clouds_candidates(env: Mapping[str, str], stem: str) -> Iterator[Path]:
    config_home = env.get("XDG_CONFIG_HOME")
    user_dir = Path(config_home) if config_home else _home(env) / ".config"
    for directory in (Path.cwd(), user_dir / "openstack", SYSTEM_CONFIG_DIR):
        for suffix in _YAML_SUFFIXES:
            yield directory / (stem + suffix)


def _find_yaml(env: Mapping[str, str], variable: str, stem: str) -> Path | None:
    explicit = env.get(variable)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{variable} names {path}, which is not a file; fix the variable "
                "or unset it"
            )
        return path
    return next((p for p in _clouds_candidates(env, stem) if p.is_file()), None)


def _clouds_config(env: Mapping[str, str]) -> _CloudsConfig | None:
    """The first ``clouds.yaml`` found, with its ``secure.yaml`` merged in."""
    path = _find_yaml(env, ENV_CLOUDS_FILE, "clouds")
    if path is None:
        return None
    clouds = _yaml_clouds(path)
    secure = _find_yaml(env, ENV_SECURE_FILE, "secure")
    if secure is not None:
        clouds = _merged(clouds, _yaml_clouds(secure))
    return _CloudsConfig(path, clouds)


def _yaml_clouds(path: Path) -> dict[str, Any]:
    import yaml

    document: object = None
    problem = None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        # The error's text quotes the offending line, which may hold a secret.
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f"is not valid YAML{where}"
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({type(error).__name__})"
    if problem is not None:
        raise ConfigError(f"{path} {problem}")

    if document is None:
        return {}
    clouds = document.get("clouds") if isinstance(document, dict) else None
    if not isinstance(clouds, dict):
        raise ConfigError(f"{path} has no 'clouds:' mapping at its top level")
    return {str(name): entry for name, entry in clouds.items()}


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _default_cloud(
    clouds: _CloudsConfig, project_id: str | None, env: Mapping[str, str]
) -> Credentials:
    named = env.get(ENV_CLOUD)
    if named:
        if named not in clouds.clouds:
            raise ConfigError(
                f"{ENV_CLOUD}={named!r}, but {clouds.path} has no such cloud "
                f"({', '.join(clouds.clouds) or 'none'})"
            )
        return _cloud_credentials(clouds, named, project_id)
    if len(clouds.clouds) == 1:
        return _cloud_credentials(clouds, next(iter(clouds.clouds)), project_id)
    raise ConfigError(
        f"{clouds.path} has {len(clouds.clouds)} clouds "
        f"({', '.join(clouds.clouds) or 'none'}); name one with profile=..., "
        f"{ENV_PROFILE} or {ENV_CLOUD}"
    )


def _cloud_credentials(
    clouds: _CloudsConfig, name: str, project_id: str | None
) -> Credentials:
    entry = clouds.clouds[name]
    where = f"cloud {name!r} of {clouds.path}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} is not a mapping")
    auth = entry.get("auth") or {}
    if not isinstance(auth, Mapping):
        raise ConfigError(f"the auth of {where} is not a mapping")
    auth_type = str(entry.get("auth_type") or "").lower()
    if auth_type not in _AUTH_TYPES:
        raise ConfigError(
            f"{where} uses auth_type {auth_type!r}; dmsnb reads password, AK/SK "
            "(ak, sk) and token entries"
        )

    def text(key: str) -> str | None:
        return _text(auth, key, where) or _text(entry, key, where)

    region = _text(entry, "region_name", where)
    endpoint = _text(entry, "dms_endpoint_override", where)
    project = project_id or text("project_id")
    logger.info("credentials from %s", where)
    if text("ak") or text("sk"):
        if not project:
            # TODO: looking a project id up by name with AK/SK needs a signed
            # call to IAM's project list, which dmsnb does not make yet.
            raise ConfigError(
                f"{where} has ak/sk but no project_id; add auth.project_id "
                "(32 hex characters; a project_name alone works only with a "
                "password)"
            )
        return Credentials(
            project_id=project,
            access_key=text("ak"),
            secret_key=text("sk"),
            security_token=text("security_token"),
            source=f"clouds.yaml cloud {name} (AK/SK)",
            region=region,
            endpoint=endpoint,
        )
    if text("password") or text("username"):
        login = PasswordLogin(
            auth_url=text("auth_url") or _default_auth_url(region, where),
            username=text("username") or "",
            password=text("password") or "",
            domain_name=text("user_domain_name") or text("domain_name"),
            domain_id=text("user_domain_id") or text("domain_id"),
            project_id=project,
            project_name=None if project else text("project_name"),
            project_domain_name=text("project_domain_name"),
        )
        source = f"clouds.yaml cloud {name} (password)"
        return Credentials.from_password(
            login, region=region, endpoint=endpoint, source=source
        )
    if text("token"):
        if not project:
            raise ConfigError(f"{where} has a token but no project_id; add one")
        return Credentials(
            project_id=project,
            token=text("token"),
            source=f"clouds.yaml cloud {name} (token)",
            region=region,
            endpoint=endpoint,
        )
    raise ConfigError(
        f"{where} has no credentials: give auth.username and auth.password, or "
        "auth.ak and auth.sk"
    )


def _text(mapping: Mapping[str, Any], key: str, where: str) -> str | None:
    """A text value of ``clouds.yaml``; anything else is refused unshown."""
    value = mapping.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{key} of {where} is not text (YAML reads it as "
            f"{type(value).__name__}); put it in quotes"
        )
    return value


def _default_auth_url(region: str | None, where: str) -> str:
    if region in _T_CLOUD_REGIONS:
        return _T_CLOUD_IAM.format(region=region)
    raise ConfigError(f"{where} has a password but no auth.auth_url; add it")
