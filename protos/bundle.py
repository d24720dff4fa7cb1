"""Code bundles: a zip of the app's files, checked so that nothing lands outside its folder."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class BundleError(ValueError):
    """The bundle is malformed or would write outside its folder."""


def bundle_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bundle(data: bytes) -> list[zipfile.ZipInfo]:
    """The bundle's members, after refusing absolute paths, `..`, links and oversized content."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the code bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            corrupt = archive.testzip()  # reads every member: CRCs, compression, versions
    except Exception as exc:  # any failure to parse untrusted bytes means a bad bundle
        raise BundleError(f"the code bundle is not a valid zip file: {exc!r}") from None
    if corrupt is not None:
        raise BundleError(f"the code bundle is corrupt: {corrupt!r} fails its checksum")
    total = 0
    for m in members:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or m.filename.startswith(("/", "\\")) or ".." in path.parts or "\\" in m.filename:
            raise BundleError(f"the code bundle has a path that escapes its folder: {m.filename!r}")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise BundleError(f"the code bundle has a symbolic link, which is not allowed: {m.filename!r}")
        total += m.file_size
    if total > 4 * MAX_BUNDLE_BYTES:
        raise BundleError(f"the code bundle unpacks to {total} bytes; the limit is {4 * MAX_BUNDLE_BYTES}")
    return members


def extract_bundle(data: bytes, dest: Path) -> None:
    check_bundle(data)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(dest)
