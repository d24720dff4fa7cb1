"""Container output: live in `stoker serve`, kept for `stoker app logs`, secrets hidden."""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import APPS, Cluster, LineReader, Serve, stoker_command, stop_process, wait_until

SECRET = "hush-hush-0451"  # the Secret.from_dict value in tests/apps/chatty.py


@pytest.fixture(scope="module")
def chatty(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("chatty.py")


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def logs_showing(cluster: Cluster, *wanted: str, timeout: float = 30) -> str:
    """`stoker app logs chatty` once its output contains every wanted text."""
    seen = ""

    def shows() -> bool:
        nonlocal seen
        result = cluster.stoker("app", "logs", "chatty")
        assert result.returncode == 0, result.stderr
        seen = result.stdout
        return all(text in seen for text in wanted)

    assert wait_until(shows, timeout=timeout, interval=0.5), seen
    return seen


class Follow:
    def __init__(self, cluster: Cluster, *args: str) -> None:
        self.process = subprocess.Popen(
            stoker_command("app", "logs", "chatty", "--follow", *args),
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self.output = LineReader(self.process.stdout)


def test_app_logs_show_printed_lines_with_function_and_container(
    shared_cluster: Cluster, chatty: dict[str, str]
) -> None:
    said = marker()
    assert shared_cluster.get(chatty["say"], params={"marker": said}).json() == {"said": said}
    output = logs_showing(shared_cluster, f"said {said}")
    line = next(line for line in output.splitlines() if f"said {said}" in line)
    assert "[say ct-" in line  # function and container id, after the time
    assert line[2] == ":" and line[5] == ":"


def test_app_logs_show_the_traceback_of_an_endpoint_that_raised(
    shared_cluster: Cluster, chatty: dict[str, str]
) -> None:
    failed = marker()
    assert shared_cluster.get(chatty["fail"], params={"marker": failed}).status_code == 500
    output = logs_showing(shared_cluster, f"ValueError: failing on purpose {failed}")
    assert "Traceback (most recent call last):" in output
    assert 'raise ValueError(f"failing on purpose {marker}")' in output


def test_tail_limits_the_recent_lines(shared_cluster: Cluster, chatty: dict[str, str]) -> None:
    said = marker()
    shared_cluster.get(chatty["say"], params={"marker": said})
    logs_showing(shared_cluster, f"said {said}")
    result = shared_cluster.stoker("app", "logs", "chatty", "--tail", "1")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_follow_prints_lines_printed_after_it_started(shared_cluster: Cluster, chatty: dict[str, str]) -> None:
    before = marker()
    shared_cluster.get(chatty["say"], params={"marker": before})
    logs_showing(shared_cluster, f"said {before}")
    follow = Follow(shared_cluster, "--tail", "1")
    try:
        follow.output.wait_for(lambda line: "[" in line, timeout=30)  # the recent line: it is connected
        after = marker()
        assert shared_cluster.get(chatty["say"], params={"marker": after}).status_code == 200
        follow.output.wait_for(lambda line: f"said {after}" in line, timeout=30)
        assert follow.process.poll() is None  # still following
    finally:
        assert stop_process(follow.process, signal.SIGINT) == 0
    assert "Traceback" not in follow.output.text()  # Ctrl-C ends it quietly


def test_a_printed_secret_value_is_redacted_everywhere(shared_cluster: Cluster, chatty: dict[str, str]) -> None:
    assert shared_cluster.get(chatty["leak"]).status_code == 200
    output = logs_showing(shared_cluster, "the secret is ***!")
    assert SECRET not in output
    assert shared_cluster.output is not None
    assert "the secret is ***!" in shared_cluster.output.text()  # the worker's own log, too
    assert SECRET not in shared_cluster.output.text()


def test_an_unknown_app_is_a_clear_error(shared_cluster: Cluster) -> None:
    result = shared_cluster.stoker("app", "logs", "no-such-app")
    assert result.returncode == 1
    assert "no running app named 'no-such-app'" in result.stderr
    assert "stoker app list" in result.stderr
    elsewhere = shared_cluster.stoker("app", "logs", "chatty", "--env", "other")
    assert elsewhere.returncode == 1
    assert "in environment 'other'" in elsewhere.stderr


def test_without_a_token_the_cli_says_how_to_get_one(shared_cluster: Cluster) -> None:
    env = {**shared_cluster.env, "HOME": "/nonexistent", "STOKER_TOKEN": ""}
    result = subprocess.run(
        stoker_command("app", "logs", "chatty"), env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "workspace token" in result.stderr
    assert "stoker up" in result.stderr


def test_follow_ends_when_the_app_is_stopped(shared_cluster: Cluster, tmp_path: Path) -> None:
    app_file = tmp_path / "shortlived.py"
    app_file.write_text((APPS / "chatty.py").read_text().replace('App("chatty")', 'App("shortlived")'))
    url = shared_cluster.deploy(app_file)["say"]
    said = marker()
    shared_cluster.get(url, params={"marker": said})
    follow = subprocess.Popen(
        stoker_command("app", "logs", "shortlived", "-f"),
        env=shared_cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    output = LineReader(follow.stdout)
    try:
        output.wait_for(lambda line: f"said {said}" in line, timeout=30)
        assert shared_cluster.stoker("app", "stop", "shortlived").returncode == 0
        assert follow.wait(30) == 0
    finally:
        stop_process(follow, signal.SIGKILL)


def test_serve_prints_its_containers_output_live(shared_cluster: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "project"  # alone in its folder: nothing else there triggers a reload
    folder.mkdir()
    shutil.copy(APPS / "chatty.py", folder / "chatty.py")
    serve = Serve(folder / "chatty.py", shared_cluster.env)
    try:
        url = serve.url("say")
        said = marker()
        assert shared_cluster.get(url, params={"marker": said}).json() == {"said": said}
        line = serve.output.wait_for(lambda line: f"said {said}" in line, timeout=30)
        assert "[say ct-" in line
        failed = marker()
        assert shared_cluster.get(url.replace("-say-", "-fail-"), params={"marker": failed}).status_code == 500
        serve.output.wait_for(lambda line: f"ValueError: failing on purpose {failed}" in line, timeout=30)
        assert shared_cluster.get(url.replace("-say-", "-leak-")).status_code == 200
        serve.output.wait_for(lambda line: "the secret is ***!" in line, timeout=30)
        assert serve.process.poll() is None
    finally:
        assert serve.stop(signal.SIGINT) == 0
    assert SECRET not in serve.output.text()
    assert "Stopped serving; the app is gone." in serve.output.text()
