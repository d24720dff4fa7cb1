"""The environment variables a container is started with: a contract between the scheduler (which
puts some in StartContainer.env), the worker (which adds the rest), the container runtime and the
SDK code running inside it (which read them). One name each, here, so the four cannot drift.

A leaf module: everyone imports it, it imports nothing.
"""

from __future__ import annotations

# Set by the scheduler (StartContainer.env).
TOKEN = "STOKER_TOKEN"  # the container's call credential, good for function calls from its app only
ENVIRONMENT = "STOKER_ENVIRONMENT"  # the environment its app was deployed to
WEB_URLS = "STOKER_WEB_URLS"  # JSON {function name, or Class.method: URL} for the app's web endpoints
PARAMETERS = "STOKER_PARAMETERS"  # hex of a class instance's pb.Parameters; absent: the defaults
OPTIONS = "STOKER_OPTIONS"  # hex of the pool's pb.FunctionOverrides (with_options()); absent: none

# Set by the worker.
CONTAINER_ID = "STOKER_CONTAINER_ID"
APP_NAME = "STOKER_APP_NAME"
ENTRY = "STOKER_ENTRY"  # the app file, in the container's code bundle
FUNCTION = "STOKER_FUNCTION"  # which of the app's functions this container serves
BIND_HOST = "STOKER_BIND_HOST"  # where the container's gRPC server listens
ADVERTISE_HOST = "STOKER_ADVERTISE_HOST"  # how ingresses and the scheduler reach it
SCHEDULER = "STOKER_SCHEDULER"  # where the container's code sends function calls
# Where `*.localhost` names lead (client/localhost.py) in a container whose loopback is its own:
# its gateway, through which it reaches the ingresses of its worker's machine. Absent: 127.0.0.1.
LOCALHOST_ADDRESS = "STOKER_LOCALHOST_ADDRESS"
WORKDIR = "STOKER_WORKDIR"  # the image's workdir: the container runs there once its app is imported
READY_FD = "STOKER_READY_FD"  # a pipe on which the container writes its address once it serves
# Where the container runtime imports its own gRPC, protobuf and stoker modules from, apart from
# the app's packages (worker/runtime/isolation.py); and where the packages it shares with the app
# (FastAPI, pydantic...) are found when the image lacks them, after the image's own. os.pathsep-
# separated paths, as the container sees them.
RUNTIME_PATH = "STOKER_RUNTIME_PATH"
RUNTIME_FALLBACK_PATH = "STOKER_RUNTIME_FALLBACK_PATH"

# Read by every process that opens a channel to the scheduler; the worker passes it on.
TLS_CA = "STOKER_TLS_CA"  # a PEM file: when set, channels to the scheduler use TLS

PREFIX = "STOKER_"  # the worker's own STOKER_* settings never reach a container
