# Reports what a container sees of its sandbox and of the cluster: given host paths (the
# scheduler's state dir, the client's config, other containers' files...), whether it can read
# them; every environment block it can read; who it is; whether mount and unshare work.
import ctypes
import json
import os
import socket
import subprocess
from pathlib import Path

import modal

app = modal.App("sandbox-probe")
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000


def _read(path):
    try:
        return Path(path).read_bytes().decode(errors="replace")
    except OSError:
        return None


def _reach(path):
    """What of `path` this container can see: its listing or text, else None."""
    p = Path(path)
    try:
        if p.is_dir():
            return sorted(os.listdir(p))
        return p.read_bytes().decode(errors="replace")
    except OSError:
        return None


def _errno(result):
    return 0 if result == 0 else ctypes.get_errno()


def _run(*argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return {"code": done.returncode, "stderr": done.stderr.strip()}
    except OSError as exc:
        return {"code": None, "stderr": str(exc)}


@app.function(secrets=[modal.Secret.from_name("probe-secret")])
@modal.fastapi_endpoint()
def probe(paths: str = "[]"):
    environs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            environs[entry.name] = _read(entry / "environ")
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
        "pid1_cmdline": _read("/proc/1/cmdline"),
        "own_environ": _read("/proc/self/environ"),
        "environs": environs,
        "os_environ": dict(os.environ),
        "reached": {path: _reach(path) for path in json.loads(paths)},
        "root": sorted(os.listdir("/")),
        "dev": sorted(os.listdir("/dev")),
        "gpu_nodes": {name: _read(f"/dev/{name}") for name in os.listdir("/dev") if name.startswith("nvidia")},
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "mount_errno": _errno(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        "unshare_errno": _errno(libc.unshare(CLONE_NEWUSER)),
        "mount_cmd": _run("mount", "-t", "tmpfs", "none", "/mnt"),
        "unshare_cmd": _run("unshare", "-U", "true"),
        "cwd": os.getcwd(),
        "tmp": sorted(os.listdir("/tmp")),
        "write_tmp": Path("/tmp/probe").write_text("x") == 1,
        "write_etc": Path("/etc/probe-was-here").write_text("x") == 1,
    }


@app.function(gpu="A10G", scaledown_window=60)
@modal.fastapi_endpoint()
def gpu():
    return {
        "dev": sorted(os.listdir("/dev")),
        "gpu_nodes": {name: _read(f"/dev/{name}") for name in os.listdir("/dev") if name.startswith("nvidia")},
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
