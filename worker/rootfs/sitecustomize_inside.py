"""Bound read-only at /opt/stoker/code/sitecustomize.py in every container of an image, which has
/opt/stoker/code on its PYTHONPATH: so every Python process in the container (the runtime, and
the ones the app starts: a @web_server's server, a subprocess) finds the runtime's shared
packages (cenv.RUNTIME_FALLBACK_PATH: gRPC, FastAPI, ...) AFTER the image's own site-packages,
as `site` has set them up by the time it imports this module. Then the image's own
sitecustomize (Debian ships one), which this file shadows, runs as it would have.

No stoker import here: it runs first in every interpreter of the container.
"""

import importlib.machinery
import importlib.util
import os
import sys


def _append_fallback() -> None:
    for path in os.environ.get("STOKER_RUNTIME_FALLBACK_PATH", "").split(os.pathsep):
        if path and path not in sys.path:
            sys.path.append(path)


def _run_the_images_own() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    later = [p for p in sys.path if p and os.path.abspath(p) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", later)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # as site.py treats a failing sitecustomize: say so, go on
        import traceback

        print("Error in the image's sitecustomize; set PYTHONVERBOSE for traceback:", file=sys.stderr)
        traceback.print_exc()


_append_fallback()
_run_the_images_own()
