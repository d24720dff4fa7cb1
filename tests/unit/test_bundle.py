"""Code bundles: refused when unsafe or malformed, extracted into their folder (protos/bundle.py)."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from protos.bundle import BundleError, bundle_hash, check_bundle, extract_bundle


def make_zip(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buf.getvalue()


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


GOOD = make_zip(("app.py", b"print('hi')\n"), ("pkg/__init__.py", b""), ("pkg/util.py", b"X = 1\n"))


def test_a_normal_zip_is_accepted_and_its_members_listed() -> None:
    names = [m.filename for m in check_bundle(GOOD)]
    assert names == ["app.py", "pkg/__init__.py", "pkg/util.py"]


def test_an_empty_zip_is_accepted() -> None:
    assert check_bundle(make_zip()) == []


@pytest.mark.parametrize("name", ["/etc/passwd", "/app.py", "\\windows\\evil.py"])
def test_absolute_paths_are_refused(name: str) -> None:
    with pytest.raises(BundleError, match="escapes its folder"):
        check_bundle(make_zip(("app.py", b""), (name, b"x")))


@pytest.mark.parametrize("name", ["../evil.py", "pkg/../../evil.py", "..", "a\\..\\..\\evil.py"])
def test_parent_directory_paths_are_refused(name: str) -> None:
    with pytest.raises(BundleError, match="escapes its folder"):
        check_bundle(make_zip(("app.py", b""), (name, b"x")))


def test_symbolic_links_are_refused() -> None:
    with pytest.raises(BundleError, match="symbolic link"):
        check_bundle(make_zip(("app.py", b""), symlink_entry("link", "/etc/passwd")))


def test_a_symbolic_link_inside_the_folder_is_refused_too() -> None:
    with pytest.raises(BundleError, match="symbolic link"):
        check_bundle(make_zip(("app.py", b""), symlink_entry("alias.py", "app.py")))


@pytest.mark.parametrize("data", [b"", b"not a zip file", b"PK\x03\x04garbage", GOOD[: len(GOOD) // 2]])
def test_non_zip_data_is_refused(data: bytes) -> None:
    with pytest.raises(BundleError, match="not a valid zip"):
        check_bundle(data)


def with_extract_version(data: bytes, version: int) -> bytes:
    """The zip with its central directory claiming a newer format than zipfile supports."""
    at = data.index(b"PK\x01\x02") + 6  # the central header's "version needed to extract" byte
    return data[:at] + bytes([version]) + data[at + 1 :]


def with_invalid_utf8_name(data: bytes, encoded_name: bytes) -> bytes:
    """The zip with a UTF-8-flagged name replaced by bytes that are not UTF-8."""
    return data.replace(encoded_name, b"\xff" * len(encoded_name))


def test_an_unsupported_zip_version_is_refused_as_a_bundle_error() -> None:
    with pytest.raises(BundleError):
        check_bundle(with_extract_version(make_zip(("app.py", b"x")), 68))


def test_a_member_name_that_is_not_utf8_is_refused_as_a_bundle_error() -> None:
    data = with_invalid_utf8_name(make_zip(("é.py", b"x")), "é".encode())
    with pytest.raises(BundleError):
        check_bundle(data)


def test_a_corrupt_member_is_refused_as_a_bundle_error(tmp_path: Path) -> None:
    data = make_zip(("app.py", b"print('hello')\n"))
    corrupt = data.replace(b"hello", b"HELLO")  # stored uncompressed, so the CRC no longer fits
    with pytest.raises(BundleError):
        extract_bundle(corrupt, tmp_path / "app")


def test_extract_bundle_writes_the_files_into_the_folder(tmp_path: Path) -> None:
    dest = tmp_path / "deep" / "app"
    extract_bundle(GOOD, dest)
    assert (dest / "app.py").read_bytes() == b"print('hi')\n"
    assert (dest / "pkg" / "util.py").read_bytes() == b"X = 1\n"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "app.py",
        "pkg",
        "pkg/__init__.py",
        "pkg/util.py",
    ]


def test_extract_bundle_refuses_before_writing_anything(tmp_path: Path) -> None:
    dest = tmp_path / "app"
    with pytest.raises(BundleError):
        extract_bundle(make_zip(("app.py", b""), ("../evil.py", b"x")), dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.py").exists()


def test_bundle_hash_is_the_sha256_of_the_bytes() -> None:
    assert bundle_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert bundle_hash(GOOD) == bundle_hash(bytes(GOOD))
    assert bundle_hash(GOOD) != bundle_hash(GOOD + b"\0")
