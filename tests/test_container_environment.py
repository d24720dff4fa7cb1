"""Nothing of the cluster in a container's environment: neither the cluster secret nor the
workspace token is in its own environment block, its os.environ, its fork template's block, or
any other environment block it can read, except the cluster's own daemons' (below); its own
secrets and its call credential are there.

Known gap, without a sandbox (these clusters run with `--insecure-no-sandbox`, whose containers
must still be given nothing of the cluster; tests/test_sandbox.py covers sandboxed ones, the
default, whose PID namespace shows no daemon): a container runs as the worker's user, so it can read
/proc/<pid>/environ of the worker and ingress, which hold the cluster secret
(STOKER_CLUSTER_SECRET is how `stoker up` hands it to them). The test checks that only those
daemons show it, and does not pretend they do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, running_cluster

OWN_VALUE = "own-s3cret-6b1d"
DAEMONS = {"scheduler", "worker", "ingress", "up"}


def _is_daemon(cmdline: str) -> bool:
    """A `python -m client <daemon>` process: one of the cluster's own, which hold its secret."""
    argv = cmdline.split("\0")
    return argv[1:3] == ["-m", "client"] and len(argv) > 3 and argv[3] in DAEMONS


def _probe(cluster: Cluster) -> dict[str, Any]:
    made = cluster.stoker("secret", "create", "probe-secret", f"PROBE_VALUE={OWN_VALUE}")
    assert made.returncode == 0, made.stderr
    response = cluster.get(cluster.deploy("cluster_probe.py")["probe"])
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh-interpreter"])
def test_a_container_finds_nothing_of_the_cluster_in_environments(tmp_path: Path, fork: bool) -> None:
    env = {"STOKER_INSECURE_NO_SANDBOX": "1", **({} if fork else {"STOKER_WORKER_FORK": "0"})}
    with running_cluster(tmp_path, **env) as cluster:
        cluster_secret = (cluster.state_dir / "cluster-secret").read_text().strip()
        workspace_token = (cluster.state_dir / "workspace-token").read_text().strip()
        found = _probe(cluster)
    hidden = (cluster_secret, workspace_token)

    # Its own: the secrets it was given and the call credential, nothing of the cluster.
    env = found["os_environ"]
    assert env["PROBE_VALUE"] == OWN_VALUE
    assert env["STOKER_TOKEN"].startswith("call.")
    assert "STOKER_CLUSTER_SECRET" not in env
    assert not any(value in hidden for value in env.values())
    assert found["own"] is not None
    assert not any(h in found["own"] for h in hidden)
    assert "STOKER_CLUSTER_SECRET" not in found["own"]

    if fork:
        # Its exec-time block is its template's; the template was started without the cluster.
        assert "worker.runtime.template" in found["parent_cmdline"]
        assert found["parent"] is not None
        assert not any(h in found["parent"] for h in hidden)
        assert OWN_VALUE not in found["own"]  # the template's block: no container's secrets
    else:
        assert OWN_VALUE in found["own"]  # a fresh interpreter's block is its own environment
        assert _is_daemon(found["parent_cmdline"])  # its parent is the worker: the known gap above

    # Every block it can read: the workspace token in none; the cluster secret only in the
    # cluster's daemons (the known gap above), never in a template or a container.
    readable = found["readable"]
    assert str(found["pid"]) in readable and str(found["ppid"]) in readable  # the scan saw them
    holders = {pid: p["cmdline"] for pid, p in readable.items() if cluster_secret in p["environ"]}
    assert all(_is_daemon(cmdline) for cmdline in holders.values()), holders
    assert [pid for pid, p in readable.items() if workspace_token in p["environ"]] == []
