"""Functions that meet their cgroup limits: memory past its limit, their own cgroup, processes
past the pids limit (tests/test_cgroups.py)."""

import json
import subprocess
import sys

import modal

import identity

app = modal.App("cgroup-limits")

MIB = 1024 * 1024


@app.function(memory=(128, 256), max_containers=1)
def hog(mib: int) -> int:
    """Hold `mib` MiB, written (so that the pages are really there), one MiB at a time."""
    held = [b"\x01" * MIB for _ in range(mib)]
    return len(held)


@app.function(cpu=(0.5, 1.5), memory=(64, 300))
def own_cgroup() -> dict[str, str]:
    """/proc/self/cgroup, as {controllers: path}, and this process (identity.pid())."""
    lines = open("/proc/self/cgroup").read().split("\n")
    found = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines if line}
    return {**found, "pid": identity.pid()}


# Runs in a plain interpreter of its own: forking from the container's process, where gRPC's
# threads run, would meet gRPC's fork handlers at the moment the kernel refuses.
SPAWN_UNTIL_REFUSED = """
import errno, json, subprocess, sys
children, refused = [], ""
try:
    while len(children) < int(sys.argv[1]):
        try:
            children.append(subprocess.Popen(["sleep", "60"]))
        except OSError as exc:
            refused = errno.errorcode.get(exc.errno or 0, str(exc))
            break
finally:
    for child in children:
        child.kill()
        child.wait()
print(json.dumps({"started": len(children), "refused": refused}))
"""


@app.function()
def spawn_until_refused(bound: int) -> dict[str, object]:
    """Start sleeping children until the kernel refuses one (at most `bound`), then end them."""
    done = subprocess.run(
        [sys.executable, "-c", SPAWN_UNTIL_REFUSED, str(bound)], capture_output=True, text=True, timeout=60
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result
