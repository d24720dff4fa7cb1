"""worker/runtime/isolation.py in a real interpreter: an "app" whose own path holds a package
named `grpc` (a stand-in for an image pinning another grpcio) next to the runtime's private
paths (stoker's source and this environment's site-packages, as for an image of the worker's
own Python). Each case runs in a fresh `python` (a second or so: it imports the runtime).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

from protos import container_env as cenv

STOKER_SOURCE = str(Path(__file__).resolve().parents[2])

PROBE = """
import json, sys
from worker.runtime import isolation
isolation.isolate()
import grpc as apps_grpc
import client.calls
import google.protobuf
runtime = vars(client.calls)  # a namespace of the runtime's: its imports are the runtime's
exec("import grpc; from grpc import _channel; import grpc.beta.implementations as beta", runtime)
exec("from grpc.beta import interfaces", runtime)
print(json.dumps({
    "apps": getattr(apps_grpc, "__version__", None),
    "apps_file": apps_grpc.__file__,
    "in_sys_modules": sys.modules["grpc"] is apps_grpc,
    "runtime": runtime["grpc"].__version__,
    "channel_is_runtimes": runtime["_channel"].__file__.startswith(runtime["grpc"].__path__[0]),
    "beta_loaded_privately": runtime["beta"].__name__ == "grpc.beta.implementations"
        and "grpc.beta.implementations" not in sys.modules and "grpc.beta.implementations" in isolation.hidden,
    "interfaces": runtime["interfaces"].__name__,
    "protos_hidden": "protos" not in sys.modules and "protos.stoker_pb2" in isolation.hidden,
    "protobuf_shared": google.protobuf is sys.modules["google.protobuf"] and "google.protobuf" not in isolation.hidden,
    "private_paths_left": [p for p in sys.path if p == %(source)r],
}))
"""


def run_probe(tmp_path: Path) -> dict[str, Any]:
    apps = tmp_path / "apps-site-packages"
    (apps / "grpc").mkdir(parents=True)
    (apps / "grpc" / "__init__.py").write_text('__version__ = "the app\'s"\n')
    private = os.pathsep.join([STOKER_SOURCE, *site.getsitepackages()])
    env = {k: v for k, v in os.environ.items() if not k.startswith(cenv.PREFIX)}
    env["PYTHONPATH"] = str(apps)  # the app's own path, first on sys.path as an image's site-packages is
    env[cenv.RUNTIME_PATH] = private
    env[cenv.RUNTIME_FALLBACK_PATH] = os.pathsep.join(site.getsitepackages())
    result = subprocess.run(
        [sys.executable, "-c", PROBE % {"source": STOKER_SOURCE}],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_the_app_gets_its_own_package_and_the_runtime_keeps_its_own(tmp_path: Path) -> None:
    got = run_probe(tmp_path)
    assert got["apps"] == "the app's"
    assert got["in_sys_modules"] is True
    assert got["runtime"] != "the app's" and got["runtime"][0].isdigit()
    # grpc's own lazy `from grpc import _channel`, run by the runtime, is the runtime's module.
    assert got["channel_is_runtimes"] is True
    # A submodule the runtime never imported before is loaded from its private path, into the
    # hidden modules, not into the app's sys.modules.
    assert got["beta_loaded_privately"] is True
    assert got["interfaces"] == "grpc.beta.interfaces"
    # stoker's generated code always leaves sys.modules; protobuf, which the app lacks, is shared.
    assert got["protos_hidden"] is True
    assert got["protobuf_shared"] is True
    assert got["private_paths_left"] == []
