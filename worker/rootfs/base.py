"""The base layer of debian_slim images: a minimal Debian root filesystem from Debian's archive
(mmdebstrap --variant=minbase, in a user namespace), with Python, pip and CA certificates."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from worker.rootfs.inside import Inside, run_inside
from worker.rootfs.process import ImageBuildError, Output, run

# The suites debian_slim builds from, by the Python version their python3 package has.
SUITES = {"3.11": "bookworm", "3.13": "trixie"}
DEFAULT_SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
# pip installs into the image as root, as on Modal's images: Debian's "externally managed" marker
# goes; and `python` is python3.
_CUSTOMIZE = 'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED && ln -sf /usr/bin/python3 "$1"/usr/local/bin/python'
PROBE = "import platform; print(platform.python_version())"


def suite_for(python_version: str) -> str:
    """The suite whose own python3 is `python_version` ("3.13.1" -> trixie), else the default
    one, on which another Python is installed (worker/rootfs/python.py)."""
    return SUITES.get(".".join(python_version.split(".")[:2]), DEFAULT_SUITE)


def base_step(suite: str) -> str:
    """What names the base layer: its suite and packages (and how it was made)."""
    return f"debian {suite} minbase {','.join(PACKAGES)} v1"


async def build_base(suite: str, tree: Path, scratch: Path, emit: Output, mirror: str = "") -> dict[str, str]:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageBuildError("mmdebstrap is not installed on this worker: `apt-get install mmdebstrap uidmap`")
    argv = [
        mmdebstrap,
        "--variant=minbase",
        "--mode=unshare",
        "--include=" + ",".join(PACKAGES),
        f"--customize-hook={_CUSTOMIZE}",
        suite,
        str(tree),
    ]
    if mirror:
        argv.append(mirror)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOKER_")}
    await run(argv, emit, env=env, what=f"mmdebstrap {suite}")
    probe = scratch / "probe"  # an upper that is thrown away: the probe changes nothing
    probe.mkdir()
    version = await run_inside(Inside(lower=[tree]), probe, scratch, ["python3", "-c", PROBE], lambda _: None)
    return {"python": "/usr/bin/python3", "python_version": version.strip().splitlines()[-1]}
