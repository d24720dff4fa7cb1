"""Run a build command as root inside an image, writing into the layer being built."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from worker.rootfs.enter import Enter
from worker.rootfs.process import Output, run
from worker.sandbox.spec import Bind

STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = "/tmp/.stoker/host-ca.crt"
# What a build step may take from the worker's environment: how to reach the network.
_PASSED = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy", "ALL_PROXY")
_CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass
class Inside:
    """The image so far, as the next step sees it."""

    lower: list[Path]  # its layers, lowest first
    env: dict[str, str] = field(default_factory=dict)  # from its env steps
    workdir: str = "/"
    python: str = "/usr/bin/python3"

    def copy(self) -> Inside:
        return Inside(lower=list(self.lower), env=dict(self.env), workdir=self.workdir, python=self.python)


def build_environment(env: dict[str, str]) -> dict[str, str]:
    """A build step's environment: the image's, never the worker's (whose STOKER_* settings hold
    the cluster secret), but for the proxies to the network and the host's CA bundle, which the
    host network may need (a TLS-inspecting egress proxy)."""
    base = {"PATH": STANDARD_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    base.update({k: v for k, v in os.environ.items() if k in _PASSED})
    if host_ca_bundle():
        base.update(dict.fromkeys(_CA_VARIABLES, HOST_CA_BUNDLE))
    return {**base, **env}


def host_ca_bundle() -> str:
    path = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return path if os.path.isfile(path) else ""


async def run_inside(
    inside: Inside,
    tree: Path,
    scratch: Path,
    program: list[str],
    emit: Output,
    *,
    binds: Sequence[Bind] = (),
    env: dict[str, str] | None = None,
    what: str = "",
) -> str:
    """Run `program` inside the image (its layers, `tree` on top receiving the changes);
    `scratch` is an empty directory beside `tree` for the mount's own needs."""
    work, root = scratch / "work", scratch / "root"
    for directory in (work, root):
        directory.mkdir(exist_ok=True)
    mounts = list(binds)
    if ca := host_ca_bundle():
        mounts.append(Bind(ca, HOST_CA_BUNDLE))
    spec = Enter(
        lower=[str(p) for p in inside.lower],
        upper=str(tree),
        work=str(work),
        root=str(root),
        cwd=inside.workdir,
        binds=mounts,
    )
    environment = build_environment({**inside.env, **(env or {})})
    return await run(spec.argv(program), emit, env=environment, what=what or " ".join(program))
