"""The warm path's FastAPI hello served by Ray Serve, for bench/ray_serve.py.

    bench/.ray-venv/bin/python bench/apps/ray_hello.py --port N --temp-dir DIR [--num-cpus 1]

Runs in Ray's own virtual environment (bench/ray_serve.py creates it), not stoker's. Starts a
private local Ray cluster (never one found on the machine) bound to 127.0.0.1, deploys one
replica of a `@serve.deployment` wrapping a FastAPI app with the same handler as
bench/apps/warm_app.py, serves it on 127.0.0.1:N, and on SIGTERM or SIGINT shuts Serve and
Ray down, which stops every process Ray started.
"""

from __future__ import annotations

import argparse
import signal
import threading

import ray
from fastapi import FastAPI
from ray import serve

MAX_ONGOING_REQUESTS = 256  # warm_app.py's @modal.concurrent(max_inputs=256)
QUIET = {"log_level": "WARNING", "enable_access_log": False}  # stoker's daemons log at warning too

app = FastAPI(title="hello", docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(num_replicas=1, max_ongoing_requests=MAX_ONGOING_REQUESTS, logging_config=QUIET)
@serve.ingress(app)
class Hello:
    @app.get("/")
    def hello(self) -> str:
        return "Hello world!"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="HTTP port on 127.0.0.1")
    parser.add_argument("--temp-dir", required=True, help="Ray's session files and logs (a short path)")
    parser.add_argument("--num-cpus", type=int, default=1, help="logical CPUs Ray schedules on")
    args = parser.parse_args()
    stop = threading.Event()
    ray.init(
        address="local",  # a cluster of our own, even if `ray start` left one running
        num_cpus=args.num_cpus,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,  # nothing goes through it; Ray's default is 30% of RAM
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=args.temp_dir,
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port}, logging_config=QUIET)
        serve.run(Hello.bind(), logging_config=QUIET)
        # Installed after Ray's start so its own handlers do not replace it.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
