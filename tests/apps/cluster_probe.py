# Reports what a container can read of the cluster: its own exec-time environment block, its
# parent's (the fork template, for a forked container), os.environ, and every /proc/*/environ
# its user may read.
import os
from pathlib import Path

import modal

app = modal.App("cluster-probe")


def _read(path):
    try:
        return Path(path).read_bytes().decode(errors="replace")
    except OSError:
        return None


@app.function(secrets=[modal.Secret.from_name("probe-secret")])
@modal.fastapi_endpoint()
def probe():
    readable = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            text = _read(entry / "environ")
            if text is not None:
                readable[entry.name] = {"environ": text, "cmdline": _read(entry / "cmdline") or ""}
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "own": _read("/proc/self/environ"),
        "parent": _read(f"/proc/{os.getppid()}/environ"),
        "parent_cmdline": _read(f"/proc/{os.getppid()}/cmdline"),
        "os_environ": dict(os.environ),
        "readable": readable,
    }
