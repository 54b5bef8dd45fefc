"""The ``dmsnb`` command: in-process and as a process, on simulators.

Most commands run in-process (``main([...])`` with captured output)
against a simulator the test started, reached as a real project is: its
URL as ``--endpoint``, its keys in the official SDK's environment
variables. The simulator's own request counters and action log say what
was sent; every captured output is checked for the keys. A few commands
run as processes: through a pipe, on a terminal, and against a simulator
served by ``dmsnb simulator``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmsnb
from dmsnb import cli
from dmsnb.simulator import Faults, Simulator, Timings, derived_keys

from .notebook_kernel import REPO, notebook_kernel

FAST = ["--interval", "0.05", "--timeout", "20"]


class Ran:
    """What one ``dmsnb`` command did: its exit status and its output."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Simulator]:
    """A simulator, its keys in the SDK's variables, the cwd a fresh folder."""
    simulator = Simulator(
        instances=20,
        seed=5,
        failed_creations=2,
        errors=1,
        timings=Timings(restart_seconds=0.2, delete_seconds=0.2),
    )
    monkeypatch.chdir(tmp_path)
    clear_credentials(monkeypatch, tmp_path)
    with simulator:
        monkeypatch.setenv("HUAWEICLOUD_SDK_AK", simulator.ak)
        monkeypatch.setenv("HUAWEICLOUD_SDK_SK", simulator.sk)
        monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", simulator.project_id)
        yield simulator


def clear_credentials(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No credentials anywhere: no variables, no file, no clouds.yaml."""
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_SDK_", "OS_")) or name == "DMSNB_PROFILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def dmsnb_command(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> Any:
    """``dmsnb_command(*args)`` runs ``main`` in-process; no key is printed."""

    def invoke(*args: str) -> Ran:
        status = cli.main(list(args))
        captured = capsys.readouterr()
        ran = Ran(status, captured.out, captured.err)
        if "sim" in request.fixturenames:
            sim = request.getfixturevalue("sim")
            assert_no_secret(ran.out + ran.err, sim.ak, sim.sk)
        return ran

    return invoke


def assert_no_secret(text: str, ak: str, sk: str) -> None:
    assert sk not in text
    assert ak not in text
    assert re.search(r"Signature=[0-9a-f]{16}", text) is None
    assert "SDK-HMAC-SHA256" not in text


def on(sim: Simulator) -> list[str]:
    """The options that point a command at ``sim``."""
    return ["--endpoint", sim.base_url, "--project-id", sim.project_id]


def writes(sim: Simulator) -> int:
    return sum(n for (method, _), n in sim.requests.items() if method != "GET")


def tags(sim: Simulator, instance_id: str) -> dict[str, str]:
    found = sim.fleet.show(instance_id)
    assert found is not None
    return {tag["key"]: tag["value"] for tag in found.get("tags", [])}


def prod_and_other(sim: Simulator) -> tuple[str, str]:
    running = sim.fleet.ids("RUNNING")
    prod = next(i for i in running if tags(sim, i).get("env") == "prod")
    other = next(i for i in running if tags(sim, i).get("env") != "prod")
    return prod, other


# -- dmsnb instances -----------------------------------------------------------


def test_instances_on_the_simulator_lists_the_whole_fleet(dmsnb_command: Any) -> None:
    ran = dmsnb_command("instances", "--simulator")

    lines = ran.out.splitlines()
    assert ran.status == 0
    assert lines[0].split() == cli.LISTED_COLUMNS
    assert len(lines) == 1 + 24
    assert "24 of 24 instance(s): the whole fleet" in ran.err


def test_instances_filters_and_prints_ids_csv_and_json(
    dmsnb_command: Any, sim: Simulator
) -> None:
    failed = sim.fleet.ids("CREATEFAILED")

    ids = dmsnb_command(
        "instances", *on(sim), "--status", "CREATEFAILED", "--format", "ids"
    )
    table = dmsnb_command(
        "instances", *on(sim), "--format", "csv", "--columns", "instance_id,tags"
    )
    records = dmsnb_command("instances", *on(sim), "--format", "json", "--name", "PROD")

    assert ids.out.split() == failed
    rows = list(csv.DictReader(io.StringIO(table.out)))
    assert len(rows) == 20
    first = rows[0]
    expected = ";".join(f"{k}={v}" for k, v in tags(sim, first["instance_id"]).items())
    assert first["tags"] == expected
    listed = json.loads(records.out)
    assert listed and all("-prod-" in row["name"] for row in listed)
    assert set(listed[0]) == set(cli.LISTED_COLUMNS)
    assert listed[0]["created_at"].endswith("Z")
    assert writes(sim) == 0


# -- acting ----------------------------------------------------------------------


def test_restart_goes_in_waves_and_prints_one_row_per_instance(
    dmsnb_command: Any, sim: Simulator
) -> None:
    first, second, third = sim.fleet.ids("RUNNING")[:3]

    ran = dmsnb_command(
        "restart",
        *on(sim),
        "--id",
        first,
        "--id",
        second,
        "--id",
        third,
        "--wave-size",
        "2",
        *FAST,
    )

    assert ran.status == 0, ran.err
    assert [r.instance_id for r in sim.action_log] == [first, second, third]
    assert ran.out.count(" success ") == 3
    assert "restart: 3 instance(s), 3 success" in ran.out
    assert "wave 1: restart sent for 2 instance(s)" in ran.err
    assert "wave 2: restart sent for 1 instance(s)" in ran.err
    assert "\x1b" not in ran.err  # captured, not a terminal: plain lines
    trail = dmsnb.audit_outcomes("dmsnb.audit.jsonl")
    assert sorted(trail["instance_id"]) == sorted([first, second, third])


def test_a_dry_run_sends_no_write_and_says_what_would_happen(
    dmsnb_command: Any, sim: Simulator
) -> None:
    ran = dmsnb_command("delete", *on(sim), "--name", "dev", "--dry-run")

    planned = [i for i in sim.fleet.ids() if "-dev-" in str(sim.fleet.show(i)["name"])]
    assert ran.status == 0
    assert writes(sim) == 0 and sim.action_log == ()
    assert f"to delete {len(planned)} instance(s)" in ran.out
    assert f"--confirm {len(planned)}" in ran.out


def test_delete_with_a_protection_rule_deletes_only_the_others(
    dmsnb_command: Any, sim: Simulator, tmp_path: Path
) -> None:
    prod, other = prod_and_other(sim)

    ran = dmsnb_command(
        "delete",
        *on(sim),
        "--id",
        prod,
        "--id",
        other,
        "--protect-tag",
        "env=prod",
        "--confirm",
        "1",
        "--audit",
        str(tmp_path / "trail.jsonl"),
        *FAST,
    )

    assert ran.status == 0, ran.err
    assert [r.instance_id for r in sim.action_log] == [other]
    assert sim.fleet.status(prod) == "RUNNING"
    assert "protected: tag env=prod" in ran.out
    assert "delete: 2 instance(s), 1 success, 1 skipped" in ran.out
    assert (tmp_path / "trail.jsonl").exists()


def test_delete_reads_the_ids_from_standard_input(
    dmsnb_command: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, other = prod_and_other(sim)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"# to go\n{other}\n"))

    ran = dmsnb_command("delete", *on(sim), "--ids-file", "-", "--confirm", "1", *FAST)

    assert ran.status == 0, ran.err
    assert [r.instance_id for r in sim.action_log] == [other]


def test_a_named_id_not_in_the_fleet_fails_the_command(
    dmsnb_command: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, other = prod_and_other(sim)
    typo = "00000000-0000-4000-8000-000000000000"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{other}\n{typo}\n"))

    ran = dmsnb_command("delete", *on(sim), "--ids-file", "-", "--confirm", "1", *FAST)

    assert ran.status == 1
    assert [r.instance_id for r in sim.action_log] == [other]
    assert "1 named id(s) are not in the fleet" in ran.out + ran.err
    assert typo in ran.out + ran.err


def test_delete_failed_uses_the_all_failure_call_and_follows_each(
    dmsnb_command: Any, sim: Simulator
) -> None:
    failed = sim.fleet.ids("CREATEFAILED")

    ran = dmsnb_command("delete-failed", *on(sim), "--confirm", "2", *FAST)

    assert ran.status == 0, ran.err
    assert sorted(r.instance_id for r in sim.action_log) == sorted(failed)
    assert {r.via for r in sim.action_log} == {"all_failure"}
    assert "plan: delete failed creations: 2 instance(s)" in ran.err
    assert "dmsnb followed the 2 it had listed" in ran.out


def test_delete_failed_by_id_never_deletes_a_running_instance(
    dmsnb_command: Any, sim: Simulator
) -> None:
    failed = sim.fleet.ids("CREATEFAILED")[0]
    running = sim.fleet.ids("RUNNING")[0]

    ran = dmsnb_command(
        "delete-failed",
        *on(sim),
        "--id",
        running,
        "--id",
        failed,
        "--confirm",
        "1",
        *FAST,
    )

    assert ran.status == 0, ran.err
    assert [r.instance_id for r in sim.action_log] == [failed]
    assert "not a failed creation" in ran.out


def test_a_failed_instance_gives_exit_1_and_is_named(
    dmsnb_command: Any, sim: Simulator
) -> None:
    sim.faults = Faults(restart_error_rate=1.0)
    first, second = sim.fleet.ids("RUNNING")[:2]

    ran = dmsnb_command(
        "restart", *on(sim), "--id", first, "--id", second, "--wave-size", "1", *FAST
    )

    assert ran.status == 1
    assert "1 instance(s) failed or stayed unknown:" in ran.out
    assert f"  failed {first}" in ran.out
    assert re.search(rf"{second} .* skipped .*not started", ran.out)
    assert [r.instance_id for r in sim.action_log] == [first]


def test_json_results_keep_stdout_machine_readable(
    dmsnb_command: Any, sim: Simulator
) -> None:
    instance_id = sim.fleet.ids("RUNNING")[0]

    ran = dmsnb_command(
        "restart", *on(sim), "--id", instance_id, "--format", "json", *FAST
    )

    rows = json.loads(ran.out)
    assert ran.status == 0
    assert [(r["instance_id"], r["result"]) for r in rows] == [(instance_id, "success")]
    assert "restart: 1 instance(s), 1 success" in ran.err


# -- bad arguments -------------------------------------------------------------------


def bad(args: list[str], message: str, *, read: bool = False) -> Any:
    """A row: the arguments (ids as <running>, <prod>, <failed>), what the
    error says, and whether the fleet was read first (nothing is ever written)."""
    return pytest.param(args, message, read, id=message[:40])


BAD_ARGUMENTS = [
    bad(["restart", "--status", "RUNNIN"], "unknown status 'RUNNIN'; use one of"),
    bad(["restart", "--all", "--wave-size", "0"], "the wave size must be a whole"),
    bad(["restart", "--all", "--wave-size", "two"], "invalid int value: 'two'"),
    bad(["restart", "--all", "--timeout", "0"], "--timeout must be more than 0"),
    bad(["restart"], "select the instances"),
    bad(
        ["restart", "--name", "x", "--id", "<running>"], "give instance ids or filters"
    ),
    bad(["restart", "--tag", "env"], "tag 'env' must be KEY=VALUE"),
    bad(["restart", "--simulator", "--region", "eu-de", "--all"], "takes no region"),
    bad(
        ["delete", "--id", "<running>"], "say how many instances will go with --confirm"
    ),
    bad(
        ["delete", "--ids-file", "missing.txt", "--confirm", "1"],
        "cannot read the ids file 'missing.txt'",
    ),
    bad(
        ["delete", "--ids-file", "bad.txt", "--confirm", "1"],
        "bad.txt line 2: 'kafka-x' is not an instance id",
    ),
    bad(
        ["delete", "--id", "<running>", "--id", "<running>", "--confirm", "2"],
        "more than once",
    ),
    bad(
        ["delete", "--id", "<running>", "--confirm", "2"],
        "--confirm 2 does not match: only 1",
    ),
    bad(
        [
            "delete",
            "--id",
            "<prod>",
            "--id",
            "<running>",
            "--protect-tag",
            "env=prod",
            "--confirm",
            "2",
        ],
        "count 2 does not match the plan, which deletes 1",
        read=True,
    ),
    bad(
        ["delete-failed", "--status", "RUNNING", "--confirm", "1"],
        "failed creations (status CREATEFAILED) only",
    ),
    bad(
        ["delete-failed", "--confirm", "5"],
        "count 5 does not match the plan, which deletes 2",
        read=True,
    ),
    bad(["restart", "--id", "<failed>"], "the plan has nothing to do", read=True),
    bad(["instances", "--columns", "nope"], "unknown columns nope", read=True),
    bad(["instances", "--seed", "3"], "--seed: only with --simulator"),
]


@pytest.mark.parametrize(("args", "message", "read"), BAD_ARGUMENTS)
def test_a_bad_argument_exits_2_with_a_clear_message_and_sends_nothing(
    args: list[str], message: str, read: bool, dmsnb_command: Any, sim: Simulator
) -> None:
    prod, running = prod_and_other(sim)
    failed = sim.fleet.ids("CREATEFAILED")[0]
    Path("bad.txt").write_text(f"{running}\nkafka-x\n")
    names = {"<running>": running, "<prod>": prod, "<failed>": failed}
    command = [names.get(arg, arg) for arg in args]
    if "--simulator" not in command:
        command += on(sim)

    ran = dmsnb_command(*command)

    assert ran.status == 2
    assert message in ran.err
    last = ran.err.splitlines()[-1]
    assert last.startswith(f"dmsnb {args[0]}: error: ") or "usage:" in ran.err
    assert writes(sim) == 0 and sim.action_log == ()
    assert bool(sim.requests) is read


def test_without_credentials_the_command_says_what_to_set(
    dmsnb_command: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    clear_credentials(monkeypatch, tmp_path)

    ran = dmsnb_command("instances", "--region", "eu-de")

    assert ran.status == 2
    assert "no credentials found" in ran.err
    assert "use --simulator" in ran.err


# -- the checks the command and the runbooks share -------------------------------

ID_A = "5f2ee40d-ada6-4cc4-a8b3-e3aa53c69b0a"
ID_B = "75fdf37c-5d5e-41ad-a201-aafd93ea6a94"


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (cli.checked_status, None, None),
        (cli.checked_status, "running", "RUNNING"),
        (cli.checked_wave_size, None, None),
        (cli.checked_wave_size, 3, 3),
        (cli.checked_count, 0, 0),
        (cli.checked_flag, False, False),
        (cli.parse_tags, "env=stg, team=pay", {"env": "stg", "team": "pay"}),
        (cli.parse_tags, ["env=*"], {"env": "*"}),
        (cli.parse_tags, {"env": "prod"}, {"env": "prod"}),
        (cli.parse_names, "*-prod-*,*-live-*", ["*-prod-*", "*-live-*"]),
    ],
)
def test_a_good_value_passes_the_check(
    check: Any, value: object, expected: object
) -> None:
    if check is cli.checked_count or check is cli.checked_flag:
        assert check("it", value) == expected
    else:
        assert check(value) == expected


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (cli.checked_status, "RUNIN", "unknown status 'RUNIN'; use one of CREATING"),
        (cli.checked_status, 3, "unknown status 3"),
        (cli.checked_wave_size, 0, "at least 1, not 0"),
        (cli.checked_wave_size, 1.5, "at least 1, not 1.5"),
        (cli.checked_wave_size, True, "at least 1, not True"),
        (lambda v: cli.checked_seconds("the timeout", v), 0, "more than 0 seconds"),
        (lambda v: cli.checked_seconds("it", v, zero=True), -1, "0 or more seconds"),
        (lambda v: cli.checked_seconds("it", v), "5", "a number of seconds"),
        (lambda v: cli.checked_count("expected_count", v), -1, "0 or more"),
        (
            lambda v: cli.checked_flag("dry_run", v),
            "False",
            "True or False, not 'False'",
        ),
        (lambda v: cli.checked_flag("dry_run", v), 0, "True or False, not 0"),
        (cli.parse_tags, "env", "tag 'env' must be KEY=VALUE"),
        (cli.parse_tags, "env=", "tag 'env=' must be KEY=VALUE"),
        (cli.parse_names, 3, "a list of patterns"),
        (cli.refuse_secrets, ["sk"], "sk: never pass a key"),
        (cli.refuse_secrets, ["os_password"], "os_password: never pass"),
        (cli.refuse_secrets, ["iam_token"], "iam_token: never pass"),
        (cli.refuse_secrets, ["HUAWEICLOUD_SDK_AK"], "never pass"),
    ],
)
def test_a_bad_value_is_refused_with_what_to_give(
    check: Any, value: object, message: str
) -> None:
    with pytest.raises(cli.ParameterError, match=re.escape(message)):
        check(value)


def test_names_that_are_no_secret_pass() -> None:
    cli.refuse_secrets(["simulator_seed", "task", "ask_first", "_ih", "skip"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no instance id"),
        ("# only a comment\n", "holds no instance id"),
        (f"{ID_A}\n{ID_A}\n", "instance ids given more than once"),
        (f"{ID_A}\nkafka-1 # old\n", "line 2: 'kafka-1' is not an instance id"),
    ],
)
def test_an_ids_file_that_holds_no_clean_list_is_refused(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(text)

    with pytest.raises(cli.ParameterError, match=re.escape(message)):
        cli.read_ids(path)


def test_an_ids_file_reads_commas_spaces_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(f"# decommission\n{ID_A}, {ID_B}  # both\n")

    assert cli.read_ids(path) == [ID_A, ID_B]
    assert cli.read_ids(io.StringIO(ID_B)) == [ID_B]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing.txt", "cannot read the ids file 'missing.txt': No such file"),
        (".", "cannot read the ids file '.': Is a directory"),
        ("binary.bin", "cannot read the ids file 'binary.bin': not UTF-8 text"),
    ],
)
def test_an_unreadable_ids_file_is_refused(
    path: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("binary.bin").write_bytes(b"\xff\xfe\x00")

    with pytest.raises(cli.ParameterError, match=re.escape(message)):
        cli.read_ids(path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "select the instances"),
        ({"name": "a", "exact_name": "a"}, "not both"),
        ({"name": "a", "ids": [ID_A]}, "give instance ids or filters, not both"),
        ({"ids": [ID_A], "ids_file": "x"}, "give ids or an ids file, not both"),
        ({"everything": True, "status": "ERROR"}, "'all' selects the whole fleet"),
        ({"name": 3}, "the name filter must be text"),
        ({"ids": "not-an-id"}, "not instance ids (UUIDs): 'not-an-id'"),
    ],
)
def test_a_selection_must_say_clearly_which_instances(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(cli.ParameterError, match=re.escape(message)):
        cli.Selection.checked(**options)


def test_a_selection_matches_filters_together(sim: Simulator) -> None:
    with sim.client() as client:
        fleet = client.instances(include_failed=True)
    selection = cli.Selection.checked(name="PROD", status="RUNNING", tags="team=*")

    chosen = selection.matching(fleet)

    assert len(chosen) > 0
    assert all("prod" in name for name in chosen["name"])
    assert set(chosen["status"]) == {"RUNNING"}
    assert all(any(t["key"] == "team" for t in tags) for tags in chosen["tags"])
    assert selection.describe() == "name contains 'PROD', status RUNNING, tag team=*"


# -- the progress display --------------------------------------------------------


@pytest.mark.parametrize("live", [True, False])
def test_progress_is_one_line_on_a_terminal_and_plain_lines_otherwise(
    live: bool, sim: Simulator
) -> None:
    stream = io.StringIO()
    progress = cli.Progress(stream, live=live)
    ids = sim.fleet.ids("RUNNING")[:3]
    with sim.client() as client:
        client.restart(ids, wave_size=1, on_progress=progress)
    progress.close()

    text = stream.getvalue()
    if live:
        assert "\r\x1b[K" in text and text.endswith("\n")
        assert text.count("\n") == 1
        assert "restart: 3/3 settled (3 success), wave 3/3" in text
    else:
        assert "\r" not in text and "\x1b" not in text
        lines = text.splitlines()
        assert [line.split(":")[0] for line in lines if line.startswith("wave")] == [
            "wave 1",
            "wave 2",
            "wave 3",
        ]
        assert sum(line.startswith("success ") for line in lines) == 3


# -- as processes ------------------------------------------------------------------


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dmsnb.cli", *args]


def process_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUAWEICLOUD_SDK_", "OS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    return {**env, **extra}


def test_ids_piped_from_one_command_into_another(tmp_path: Path) -> None:
    # Two fresh simulators with one seed hold the same fleet.
    fleet = ["--simulator", "--seed", "3", "--instances", "16"]
    failed = Simulator(instances=16, seed=3).fleet.ids("CREATEFAILED")
    listing = subprocess.run(
        command("instances", *fleet, "--status", "CREATEFAILED", "--format", "ids"),
        capture_output=True,
        text=True,
        env=process_env(),
        cwd=tmp_path,
        check=True,
    )

    deleting = subprocess.run(
        command("delete", *fleet, "--ids-file", "-", "--confirm", str(len(failed))),
        input=listing.stdout,
        capture_output=True,
        text=True,
        env=process_env(),
        cwd=tmp_path,
        timeout=60,
    )

    assert listing.stdout.split() == failed
    assert deleting.returncode == 0, deleting.stderr
    assert deleting.stdout.count(" success ") == len(failed)
    assert "\x1b" not in deleting.stderr
    assert "wave 1: delete sent for" in deleting.stderr


def test_on_a_terminal_the_progress_is_drawn_in_place(tmp_path: Path) -> None:
    parent, child = pty.openpty()
    process = subprocess.Popen(
        command("restart", "--simulator", "--name", "stg", "--restart-seconds", "0.3"),
        stdout=subprocess.DEVNULL,
        stderr=child,
        env=process_env(),
        cwd=tmp_path,
    )
    os.close(child)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(parent, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=10)
    os.close(parent)

    text = screen.decode()
    assert process.returncode == 0
    assert "\r\x1b[K" in text
    assert re.search(r"restart: \d+/\d+ settled", text)


def test_an_interrupted_run_still_prints_every_row(tmp_path: Path) -> None:
    restart = command(
        "restart",
        "--simulator",
        "--status",
        "RUNNING",
        "--wave-size",
        "1",
        "--restart-seconds",
        "2",
    )
    with subprocess.Popen(
        restart,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=process_env(),
        cwd=tmp_path,
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("wave 1:"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)

    running = len(Simulator(instances=24, seed=7).fleet.ids("RUNNING"))
    assert process.returncode == 130
    assert "interrupted; the rows above say what is known" in err
    rows = [line for line in out.splitlines() if re.match(r"[0-9a-f]{8}-", line)]
    assert len(rows) == running
    assert sum(" unknown " in row for row in rows) == 1  # wave 1, sent
    assert sum(" skipped " in row for row in rows) == running - 1
    assert "1 instance(s) failed or stayed unknown:" in out


def test_against_a_simulator_served_by_dmsnb_simulator(tmp_path: Path) -> None:
    keys = derived_keys(9)
    serve = command("simulator", "--port", "0", "--instances", "12", "--seed", "9")
    with subprocess.Popen(
        serve,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=process_env(),
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            env = process_env(
                HUAWEICLOUD_SDK_AK=keys.ak,
                HUAWEICLOUD_SDK_SK=keys.sk,
                HUAWEICLOUD_SDK_PROJECT_ID=keys.project_id,
            )
            listed = subprocess.run(
                command("instances", "--endpoint", url, "--format", "json"),
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=60,
            )
            refused = subprocess.run(
                command("restart", "--endpoint", url, "--all", "--wave-size", "0"),
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=60,
            )
        finally:
            server.terminate()
            server.communicate(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 12
    assert refused.returncode == 2
    assert "the wave size must be" in refused.stderr
    for text in (listed.stdout, listed.stderr, refused.stderr):
        assert_no_secret(text, keys.ak, keys.sk)


# -- dmsnb run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with notebook_kernel(tmp_path_factory.mktemp("jupyter")) as name:
        yield name


@pytest.mark.notebook
def test_run_executes_a_runbook_and_prints_its_outcome(
    dmsnb_command: Any, kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    ran = dmsnb_command(
        "run",
        "rolling-restart",
        "--simulator",
        "--kernel",
        kernel,
        "-p",
        "select_all",
        "True",
        "-p",
        "wave_size",
        "5",
        "-o",
        "out.ipynb",
    )

    assert ran.status == 0, ran.err
    assert ran.out.startswith("[rolling-restart] restart (dry run): 30 instance(s)")
    outcome = cli.read_outcome(tmp_path / "out.ipynb")
    assert outcome is not None
    assert outcome["dry_run"] is True and outcome["simulator_writes"] == 0
    assert (tmp_path / "dmsnb.audit.jsonl").exists()


@pytest.mark.notebook
def test_run_exits_1_naming_the_failed_instances(
    dmsnb_command: Any, kernel: str, sim: Simulator
) -> None:
    sim.faults = Faults(restart_error_rate=1.0)
    instance_id = sim.fleet.ids("RUNNING")[0]

    ran = dmsnb_command(
        "run",
        "rolling-restart",
        *on(sim),
        "--kernel",
        kernel,
        "-o",
        "out.ipynb",
        "-p",
        "ids",
        json.dumps([instance_id]),
        "-p",
        "dry_run",
        "False",
        "-p",
        "poll_seconds",
        "0.05",
    )

    assert ran.status == 1
    assert "restart: 1 instance(s), 1 failed" in ran.out
    assert (
        f"InstancesFailed: 1 instance(s) failed and 0 stayed unknown: {instance_id}"
        in ran.err
    )
    assert Path("out.ipynb").exists()


@pytest.mark.notebook
def test_run_exits_2_when_the_runbook_refuses_its_parameters(
    dmsnb_command: Any, kernel: str, sim: Simulator
) -> None:
    ran = dmsnb_command(
        "run",
        "delete",
        *on(sim),
        "--kernel",
        kernel,
        "-o",
        "out.ipynb",
        "-p",
        "ids",
        sim.fleet.ids("RUNNING")[0],
        "-p",
        "dry_run",
        "False",
        "-p",
        "expected_count",
        "2",
    )

    assert ran.status == 2
    assert "expected_count 2 does not match: the list holds 1 id(s)" in ran.err
    assert writes(sim) == 0 and not sim.requests


RUN_REFUSED = [
    (["run", "nothing-here"], "no runbook 'nothing-here'"),
    (["run", "rolling-restart", "-p", "wave_sze", "2"], "no parameter wave_sze"),
    (["run", "fleet-report", "-p", "sk", "x"], "sk: never pass a key"),
    (["run", "fleet-report", "-p", "HUAWEICLOUD_SDK_SK", "x"], "never pass a key"),
    (["run", "fleet-report", "--simulator", "-p", "simulator", "True"], "given twice"),
    (["run", "fleet-report", "--no-audit"], "always writes its audit trail"),
    (["run", "fleet-report", "--restart-seconds", "1"], "has its own timings"),
]


@pytest.mark.parametrize(("args", "message"), RUN_REFUSED)
def test_run_refuses_what_it_cannot_run_before_starting_a_kernel(
    args: list[str],
    message: str,
    dmsnb_command: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    ran = dmsnb_command(*args, "-o", "out.ipynb")

    assert ran.status == 2
    assert message in ran.err
    assert not (tmp_path / "out.ipynb").exists()


def test_run_lists_a_runbooks_parameters(dmsnb_command: Any) -> None:
    ran = dmsnb_command("run", "delete", "--list-parameters")

    assert ran.status == 0
    assert "dry_run = True  # True: plan and show, send nothing" in ran.out
    assert "expected_count = None" in ran.out


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("True", True),
        ("False", False),
        ("None", None),
        ("2", 2),
        ("0.5", 0.5),
        ('["a", "b"]', ["a", "b"]),
        ('{"env": "prod"}', {"env": "prod"}),
        ("env=prod", "env=prod"),
        ("false", "false"),  # left as text: the runbook refuses it for a flag
    ],
)
def test_run_reads_parameter_values_like_python(text: str, value: object) -> None:
    assert cli.parse_value(text) == value


# -- dmsnb lab and dmsnb demo ----------------------------------------------------------


def test_lab_opens_the_quickstart_in_jupyterlab(dmsnb_command: Any) -> None:
    ran = dmsnb_command("lab", "--print-command", "--port", "8899", "--no-browser")

    assert ran.status == 0
    words = ran.out.split()
    assert words[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={REPO}" in words
    assert "--ServerApp.ip=127.0.0.1" in words
    assert "--ServerApp.port=8899" in words and "--no-browser" in words
    assert words[-1] == str(REPO / "notebooks" / "quickstart.ipynb")


def test_the_demo_runs_the_main_job(dmsnb_command: Any) -> None:
    ran = dmsnb_command(
        "demo",
        "--instances",
        "8",
        "--restart-seconds",
        "0.2",
        "--delete-seconds",
        "0.2",
    )

    assert ran.status == 0
    assert "restart: 3 instance(s), 3 success" in ran.out
    assert "The merged table, acted-on rows:" in ran.out
