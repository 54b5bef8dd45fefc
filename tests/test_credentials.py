"""Where credentials come from: arguments, SDK variables, SDK file, clouds.yaml."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcore.auth.provider import (
    EnvCredentialProvider,
    ProfileCredentialProvider,
)

import dmsnb
from dmsnb import ConfigError
from dmsnb._credentials import resolve_credentials
from dmsnb.simulator import Simulator

from .conftest import PROJECT_ID

CLEARED = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
    "DMSNB_PROFILE",
    "OS_CLIENT_CONFIG_FILE",
    "OS_CLIENT_SECURE_FILE",
    "OS_CLOUD",
    "XDG_CONFIG_HOME",
)
OTHER_PROJECT = "1" * 32


@dataclass
class Places:
    """A home, a working directory and an /etc of our own, and the environment."""

    home: Path
    work: Path
    etc: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def credentials_file(self) -> Path:
        return self.home / ".huaweicloud" / "credentials"

    @property
    def user_clouds(self) -> Path:
        return self.home / ".config" / "openstack" / "clouds.yaml"

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def sections(self, **sections: dict[str, str]) -> Path:
        text = "".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
            for name, values in sections.items()
        )
        return self.write(self.credentials_file, text)

    def clouds(self, path: Path | None = None, **clouds: dict[str, Any]) -> Path:
        return self.write(path or self.user_clouds, json.dumps({"clouds": clouds}))

    def env(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Places]:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    home, work, etc = tmp_path / "home", tmp_path / "work", tmp_path / "etc"
    for folder in (home, work, etc):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setattr("dmsnb._credentials.SYSTEM_CONFIG_DIR", etc)
    yield Places(home, work, etc, monkeypatch)


def keys(ak: str, project_id: str = PROJECT_ID) -> dict[str, str]:
    return {"ak": ak, "sk": f"sk-of-{ak}", "project_id": project_id}


def aksk_cloud(ak: str, **extra: Any) -> dict[str, Any]:
    return {"auth": keys(ak), **extra}


# -- the order of the sources ----------------------------------------------------


def set_up(places: Places, sources: str) -> None:
    if "env" in sources:
        places.env(
            HUAWEICLOUD_SDK_AK="AK-ENV",
            HUAWEICLOUD_SDK_SK="sk-of-AK-ENV",
            HUAWEICLOUD_SDK_PROJECT_ID=PROJECT_ID,
        )
    if "file" in sources:
        places.sections(basic=keys("AK-FILE"), prod=keys("AK-PROD"))
    if "clouds" in sources:
        places.clouds(**{"only-one": aksk_cloud("AK-CLOUD")})


@pytest.mark.parametrize(
    ("sources", "arguments", "source", "access_key"),
    [
        (
            "env file clouds",
            {"ak": "AK-ARG", "sk": "sk-of-AK-ARG", "project_id": PROJECT_ID},
            "arguments",
            "AK-ARG",
        ),
        ("env file clouds", {}, "environment", "AK-ENV"),
        ("file clouds", {}, "credentials file [basic]", "AK-FILE"),
        ("clouds", {}, "clouds.yaml cloud only-one (AK/SK)", "AK-CLOUD"),
        ("env file clouds", {"profile": "prod"}, "credentials file [prod]", "AK-PROD"),
        ("env file", {"profile": "prod"}, "credentials file [prod]", "AK-PROD"),
        (
            "env file clouds",
            {"profile": "only-one"},
            "clouds.yaml cloud only-one (AK/SK)",
            "AK-CLOUD",
        ),
    ],
)
def test_sources_are_tried_in_the_documented_order(
    places: Places,
    sources: str,
    arguments: dict[str, str],
    source: str,
    access_key: str,
) -> None:
    set_up(places, sources)

    credentials = resolve_credentials(**arguments)

    assert credentials.source == source
    assert credentials.access_key == access_key
    assert credentials.secret_key == f"sk-of-{access_key}"
    assert credentials.project_id == PROJECT_ID


def test_dmsnb_profile_names_the_profile(places: Places) -> None:
    set_up(places, "env file clouds")
    places.env(DMSNB_PROFILE="prod")

    assert resolve_credentials().source == "credentials file [prod]"
    assert resolve_credentials("only-one").access_key == "AK-CLOUD"


@pytest.mark.parametrize(
    ("set_up_files", "arguments", "message"),
    [
        ("both", {"profile": "twice"}, "both a section of .* and a cloud of"),
        ("both", {"profile": "nowhere"}, r"no profile named 'nowhere'.*\[twice\]"),
        ("none", {"profile": "nowhere"}, "no credentials file .* and no clouds.yaml"),
        ("named", {}, r"no \[basic\] or \[default\] section \(\[prod\], \[staging\]\)"),
        ("two clouds", {}, "has 2 clouds .*name one with profile="),
        ("none", {}, "no credentials found.*HUAWEICLOUD_SDK_AK.*clouds.yaml"),
        ("named", {"profile": "prod", "ak": "a", "sk": "s"}, "not both"),
    ],
)
def test_missing_or_ambiguous_credentials_say_what_to_do(
    places: Places, set_up_files: str, arguments: dict[str, Any], message: str
) -> None:
    if set_up_files == "both":
        places.sections(twice=keys("AK-1"))
        places.clouds(twice=aksk_cloud("AK-2"))
    elif set_up_files == "named":
        places.sections(prod=keys("AK-1"), staging=keys("AK-2"))
    elif set_up_files == "two clouds":
        places.clouds(a=aksk_cloud("AK-1"), b=aksk_cloud("AK-2"))

    with pytest.raises(ConfigError, match=message):
        resolve_credentials(**arguments)


def test_the_default_section_is_also_read(places: Places) -> None:
    places.sections(default=keys("AK-DEFAULT"))
    assert resolve_credentials().source == "credentials file [default]"


def test_os_cloud_picks_among_several_clouds(places: Places) -> None:
    places.clouds(a=aksk_cloud("AK-1"), b=aksk_cloud("AK-2"))
    places.env(OS_CLOUD="b")
    assert resolve_credentials().access_key == "AK-2"

    places.env(OS_CLOUD="c")
    with pytest.raises(ConfigError, match=r"OS_CLOUD='c'.*no such cloud"):
        resolve_credentials()


def test_project_id_replaces_the_sources_project(places: Places) -> None:
    places.sections(basic={"ak": "AK-1", "sk": "s"})
    with pytest.raises(ConfigError, match=r"\[basic\] .* has no project_id"):
        resolve_credentials()
    assert resolve_credentials(project_id=OTHER_PROJECT).project_id == OTHER_PROJECT


# -- the SDK's credentials file, exactly as the SDK reads it ----------------------


def test_the_credentials_file_reads_as_the_official_sdk_reads_it(
    places: Places,
) -> None:
    places.write(
        places.credentials_file,
        "; written by hand\n"
        "[basic]\n"
        "AK = HPUAPARITY0000000001\n"
        "Sk: secret%%with-percent\n"
        "project_id =  " + PROJECT_ID + "  \n"
        "security_token = sts-token-line-one\n"
        "  continued-on-a-second-line\n"
        "\n[global]\nak = other\nsk = other\ndomain_id = d\n",
    )
    sdk = ProfileCredentialProvider.get_basic().get_credentials()

    ours = resolve_credentials()

    assert ours.access_key == sdk.ak == "HPUAPARITY0000000001"
    assert ours.secret_key == sdk.sk == "secret%with-percent"
    assert ours.project_id == sdk.project_id == PROJECT_ID
    assert ours.security_token == sdk.security_token
    assert ours.kind == "temporary AK/SK"


def test_the_environment_reads_as_the_official_sdk_reads_it(places: Places) -> None:
    places.env(
        HUAWEICLOUD_SDK_AK="HPUAENVPARITY0000001",
        HUAWEICLOUD_SDK_SK="env-secret",
        HUAWEICLOUD_SDK_PROJECT_ID=PROJECT_ID,
        HUAWEICLOUD_SDK_SECURITY_TOKEN="env-sts",
    )
    sdk = EnvCredentialProvider.get_basic().get_credentials()

    ours = resolve_credentials()

    assert (ours.access_key, ours.secret_key) == (sdk.ak, sdk.sk)
    assert (ours.project_id, ours.security_token) == (
        sdk.project_id,
        sdk.security_token,
    )


def test_the_credentials_file_variable_names_the_file(places: Places) -> None:
    elsewhere = places.write(
        places.work / "creds.ini", "[basic]\n" + "ak = AK-X\nsk = s\nproject_id = p\n"
    )
    places.env(HUAWEICLOUD_SDK_CREDENTIALS_FILE=str(elsewhere))
    assert resolve_credentials().access_key == "AK-X"

    places.env(HUAWEICLOUD_SDK_CREDENTIALS_FILE=str(places.work / "missing"))
    with pytest.raises(ConfigError, match="which is not a file"):
        resolve_credentials()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ak = SECRETVALUE1\n[basic]\n", "MissingSectionHeaderError"),
        ("[basic]\nak = a\nSECRETVALUE1\n", r"ParsingError \(line 3\)"),
        ("[basic]\nak = a\nsk = abc%SECRETVALUE1\n", "write a '%' as '%%'"),
        ("[basic]\nak = SECRETVALUE1\nak = again\n", "DuplicateOptionError"),
    ],
)
def test_a_broken_credentials_file_is_described_without_its_values(
    places: Places, text: str, message: str
) -> None:
    places.write(places.credentials_file, text)

    with pytest.raises(ConfigError, match=message) as caught:
        resolve_credentials()

    assert "SECRETVALUE1" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None  # not even in a traceback


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"idp_id": "idp", "id_token_file": "/t"}, "federated identity"),
        ({"ak": "a"}, "needs both ak and sk"),
    ],
)
def test_a_section_without_usable_keys_says_so(
    places: Places, values: dict[str, str], message: str
) -> None:
    places.sections(basic={**values, "project_id": PROJECT_ID})
    with pytest.raises(ConfigError, match=message):
        resolve_credentials()


# -- clouds.yaml -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (("variable", "cwd", "user", "etc"), "variable"),
        (("cwd", "user", "etc"), "cwd"),
        (("user", "etc"), "user"),
        (("etc",), "etc"),
        (("user.yml", "etc"), "user.yml"),
    ],
)
def test_clouds_yaml_is_searched_where_openstack_looks(
    places: Places, present: tuple[str, ...], chosen: str
) -> None:
    locations = {
        "variable": places.work / "elsewhere" / "my-clouds.yaml",
        "cwd": places.work / "clouds.yaml",
        "user": places.user_clouds,
        "user.yml": places.user_clouds.with_suffix(".yml"),
        "etc": places.etc / "clouds.yaml",
    }
    for name in present:
        places.clouds(locations[name], cloud=aksk_cloud(f"AK-{name}"))
    if "variable" in present:
        places.env(OS_CLIENT_CONFIG_FILE=str(locations["variable"]))

    assert resolve_credentials().access_key == f"AK-{chosen}"


def test_xdg_config_home_moves_the_user_folder(places: Places) -> None:
    config = places.work / "xdg"
    places.clouds(config / "openstack" / "clouds.yaml", c=aksk_cloud("AK-XDG"))
    places.env(XDG_CONFIG_HOME=str(config))
    assert resolve_credentials().access_key == "AK-XDG"


def test_secure_yaml_supplies_the_secrets(places: Places) -> None:
    places.clouds(prod={"region_name": "eu-nl", "auth": {"ak": "AK-1"}})
    places.write(
        places.user_clouds.with_name("secure.yaml"),
        json.dumps(
            {
                "clouds": {
                    "prod": {"auth": {"sk": "from-secure", "project_id": PROJECT_ID}}
                }
            }
        ),
    )

    credentials = resolve_credentials("prod")

    assert (credentials.access_key, credentials.secret_key) == ("AK-1", "from-secure")
    assert credentials.region == "eu-nl"


@pytest.mark.parametrize(
    ("cloud", "message"),
    [
        ({"auth": {"ak": "a", "sk": "s"}}, "has ak/sk but no project_id"),
        (
            {"auth": {"ak": "a", "sk": "s", "project_id": 12345}},
            "reads it as int\\); put it in quotes",
        ),
        ({"auth_type": "v3oidcpassword", "auth": {}}, "auth_type 'v3oidcpassword'"),
        ({"auth": {"username": "u", "password": "p"}}, "no auth.auth_url"),
        ({"auth": {}}, "has no credentials"),
        ({"auth": "text"}, "is not a mapping"),
        (
            {
                "region_name": "eu-de",
                "auth": {"username": "u", "password": "p", "project_id": PROJECT_ID},
            },
            "needs its domain",
        ),
    ],
)
def test_a_cloud_without_usable_credentials_says_what_to_add(
    places: Places, cloud: dict[str, Any], message: str
) -> None:
    places.clouds(c=cloud)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_credentials("c")
    assert "12345" not in str(caught.value)


def test_broken_yaml_is_described_without_its_text(places: Places) -> None:
    places.write(
        places.user_clouds,
        "clouds:\n  c:\n    auth:\n      password: 'SECRETVALUE1\n      user: [x\n",
    )
    with pytest.raises(ConfigError, match="not valid YAML at line") as caught:
        resolve_credentials()
    assert "SECRETVALUE1" not in str(caught.value)


def test_a_t_cloud_entry_without_auth_url_uses_the_regions_iam(
    places: Places,
) -> None:
    places.clouds(
        otc={
            "region_name": "eu-nl",
            "auth": {
                "username": "ops",
                "password": "p",
                "user_domain_name": "OTC00000000001000000001",
                "project_id": PROJECT_ID,
            },
        }
    )

    credentials = resolve_credentials("otc")  # a project id: no token call yet

    provider = credentials.token_provider
    assert provider is not None and provider.fetches == 0  # type: ignore[attr-defined]
    assert provider.login.tokens_url == (  # type: ignore[attr-defined]
        "https://iam.eu-nl.otc.t-systems.com/v3/auth/tokens"
    )
    assert credentials.source == "clouds.yaml cloud otc (password)"
    assert credentials.region == "eu-nl"


# -- against the simulator ---------------------------------------------------------


def test_a_clouds_yaml_password_entry_gets_a_client_that_works(
    places: Places, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Simulator(instances=7, seed=31, password="pw-SECRET-31") as sim:
        sim.write_clouds_yaml(places.user_clouds, cloud="otc-prod")

        with dmsnb.Client.from_profile("otc-prod", audit=None) as client:
            fleet = client.instances(include_failed=True)
            shown = [repr(client), repr(client.credentials), caplog.text]

        assert len(fleet) == 7
        assert client.project_id == sim.project_id  # learned from the token
        assert client.endpoint == sim.base_url
    assert client.credentials.source == "clouds.yaml cloud otc-prod (password)"
    assert client.credentials.region == "eu-de"
    for text in shown:
        assert "pw-SECRET-31" not in text


def test_dmsnb_profile_and_an_sdk_file_reach_the_simulator(places: Places) -> None:
    with Simulator(instances=3, seed=32) as sim:
        sim.write_credentials_file(places.credentials_file, section="sim")
        places.env(DMSNB_PROFILE="sim")

        with dmsnb.Client.from_profile(audit=None) as client:
            assert len(client.instances(include_failed=True)) == 3
            assert client.credentials.source == "credentials file [sim]"
            assert client.credentials.access_key == sim.ak
            assert client.credentials.secret_key == sim.sk


def test_from_profile_needs_a_region_from_somewhere(places: Places) -> None:
    places.sections(basic=keys("AK-1"))
    with pytest.raises(ConfigError, match=r"credentials file \[basic\] name no region"):
        dmsnb.Client.from_profile()

    with dmsnb.Client.from_profile(region="eu-de", audit=None) as client:
        assert client.endpoint == "https://dms.eu-de.otc.t-systems.com"

    places.sections(basic={**keys("AK-1"), "region": "eu-nl"})
    with dmsnb.Client.from_profile(audit=None) as client:
        assert client.endpoint == "https://dms.eu-nl.otc.t-systems.com"
        assert client.region == "eu-nl"


def test_credentials_and_keys_together_are_refused() -> None:
    credentials = dmsnb.Credentials(PROJECT_ID, access_key="a", secret_key="s")
    with pytest.raises(ConfigError, match="not both"):
        dmsnb.Client(region="eu-de", credentials=credentials, ak="b", sk="t")
    with dmsnb.Client(region="eu-de", credentials=credentials) as client:
        assert client.credentials is credentials


# -- reprs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"access_key": "HPUAREPR000000000001", "secret_key": "SECRET-SK"}, "AK/SK"),
        (
            {
                "access_key": "HPUAREPR000000000001",
                "secret_key": "SECRET-SK",
                "security_token": "SECRET-STS",
            },
            "temporary AK/SK",
        ),
        ({"token": "SECRET-TOKEN"}, "token"),
    ],
)
def test_credentials_reprs_carry_no_secret(fields: dict[str, str], kind: str) -> None:
    credentials = dmsnb.Credentials(PROJECT_ID, source="environment", **fields)

    text = repr(credentials) + str(credentials)

    assert credentials.kind == kind
    assert "SECRET" not in text
    assert "HPUAREPR000000000001" not in text
    assert f"<Credentials {kind} project={PROJECT_ID}" in text
    assert "from environment" in text
