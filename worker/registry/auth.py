"""Registry authentication as `docker pull` does it: ask anonymously, and on a 401 answer its
`WWW-Authenticate` challenge, with a Bearer token from the realm it names (sent the configured
credentials, if any) or with Basic credentials."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from worker.registry.config import Credentials
from worker.registry.endpoint import is_loopback
from worker.registry.errors import AuthRefused, RegistryError, RegistryUnreachable

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_MAX_TOKEN_RESPONSE = 1 << 20


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lowercased
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {match[1].lower(): match[2] if match[2] is not None else match[3] for match in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), {key: value.replace('\\"', '"') for key, value in params.items()})


def basic_authorization(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


async def authorize(
    session: aiohttp.ClientSession,
    challenge_header: str,
    *,
    registry: str,
    repository: str,
    credentials: Credentials | None,
) -> str:
    """The Authorization header value that answers `challenge_header` for pulling `repository`."""
    challenge = parse_challenge(challenge_header)
    if challenge.scheme == "basic":
        if credentials is None:
            raise AuthRefused(
                f"registry {registry} wants a user name and password for {repository}; none are configured for it"
            )
        return basic_authorization(credentials)
    if challenge.scheme != "bearer" or "realm" not in challenge.params:
        raise AuthRefused(
            f"registry {registry} asked for authentication stoker does not speak: {challenge_header!r:.200}"
        )
    return "Bearer " + await _fetch_token(session, challenge, registry, repository, credentials)


async def _fetch_token(
    session: aiohttp.ClientSession,
    challenge: Challenge,
    registry: str,
    repository: str,
    credentials: Credentials | None,
) -> str:
    realm = challenge.params["realm"]
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https"):
        raise AuthRefused(f"registry {registry} named a token server that is not an http(s) URL: {realm!r}")
    if parts.scheme == "http" and credentials is not None and not is_loopback(parts.netloc):
        raise AuthRefused(f"registry {registry} asked to send its credentials over plain http to {realm}; refused")
    query = {"scope": challenge.params.get("scope") or f"repository:{repository}:pull"}
    if "service" in challenge.params:
        query["service"] = challenge.params["service"]
    headers = {"Authorization": basic_authorization(credentials)} if credentials else {}
    try:
        async with session.get(realm, params=query, headers=headers) as response:
            body = await response.content.read(_MAX_TOKEN_RESPONSE)
            if response.status in (401, 403):
                who = f"the credentials of {credentials.username!r}" if credentials else "anonymous access"
                raise AuthRefused(f"the token server of registry {registry} ({realm}) refused {who} for {repository}")
            if response.status != 200:
                raise RegistryError(
                    f"the token server of registry {registry} ({realm}) answered HTTP {response.status}"
                )
            document = _json(body)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise RegistryUnreachable(f"cannot reach the token server of registry {registry} ({realm}): {exc}") from None
    token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"the token server of registry {registry} ({realm}) answered without a token")
    return token


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
