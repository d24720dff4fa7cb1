"""Layers unpacked into a root filesystem: hostile members (`../`, symlink and hard link escapes,
whiteouts through symlinks, symlink loops) write and delete nothing outside it; whiteouts and
opaque markers follow the layers' order; device nodes and ownership work as root and degrade,
without failing, inside a user namespace."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.registry_helpers import (
    Layer,
    char_device,
    directory,
    file,
    hardlink,
    make_layer,
    opaque,
    symlink,
    whiteout,
)
from worker.registry import BadLayer, UnsupportedImage
from worker.registry.unpack import LayerStats, unpack_layer

REPO = Path(__file__).resolve().parent.parent


def apply(tmp_path: Path, root: Path, *layers: Layer) -> list[LayerStats]:
    root.mkdir(exist_ok=True)
    found = []
    for number, layer in enumerate(layers, 1):
        blob = tmp_path / f"layer{number}"
        blob.write_bytes(layer.data)
        found.append(unpack_layer(blob, root, f"layer {number}"))
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root with a file a hostile layer would like to reach."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "important").write_text("keep me")
    return path


def untouched(outside: Path) -> bool:
    return os.listdir(outside) == ["important"] and (outside / "important").read_text() == "keep me"


@pytest.mark.parametrize("name", ["../outside/important", "a/../../outside/important", "./../x"])
def test_a_member_above_the_root_fails_the_layer(tmp_path: Path, outside: Path, name: str) -> None:
    with pytest.raises(BadLayer, match="points outside the image"):
        apply(tmp_path, tmp_path / "root", make_layer(file(name, "pwned")))
    assert untouched(outside)


def test_absolute_and_dotted_names_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply(tmp_path, root, make_layer(file("/etc/abs", "1"), file("./a/../rel", "2")))
    assert (root / "etc/abs").read_text() == "1" and (root / "rel").read_text() == "2"


def test_symlinks_are_followed_inside_the_root_only(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    apply(
        tmp_path,
        root,
        make_layer(
            symlink("abs", str(outside)),
            symlink("rel", "../" * 20 + str(outside).lstrip("/")),
            symlink("file-link", str(outside / "important")),
        ),
        make_layer(
            file("abs/important", "pwned"),
            file("rel/new", "pwned"),
            file("file-link", "replaces the link"),  # the link itself is replaced, not written through
            whiteout("abs/important"),  # a later whiteout through the link: the image's copy only
        ),
    )
    assert untouched(outside)
    inside = root / str(outside).lstrip("/")
    assert not (inside / "important").exists() and (inside / "new").read_text() == "pwned"
    assert not (root / "file-link").is_symlink() and (root / "file-link").read_text() == "replaces the link"


def test_whiteouts_and_opaque_markers_do_not_reach_outside(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    apply(
        tmp_path,
        root,
        make_layer(symlink("evil", str(outside)), symlink("up", "..")),
        make_layer(whiteout("evil/important"), opaque("evil"), opaque("up"), whiteout("up/outside")),
    )
    assert untouched(outside)


def test_hard_links_to_outside_fail_the_layer(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(BadLayer, match="points outside the image"):
        apply(tmp_path, tmp_path / "a", make_layer(hardlink("h", "../outside/important")))
    with pytest.raises(BadLayer, match="which is not a file in the image"):
        apply(tmp_path, tmp_path / "b", make_layer(symlink("out", str(outside)), hardlink("h", "out/important")))
    assert os.stat(outside / "important").st_nlink == 1
    assert untouched(outside)


def test_a_symlink_loop_fails_the_layer(tmp_path: Path) -> None:
    with pytest.raises(BadLayer, match="more than 40 symlinks"):
        apply(tmp_path, tmp_path / "root", make_layer(symlink("a", "b"), symlink("b", "a"), file("a/f", "x")))


def test_an_opaque_marker_keeps_what_its_own_layer_wrote_before_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply(
        tmp_path,
        root,
        make_layer(directory("d"), file("d/old", "1"), directory("d/sub"), file("d/sub/old", "1")),
        make_layer(file("d/new", "2"), file("d/sub2/new", "2"), opaque("d")),
    )
    assert sorted(os.listdir(root / "d")) == ["new", "sub2"]


def test_later_layers_replace_files_with_directories_and_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply(
        tmp_path,
        root,
        make_layer(file("was-file", "1"), directory("was-dir"), file("was-dir/x", "1")),
        make_layer(directory("was-file"), file("was-file/y", "2"), file("was-dir", "2")),
    )
    assert (root / "was-file/y").read_text() == "2" and (root / "was-dir").read_text() == "2"


def test_a_file_where_a_directory_is_needed_fails_the_layer(tmp_path: Path) -> None:
    with pytest.raises(BadLayer, match="needs /f to be a directory; it is a file"):
        apply(tmp_path, tmp_path / "root", make_layer(file("f", "1"), file("f/g", "2")))


def test_plain_tar_layers_unpack_and_garbage_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply(tmp_path, root, make_layer(file("plain", "p"), compress=False))
    assert (root / "plain").read_text() == "p"
    (tmp_path / "garbage").write_bytes(b"\x1f\x8b" + b"not really gzip" * 40)
    with pytest.raises(BadLayer, match="layer x is not a readable tar archive"):
        unpack_layer(tmp_path / "garbage", root, "layer x")


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is not None, reason="zstandard is installed here")
def test_zstd_layers_are_not_supported_yet_without_zstandard(tmp_path: Path) -> None:
    (tmp_path / "zstd").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    with pytest.raises(UnsupportedImage, match="zstd layers are not supported yet"):
        unpack_layer(tmp_path / "zstd", tmp_path, "layer z")


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and ownership need root")
def test_as_root_devices_are_made_and_owners_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    [stats] = apply(
        tmp_path, root, make_layer(char_device("dev/null", 1, 3), file("home/u/f", "x", uid=1234, gid=4321))
    )
    assert stat.S_ISCHR(os.lstat(root / "dev/null").st_mode) and os.lstat(root / "dev/null").st_rdev == os.makedev(1, 3)
    assert (os.stat(root / "home/u/f").st_uid, os.stat(root / "home/u/f").st_gid) == (1234, 4321)
    assert stats == LayerStats(members=2, devices_skipped=0, owners_kept_ours=0, xattrs_skipped=0)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_inside_a_user_namespace_devices_are_skipped_and_unmapped_owners_do_not_fail(tmp_path: Path) -> None:
    layer = make_layer(char_device("dev/null", 1, 3), file("home/u/f", "x", uid=1234, mode=0o4750), file("mine", "y"))
    (tmp_path / "layer").write_bytes(layer.data)
    script = textwrap.dedent(
        f"""
        import json, os, sys
        from pathlib import Path
        from worker.registry.unpack import unpack_layer
        root = Path({str(tmp_path / "root")!r})
        root.mkdir()
        stats = unpack_layer(Path({str(tmp_path / "layer")!r}), root, "layer 1")
        mode = os.stat(root / "home/u/f").st_mode & 0o7777
        print(json.dumps([stats.devices_skipped, stats.owners_kept_ours, os.path.lexists(root / "dev/null"), mode]))
        """
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"no user namespaces here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    devices_skipped, owners_kept_ours, device_exists, mode = json.loads(result.stdout)
    assert (devices_skipped, device_exists) == (1, False)
    assert owners_kept_ours == 1  # uid 1234 is not mapped in this namespace: the file stays ours, the layer goes on
    assert mode == 0o4750


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    info, data = file("bin/ping", "ping", mode=0o755)
    info.pax_headers = {"SCHILY.xattr.user.stoker-test": "kept"}
    root = tmp_path / "root"
    apply(tmp_path, root, make_layer((info, data)))
    assert os.getxattr(root / "bin/ping", "user.stoker-test") == b"kept"
