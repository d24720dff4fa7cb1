"""Image layers unpacked, lowest first, into one root filesystem directory, as Docker applies them:
`.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` empties a directory of what the
layers below put there, and every path is resolved inside the root (a symlink to `/etc` means the
image's `/etc`), so a hostile layer cannot write outside it. Members that leave the root (`../x`)
fail the layer. Ownership is kept when we are root and the id exists in our user namespace; device
nodes are made where the kernel lets us, else skipped.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import importlib
import logging
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from worker.registry.errors import BadLayer, UnsupportedImage

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
XATTR_PREFIX = "SCHILY.xattr."
MAX_SYMLINK_HOPS = 40  # what Linux allows for one path
CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

Parts = tuple[str, ...]  # a path inside the root, one component each, no symlinks in it


@dataclass
class LayerStats:
    members: int = 0
    devices_skipped: int = 0
    owners_kept_ours: int = 0  # chown refused (an id our user namespace does not map): left as ours
    xattrs_skipped: int = 0


def unpack_layer(layer: Path, root: Path, what: str) -> LayerStats:
    """Apply the layer tarball `layer` (plain, gzip or zstd) on top of `root`; `what` names it in errors."""
    unpacker = _Unpacker(root, what)
    try:
        with _decompressed(layer, what) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                unpacker.apply(archive, member)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadLayer(f"{what} is not a readable tar archive: {exc}") from None
    unpacker.finish_directories()
    return unpacker.stats


@contextlib.contextmanager
def _decompressed(layer: Path, what: str) -> Iterator[IO[bytes]]:
    # The magic bytes decide, not the media type: registries and tools mislabel layers.
    with layer.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream  # type: ignore[misc]  # a GzipFile reads bytes like any IO[bytes]
        elif magic == _ZSTD_MAGIC:
            with _zstd_reader(raw, what) as stream:
                yield stream
        else:
            yield raw


@contextlib.contextmanager
def _zstd_reader(raw: IO[bytes], what: str) -> Iterator[IO[bytes]]:
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError:
        raise UnsupportedImage(
            f"{what} is zstd-compressed; zstd layers are not supported yet on this worker "
            "(install the zstandard package)"
        ) from None
    with zstandard.ZstdDecompressor().stream_reader(raw) as stream:
        yield stream


class _Unpacker:
    def __init__(self, root: Path, what: str) -> None:
        self.root = os.path.realpath(root)
        self.what = what
        self.stats = LayerStats()
        self.as_root = os.geteuid() == 0
        self.written: set[Parts] = set()  # what this layer made, and their parents: an opaque marker keeps them
        self.directories: list[tuple[Parts, tarfile.TarInfo]] = []  # modes and times set last

    def apply(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.stats.members += 1
        parts = self._inside(member.name, member.name)
        if not parts:
            return  # the root itself: it is ours, its mode stays
        *parent_parts, name = parts
        if name == OPAQUE_MARKER:
            self._make_opaque(tuple(parent_parts))
            return
        if name.startswith(WHITEOUT_PREFIX):
            self._white_out(tuple(parent_parts), name[len(WHITEOUT_PREFIX) :])
            return
        parent = self._resolve(tuple(parent_parts), member.name, create=True)
        assert parent is not None
        target = (*parent, name)
        path = self._path(target)
        self._clear(path, keep_directory=member.isdir())
        if member.isdir():
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            self._own(path, member)
            self._set_xattrs(path, member)
            self.directories.append((target, member))
        elif member.isreg():
            self._write_file(archive, member, path)
        elif member.issym():
            os.symlink(member.linkname, path)
            self._own(path, member)
            self._set_time(path, member)
        elif member.islnk():
            os.link(self._link_source(member), path, follow_symlinks=False)
        elif member.ischr() or member.isblk() or member.isfifo():
            if not self._make_node(member, path):
                return
        else:
            log.debug("%s: skipping %s of tar type %r", self.what, member.name, member.type)
            return
        self._mark_written(target)

    def _set_xattrs(self, target: str | int, member: tarfile.TarInfo) -> None:
        # File capabilities (`security.capability`, e.g. ping's cap_net_raw) travel as PAX xattrs.
        for key, value in member.pax_headers.items():
            if key.startswith(XATTR_PREFIX):
                try:
                    os.setxattr(target, key[len(XATTR_PREFIX) :], value.encode("utf-8", "surrogateescape"))
                except OSError:  # not allowed here (a user namespace) or not supported by this filesystem
                    self.stats.xattrs_skipped += 1

    def finish_directories(self) -> None:
        # Last, and deepest first, so a read-only directory did not stop its own contents being written.
        for target, member in reversed(self.directories):
            path = self._path(target)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    os.chmod(path, member.mode & 0o7777)
                    self._set_time(path, member)

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        source = archive.extractfile(member)
        assert source is not None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
            out.flush()  # before the time is set: a later write would move it
            self._own(out.fileno(), member)
            os.fchmod(out.fileno(), member.mode & 0o7777)  # after chown, which clears setuid bits
            self._set_xattrs(out.fileno(), member)  # after chown too, which clears file capabilities
            os.utime(out.fileno(), (member.mtime, member.mtime))

    def _make_node(self, member: tarfile.TarInfo, path: str) -> bool:
        try:
            if member.isfifo():
                os.mkfifo(path, 0o600)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        except PermissionError:
            self.stats.devices_skipped += 1  # no CAP_MKNOD here (a user namespace): the sandbox provides /dev
            return False
        self._own(path, member)
        os.chmod(path, member.mode & 0o7777)
        self._set_time(path, member)
        return True

    def _link_source(self, member: tarfile.TarInfo) -> str:
        *parent_parts, name = self._inside(member.linkname, member.name) or ("",)
        parent = self._resolve(tuple(parent_parts), member.name, create=False)
        source = self._path((*parent, name)) if parent is not None and name else ""
        if not source or not os.path.lexists(source) or stat.S_ISDIR(os.lstat(source).st_mode):
            raise BadLayer(
                f"{self.what}: hard link {member.name!r} points at {member.linkname!r}, "
                "which is not a file in the image"
            )
        return source

    def _white_out(self, parent_parts: Parts, name: str) -> None:
        parent = self._resolve(parent_parts, name, create=False)
        if parent is None or name in ("", ".", "..") or "/" in name:
            return
        self._remove(self._path((*parent, name)))

    def _make_opaque(self, parent_parts: Parts) -> None:
        parent = self._resolve(parent_parts, OPAQUE_MARKER, create=False)
        if parent is None:
            return
        with os.scandir(self._path(parent)) as entries:
            doomed = [entry.name for entry in entries if (*parent, entry.name) not in self.written]
        for name in doomed:
            self._remove(self._path((*parent, name)))

    def _inside(self, name: str, member: str) -> Parts:
        """`name` as components under the root; a leading '/' means the root, a '..' past it is hostile."""
        parts: list[str] = []
        for component in name.split("/"):
            if component in ("", "."):
                continue
            if component == "..":
                if not parts:
                    raise BadLayer(f"{self.what}: member {member!r} points outside the image ({name!r})")
                parts.pop()
            else:
                parts.append(component)
        return tuple(parts)

    def _resolve(self, parts: Parts, member: str, *, create: bool) -> Parts | None:
        """The directory `parts` names with every symlink followed inside the root, as a chroot would;
        missing directories are made when `create`, else the answer is None."""
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            component = pending.pop(0)
            if component in ("", "."):
                continue
            if component == "..":
                if resolved:
                    resolved.pop()  # clamped at the root, as the kernel does at a chroot's /
                continue
            path = self._path((*resolved, component))
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(path, 0o755)
                self._mark_written((*resolved, component))
                resolved.append(component)
                continue
            if stat.S_ISLNK(mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise BadLayer(f"{self.what}: member {member!r} goes through more than {MAX_SYMLINK_HOPS} symlinks")
                target = os.readlink(path)
                if target.startswith("/"):
                    resolved = []
                pending = target.split("/") + pending
                continue
            if not stat.S_ISDIR(mode):
                if not create:
                    return None
                raise BadLayer(
                    f"{self.what}: member {member!r} needs /{'/'.join((*resolved, component))} "
                    "to be a directory; it is a file"
                )
            resolved.append(component)
        return tuple(resolved)

    def _path(self, parts: Parts) -> str:
        return os.path.join(self.root, *parts)

    def _mark_written(self, parts: Parts) -> None:
        for end in range(len(parts), 0, -1):
            if parts[:end] in self.written:
                return
            self.written.add(parts[:end])

    def _clear(self, path: str, *, keep_directory: bool) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not (keep_directory and stat.S_ISDIR(mode)):
            self._remove(path)

    @staticmethod
    def _remove(path: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)  # never follows the symlinks inside
        else:
            os.unlink(path)

    def _own(self, target: str | int, member: tarfile.TarInfo) -> None:
        if not self.as_root:
            return
        try:
            if isinstance(target, int):
                os.fchown(target, member.uid, member.gid)
            else:
                os.chown(target, member.uid, member.gid, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EINVAL):
                raise
            self.stats.owners_kept_ours += 1

    @staticmethod
    def _set_time(path: str, member: tarfile.TarInfo) -> None:
        with contextlib.suppress(OSError):  # a time is a nicety; never fail a layer over one
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
