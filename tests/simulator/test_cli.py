"""``python -m dmsnb.simulator`` as its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from dmsnb import _api
from dmsnb._signing import AKSKAuth
from dmsnb.simulator.__main__ import build_parser, simulator_from_args

ROOT = Path(__file__).resolve().parents[2]
AK = "CLITESTAK00000000001"
SK = "cli-secret-Zq8w3Kx1Vb7Nm2Lp5Rt9Yh4Gf6Ds0Aj"
PROJECT_ID = "5f0e2c9a7b4d4e1f8a3c6b9d2e7f1a40"


def run_simulator(*extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "dmsnb.simulator", "--port", "0"]
    command += ["--ak", AK, "--sk", SK, "--project-id", PROJECT_ID]
    command += ["--instances", "12", "--seed", "5", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(process: subprocess.Popen[str], timeout: float = 20) -> str:
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(stdout.readline()), daemon=True
    )
    reader.start()
    reader.join(timeout)
    assert lines, "the simulator printed no base URL"
    return lines[0].strip()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serves_until_a_signal_and_never_prints_the_secret(
    stop: signal.Signals,
) -> None:
    child = run_simulator()
    try:
        base_url = first_line(child)
        assert base_url.startswith("http://127.0.0.1:")
        auth = AKSKAuth(AK, SK, PROJECT_ID)
        with httpx.Client(base_url=base_url, auth=auth) as client:
            response = client.get(
                _api.instances_path("v2", PROJECT_ID), params={"engine": "kafka"}
            )
        assert response.status_code == 200
        assert response.json()["instance_num"] <= 12
        child.send_signal(stop)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0
    assert out == ""  # nothing after the base URL
    assert PROJECT_ID in err
    assert "12 instances" in err
    assert SK not in base_url + out + err


def test_a_non_loopback_host_is_refused() -> None:
    child = run_simulator("--host", "0.0.0.0")
    out, err = child.communicate(timeout=20)
    assert child.returncode == 2
    assert out == ""
    assert "127.0.0.1" in err
    assert SK not in err


def test_the_parser_builds_the_simulator_it_describes() -> None:
    argv = "--instances 9 --seed 4 --restart-seconds 0.5 --delete-seconds 0.25"
    args = build_parser().parse_args([*argv.split(), "--recycle-bin", "--errors", "2"])
    sim = simulator_from_args(args)
    assert len(sim.fleet) == 9
    assert sim.fleet.timings.restart_seconds == 0.5
    assert sim.fleet.timings.delete_seconds == 0.25
    assert sim.fleet.timings.recycle_bin
    assert list(sim.fleet.statuses().values()).count("ERROR") == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--restart-seconds", "-1"])
