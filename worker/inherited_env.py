"""What a process the worker starts for an app (a fork template, a container, an image build
command) inherits of the worker's own environment: an allow-list, not the worker's environment
minus a few names.

The worker holds the cluster secret (STOKER_CLUSTER_SECRET) and its other STOKER_* settings in its
environment, and whatever its operator's shell exported. A child's exec-time environment block
stays readable in /proc/<pid>/environ for its whole life, even after it replaces os.environ, and
a forked container inherits its template's. So nothing the worker starts for an app gets more than
an interpreter and its libraries need to run on this machine; everything else a container sees is
set for it on purpose (protos/container_env.py, its secrets, its image's .env()).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from protos import container_env as cenv

# Finding programs and libraries, who and where the user is, locale and time zone, the CA
# bundles and proxies of this machine (apps reach the outside world as its other programs do),
# and the CA that channels to the scheduler trust.
INHERITED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "TMPDIR",
        "TZ",
        "LANG",
        "LANGUAGE",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        cenv.TLS_CA,
    }
)
# Locale categories; the interpreter's own settings (PYTHONPATH, PYTHONDONTWRITEBYTECODE…); gRPC's
# (GRPC_EXPERIMENTS, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH…), which the container's channels read too.
INHERITED_PREFIXES = ("LC_", "PYTHON", "GRPC_")


def inherited_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of `source` (default: the worker's os.environ) that a child may inherit."""
    source = os.environ if source is None else source
    return {k: v for k, v in source.items() if k in INHERITED_NAMES or k.startswith(INHERITED_PREFIXES)}
