"""The scheduler's state at rest: its dir and files private to its user, secret values sealed in
stoker.db (and its WAL), a state dir from before sealing migrated, secrets still reaching
containers after a restart."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import Cluster, make_cluster, running_cluster

VALUE = "at-r3st-v4lue-51c9"
PRIVATE_FILES = ("stoker.db", "secrets-key", "workspace-token", "cluster-secret")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _database_bytes(state_dir: Path) -> bytes:
    """stoker.db and its -wal, -shm and -journal files, as a copy of them would hold."""
    return b"".join(p.read_bytes() for p in state_dir.glob("stoker.db*"))


def _probe_value(cluster: Cluster, url: str) -> str:
    """What PROBE_VALUE a container of the probe app sees, on this run's ingress port."""
    host = urlsplit(url).hostname
    response = cluster.client.get(f"http://127.0.0.1:{cluster.http_port}/", headers={"host": f"{host}"})
    assert response.status_code == 200, response.text
    return str(response.json()["os_environ"].get("PROBE_VALUE"))


def test_the_state_dir_is_private_and_secret_values_are_sealed(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as cluster:
        made = cluster.stoker("secret", "create", "probe-secret", f"PROBE_VALUE={VALUE}")
        assert made.returncode == 0, made.stderr
        url = cluster.deploy("cluster_probe.py")["probe"]
        assert _probe_value(cluster, url) == VALUE
        state = cluster.state_dir
        assert _mode(state) == 0o700
        for name in (*PRIVATE_FILES, "stoker.db-wal", "stoker.db-shm"):  # the WAL's exist while it runs
            assert _mode(state / name) == 0o600, name
        assert VALUE.encode() not in _database_bytes(state)
        assert _mode(cluster.home / ".stoker") == 0o700
        assert _mode(cluster.home / ".stoker" / "config.json") == 0o600
        assert cluster.output is not None
        assert "open to other users" not in cluster.output.text()  # private from the start
    assert VALUE.encode() not in _database_bytes(state)


def _plaintext_state_dir(state: Path) -> None:
    """A state dir as stoker left it before secret values were sealed: modes from the umask, the
    value in plain JSON."""
    state.mkdir()
    state.chmod(0o755)
    db = sqlite3.connect(state / "stoker.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at REAL NOT NULL)")
    db.execute("INSERT INTO secrets VALUES ('probe-secret', ?, 1.0)", (json.dumps({"PROBE_VALUE": VALUE}),))
    db.commit()
    db.close()
    (state / "stoker.db").chmod(0o644)


def test_an_older_state_dir_is_migrated_and_its_secrets_survive_restarts(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    cluster.home.mkdir()
    _plaintext_state_dir(cluster.state_dir)
    assert VALUE.encode() in _database_bytes(cluster.state_dir)  # the premise: a copy showed it
    cluster.start()
    try:
        assert cluster.output is not None
        log = cluster.output.text()
        assert f"{cluster.state_dir} was mode 755, open to other users; made it 700" in log
        assert f"{cluster.state_dir / 'stoker.db'} was mode 644" in log
        assert "encrypted 1 secret(s) that an older stoker kept in plain text" in log
        listed = cluster.stoker("secret", "list")
        assert "probe-secret" in listed.stdout and "PROBE_VALUE" in listed.stdout, listed.stderr
        url = cluster.deploy("cluster_probe.py")["probe"]
        assert _probe_value(cluster, url) == VALUE
        assert VALUE.encode() not in _database_bytes(cluster.state_dir)
    finally:
        cluster.stop()

    cluster.start()  # the same state dir, now sealed: the deployed app's containers get the value
    try:
        assert _probe_value(cluster, url) == VALUE
        assert cluster.output is not None
        log = cluster.output.text()
        assert "encrypted" not in log and "open to other users" not in log  # nothing left to do
    finally:
        cluster.stop()
    assert _mode(cluster.state_dir) == 0o700
    assert all(_mode(cluster.state_dir / name) == 0o600 for name in PRIVATE_FILES)
    assert VALUE.encode() not in _database_bytes(cluster.state_dir)
