"""`stoker run`: local entrypoints and functions run with their app live as an ephemeral app, and
the app references (`FILE::app`, `-m module`, package files) that serve, deploy and run take."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APPS, Cluster, stoker_command, stop_process, wait_until


def run(cluster: Cluster, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        stoker_command("run", *args),
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def program(cluster: Cluster, code: str) -> str:
    """What a Python program (not a run) prints, calling the cluster's functions."""
    result = subprocess.run(
        [sys.executable, "-c", "import client as modal\n" + code],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def ephemeral_apps(cluster: Cluster) -> list[str]:
    listing = cluster.stoker("app", "list")
    assert listing.returncode == 0, listing.stderr
    return [line for line in listing.stdout.splitlines() if " ephemeral " in line]


@pytest.fixture(scope="module")
def cluster(shared_cluster: Cluster) -> Cluster:
    return shared_cluster


def test_entrypoint_gets_typed_options_and_calls_its_app(cluster: Cluster) -> None:
    result = run(cluster, str(APPS / "run_entry.py"), "--x", "7", "--label", "sq", "--shout", "--ratio", "1.25")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SQ(7) = 49; WHOAMI: THE EPHEMERAL RUN; RATIO 2.5" in result.stdout.splitlines()
    assert ephemeral_apps(cluster) == []  # the run's app went with it


def test_entrypoint_help_lists_its_parameters(cluster: Cluster) -> None:
    result = run(cluster, str(APPS / "run_entry.py"), "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--x INTEGER", "--label TEXT", "--shout / --no-shout", "--ratio FLOAT"):
        assert option in result.stdout


def test_a_missing_required_option_is_a_usage_error(cluster: Cluster) -> None:
    result = run(cluster, str(APPS / "run_entry.py"), "--label", "sq")
    assert result.returncode == 2
    assert "Missing option '--x'" in result.stderr


def test_exit_codes_are_the_entrypoints(cluster: Cluster) -> None:
    exited = run(cluster, str(APPS / "run_entry.py"), "--x", "2", "--exit-code", "3")
    assert exited.returncode == 3, exited.stdout + exited.stderr
    assert "square(2) = 4; whoami: the ephemeral run; ratio 2.0" in exited.stdout
    failed = run(cluster, str(APPS / "run_entry.py"), "--x", "2", "--fail")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" in failed.stderr
    assert "RuntimeError: the entrypoint failed on purpose" in failed.stderr
    assert ephemeral_apps(cluster) == []


def test_a_function_reference_runs_it_remotely_and_prints_the_result(cluster: Cluster) -> None:
    result = run(cluster, f"{APPS / 'run_entry.py'}::square", "--x", "12")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "144" in result.stdout.splitlines()
    by_app = run(cluster, f"{APPS / 'run_entry.py'}::app.whoami")
    assert "the ephemeral run" in by_app.stdout.splitlines(), by_app.stdout + by_app.stderr


def test_an_unknown_name_lists_what_can_run(cluster: Cluster) -> None:
    result = run(cluster, f"{APPS / 'run_entry.py'}::nope")
    assert result.returncode == 1
    assert "has no function or local entrypoint 'nope'" in result.stderr
    assert "main / app.main" in result.stderr
    several = run(cluster, str(APPS / "run_two_apps.py"))
    assert several.returncode == 1
    assert "first_which / first.which" in several.stderr and "second_which / second.which" in several.stderr


def test_runs_reach_their_own_app_while_a_namesake_is_deployed(cluster: Cluster) -> None:
    cluster.deploy("run_namesake.py")
    try:
        result = run(cluster, str(APPS / "run_entry.py"), "--x", "5")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "square(5) = 25; whoami: the ephemeral run; ratio 2.0" in result.stdout.splitlines()
        # A program outside the run still reaches the deployed app by name.
        assert program(cluster, "print(modal.Function.from_name('run-entry', 'whoami').remote())") == (
            "the deployed namesake"
        )
    finally:
        assert cluster.stoker("app", "stop", "run-entry").returncode == 0


def test_file_app_reference_picks_the_app_variable(cluster: Cluster) -> None:
    for variable in ("second", "first"):
        result = cluster.stoker("deploy", f"{APPS / 'run_two_apps.py'}::{variable}")
        assert result.returncode == 0, result.stdout + result.stderr
    both = "print(*(modal.Function.from_name(a, 'which').remote() for a in ('run-first', 'run-second')))"
    assert program(cluster, both) == "first second"
    ran = run(cluster, f"{APPS / 'run_two_apps.py'}::second.which")
    assert "second" in ran.stdout.splitlines(), ran.stdout + ran.stderr
    missing = cluster.stoker("deploy", f"{APPS / 'run_two_apps.py'}::third")
    assert missing.returncode == 1
    assert "no App variable 'third'" in missing.stderr and "first, second" in missing.stderr


def test_module_of_a_package_runs_with_its_siblings(cluster: Cluster) -> None:
    result = run(cluster, "-m", "runpkg.app", "--name", "pkg", cwd=APPS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello pkg, from runpkg.helpers" in result.stdout.splitlines()


def test_a_package_file_deploys_as_a_module_of_its_package(cluster: Cluster) -> None:
    cluster.deploy("runpkg/app.py")
    hello = "print(modal.Function.from_name('run-pkg', 'hello').remote('d'))"
    assert program(cluster, hello) == "hello d, from runpkg.helpers"
    by_module = subprocess.run(
        stoker_command("deploy", "-m", "runpkg.app"),
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=APPS,
    )
    assert by_module.returncode == 0, by_module.stdout + by_module.stderr
    assert "Deployed -m runpkg.app as version 2." in by_module.stdout


def test_ctrl_c_stops_the_entrypoint_and_the_app(cluster: Cluster) -> None:
    process = subprocess.Popen(
        stoker_command("run", str(APPS / "run_interrupt.py")),
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "calling nap"

        def napping() -> bool:
            status = cluster.status()
            return any(c.app_name == "run-interrupt" and c.in_flight for c in status.containers)

        assert wait_until(napping, 60, interval=0.2)  # the entrypoint is waiting on .remote()
        assert [line for line in ephemeral_apps(cluster) if "run-interrupt" in line]
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        stop_process(process, signal.SIGKILL)
    assert process.returncode == 130, stderr  # 128 + SIGINT, as shells report an interrupted command
    assert "nap returned" not in stdout
    assert "Interrupted; the app is stopped." in stderr
    # Gone by the time the run has exited, not some time later.
    assert not [line for line in ephemeral_apps(cluster) if "run-interrupt" in line]
