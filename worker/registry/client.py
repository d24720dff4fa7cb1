"""A client for one repository of a registry speaking the Docker Registry HTTP API v2: manifests by
tag or digest, blobs streamed to disk and checked against their digest."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from worker.registry.auth import authorize
from worker.registry.endpoint import Endpoint
from worker.registry.errors import AuthRefused, BadLayer, ImageNotFound, RegistryError, RegistryUnreachable
from worker.registry.manifest import ACCEPT

MAX_MANIFEST_BYTES = 4 << 20  # what containerd allows too
CHUNK = 1 << 20
TAGS_SHOWN = 10  # of a repository's tags, in the error for a tag it lacks


@dataclass(frozen=True)
class FetchedManifest:
    body: bytes
    content_type: str
    digest: str  # sha256 of body, as we computed it


class RegistryClient:
    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint, repository: str) -> None:
        self._session = session
        self._endpoint = endpoint
        self._repository = repository
        self._authorization: str | None = None  # kept for the rest of the pull once a challenge is answered

    async def manifest(self, reference: str, what: str) -> FetchedManifest:
        """The manifest `reference` (a tag or digest) names; `what` names it in messages."""
        async with self._get(f"manifests/{reference}", {"Accept": ACCEPT}, what) as response:
            body = await response.content.read(MAX_MANIFEST_BYTES + 1)
            content_type = response.headers.get("Content-Type", "")
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"the manifest of {what} is larger than {MAX_MANIFEST_BYTES} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise BadLayer(f"registry {self._endpoint.name} served a manifest for {what} whose digest is {digest}")
        return FetchedManifest(body, content_type, digest)

    async def blob(
        self, digest: str, size: int, destination: Path, what: str, progress: Callable[[int], None] | None = None
    ) -> None:
        """Blob `digest` of `size` bytes (as its descriptor says) written to `destination`, which
        exists only once its content matched; a registry sending more than `size` is cut off.
        `progress` is told the bytes received so far after each chunk."""
        partial = destination.with_name(f"{destination.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        hasher = hashlib.sha256()
        received = 0
        try:
            async with self._get(f"blobs/{digest}", {}, what) as response:
                with partial.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        received += len(chunk)
                        if 0 < size < received:
                            raise BadLayer(
                                f"registry {self._endpoint.name} sent more than {size} bytes for {digest} of {what}"
                            )
                        hasher.update(chunk)
                        out.write(chunk)
                        if progress is not None:
                            progress(received)
            got = "sha256:" + hasher.hexdigest()
            if got != digest:
                raise BadLayer(f"registry {self._endpoint.name} served blob {digest} of {what} with content {got}")
            partial.replace(destination)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryUnreachable(
                f"registry {self._endpoint.name} broke off sending {digest} of {what}: {exc or type(exc).__name__}"
            ) from None
        finally:
            partial.unlink(missing_ok=True)

    @asynccontextmanager
    async def _get(self, path: str, headers: dict[str, str], what: str) -> AsyncIterator[aiohttp.ClientResponse]:
        url = f"{self._endpoint.base_url}/v2/{self._repository}/{path}"
        for attempt in range(2):
            sent = dict(headers)
            if self._authorization:
                sent["Authorization"] = self._authorization
            try:
                response = await self._session.get(url, headers=sent)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise RegistryUnreachable(
                    f"cannot reach registry {self._endpoint.name} ({url}): {exc or type(exc).__name__}"
                ) from None
            try:
                if response.status == 401 and attempt == 0:
                    challenge = response.headers.get("WWW-Authenticate", "")
                    self._authorization = await authorize(
                        self._session,
                        challenge,
                        registry=self._endpoint.name,
                        repository=self._repository,
                        credentials=self._endpoint.credentials,
                    )
                    continue
                if response.status != 200:
                    raise await self._refusal(response, path, what)
                yield response
                return
            finally:
                response.release()

    async def _tags(self) -> list[str] | None:
        """A few of the repository's tags for an error message ([] when the registry will not
        say), or None when the registry says the repository does not exist."""
        url = f"{self._endpoint.base_url}/v2/{self._repository}/tags/list"
        headers = {"Authorization": self._authorization} if self._authorization else {}
        try:
            async with self._session.get(url, params={"n": str(TAGS_SHOWN + 1)}, headers=headers) as response:
                body = await response.content.read(1 << 16)
                if response.status == 404 and "NAME_UNKNOWN" in _error_codes(body)[0]:
                    return None
                tags = (json.loads(body).get("tags") or []) if response.status == 200 else []
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, AttributeError):
            return []
        shown = [str(tag) for tag in tags[:TAGS_SHOWN]]
        return [*shown, "…"] if len(tags) > TAGS_SHOWN else shown

    async def _refusal(self, response: aiohttp.ClientResponse, path: str, what: str) -> RegistryError:
        codes, detail = _error_codes(await response.content.read(1 << 16))
        registry, repository = self._endpoint.name, self._repository
        if response.status in (401, 403):
            if "NAME_UNKNOWN" in codes:
                return ImageNotFound(f"registry {registry} has no repository {repository} ({what})")
            who = f"as {self._endpoint.credentials.username!r}" if self._endpoint.credentials else "anonymously"
            return AuthRefused(
                f"registry {registry} refused to let us pull {repository} {who} "
                f"(HTTP {response.status}{': ' + detail if detail else ''}); "
                "if the image is private, configure credentials for this registry"
            )
        if response.status == 404:
            if "NAME_UNKNOWN" in codes:
                return ImageNotFound(f"registry {registry} has no repository {repository} ({what})")
            if path.startswith("manifests/"):
                known = await self._tags()
                if known is None:
                    return ImageNotFound(f"registry {registry} has no repository {repository} ({what})")
                hint = f"; it has {', '.join(known)}" if known else ""
                return ImageNotFound(
                    f"registry {registry} has no tag or digest {path.split('/', 1)[1]} in {repository} ({what}){hint}"
                )
            return ImageNotFound(f"registry {registry} is missing blob {path.split('/', 1)[1]} of {what}")
        if response.status == 429:
            return RegistryError(
                f"registry {registry} is rate-limiting pulls of {what}; try again later or use a mirror"
            )
        return RegistryError(
            f"registry {registry} answered HTTP {response.status} for {what}{': ' + detail if detail else ''}"
        )


def _error_codes(body: bytes) -> tuple[set[str], str]:
    """The `errors[].code`s of a registry's error body, and its first message."""
    try:
        errors = json.loads(body).get("errors") or []
        codes = {str(error.get("code")) for error in errors}
        return codes, str(errors[0].get("message", "")) if errors else ""
    except (ValueError, AttributeError, TypeError):
        return set(), ""
