"""The credential a container presents when its code calls functions.

Containers get neither a workspace token nor the cluster secret: either would let code running in
a container deploy apps or pose as a worker. Instead each gets `call.<app id>.<HMAC of the app id>`
under a key derived from the cluster secret, which the auth interceptor accepts only for the
function-call RPCs (CALL_METHODS). It survives scheduler restarts, since the key is derived, and
names the caller's app, so a `serve`d app's calls reach its own functions.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

PREFIX = "call."
CALL_METHODS = frozenset({"LookupFunction", "Call", "Spawn", "CallResult", "CancelCall", "CallGraph"})


def derive_key(cluster_secret: str) -> bytes:
    return hmac.new(cluster_secret.encode(), b"stoker container call credential", hashlib.sha256).digest()


def mint(key: bytes, app_id: str) -> str:
    return f"{PREFIX}{app_id}.{hmac.new(key, app_id.encode(), hashlib.sha256).hexdigest()}"


# Cached: the auth interceptor and then the servicer check the credential of every call, and a
# cluster has few of them (one per app).
@functools.lru_cache(maxsize=1024)
def verify(key: bytes, token: str) -> str | None:
    """The app id the credential was minted for, or None when it is not a valid one."""
    if not key or not token.startswith(PREFIX):
        return None
    app_id, _, _mac = token[len(PREFIX) :].rpartition(".")
    if not app_id or not hmac.compare_digest(mint(key, app_id), token):
        return None
    return app_id


def is_call_credential(token: str) -> bool:
    return token.startswith(PREFIX)
