"""Proxy auth at the edge: `requires_proxy_auth=True` endpoints need a token's key and secret,
as `Modal-Key` + `Modal-Secret` headers or `Authorization: Bearer <key>.<secret>`.

The ingress holds only SHA-256 digests of the secrets, kept current by the scheduler's stream;
a request that fails gets 401 before anything is placed or started.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from protos import stoker_pb2 as pb

MISSING = (
    "This endpoint requires proxy auth: send the headers Modal-Key and Modal-Secret, or "
    "Authorization: Bearer <key>.<secret>, with a token from `stoker token create`."
)
_CREDENTIAL_HEADERS = frozenset({b"modal-key", b"modal-secret"})


class ProxyAuth:
    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}

    def update(self, edge: pb.EdgeConfig) -> None:
        self._digests = {t.key: t.secret_sha256 for t in edge.proxy_tokens}

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, bool]:
        """(why the request is refused, or None; whether its Authorization header was the
        credential, so that it is not passed on to the app)."""
        key = secret = bearer = ""
        for name, value in headers:
            if name == b"modal-key":
                key = value.decode("latin-1").strip()
            elif name == b"modal-secret":
                secret = value.decode("latin-1").strip()
            elif name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    bearer = rest.strip()
        used_bearer = False
        if not (key and secret) and bearer.startswith("wk-") and "." in bearer:
            key, _, secret = bearer.partition(".")
            used_bearer = True
        if not key or not secret:
            return MISSING, False
        expected = self._digests.get(key)
        if expected is None:
            return f"Proxy auth failed: no token has the key {key!r} (revoked, or never created).", False
        if not hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), expected):
            return f"Proxy auth failed: the secret does not match the token {key!r}.", False
        return None, used_bearer


def strip_credentials(headers: list[tuple[bytes, bytes]], bearer: bool) -> list[tuple[bytes, bytes]]:
    """The request's headers without the proxy credentials: the app never sees them."""
    return [(n, v) for n, v in headers if n not in _CREDENTIAL_HEADERS and not (bearer and n == b"authorization")]
