"""Container images as the SDK records them (client/image.py): steps in order, files read when
the spec is made, Modal's options refused by name where stoker cannot honour them."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from client.exceptions import InvalidError
from client.image import Image, local_blob
from protos import stoker_pb2 as pb


def kinds(image: Image) -> list[str | None]:
    return [s.WhichOneof("kind") for s in image.to_proto().steps]


def test_each_method_records_one_step_in_order() -> None:
    image = (
        Image.debian_slim(python_version="3.12")
        .apt_install("jq", ["curl"])
        .pip_install("fastapi[standard]", ["numpy"], index_url="https://example.org/simple", pre=True)
        .uv_pip_install("six")
        .run_commands("echo a", ["echo b"])
        .env({"B": "2", "A": "1"})
        .workdir("/srv")
    )
    spec = image.to_proto()
    assert spec.base == "debian_slim" and spec.python_version == "3.12"
    assert kinds(image) == ["apt_install", "pip_install", "uv_pip_install", "run_commands", "env", "workdir"]
    assert list(spec.steps[0].apt_install.packages) == ["jq", "curl"]
    assert spec.steps[1].pip_install == pb.ImagePipInstall(
        packages=["fastapi[standard]", "numpy"], index_url="https://example.org/simple", pre=True
    )
    assert list(spec.steps[3].run_commands.commands) == ["echo a", "echo b"]
    assert dict(spec.steps[4].env.vars) == {"A": "1", "B": "2"}
    assert spec.steps[5].workdir == "/srv"


def test_debian_slim_without_a_python_version_leaves_it_empty() -> None:
    assert Image.debian_slim().to_proto().python_version == ""


def test_builders_return_new_images_and_leave_the_original_alone() -> None:
    base = Image.debian_slim()
    derived = base.pip_install("a").env({"A": "1"}).run_commands("true")
    assert base == Image.debian_slim()
    assert derived != base


def test_equal_recipes_make_equal_images() -> None:
    one = Image.debian_slim("3.11").pip_install("a").env({"B": "2", "A": "1"})
    two = Image.debian_slim("3.11").pip_install("a").env({"A": "1", "B": "2"})
    assert one == two
    assert hash(one) == hash(two)


def test_options_stoker_cannot_honour_are_refused_by_name() -> None:
    with pytest.raises(InvalidError, match=r"run_commands\(gpu=...\) is not supported yet"):
        Image.debian_slim().run_commands("nvidia-smi", gpu="A10G")
    with pytest.raises(InvalidError, match=r"pip_install\(secrets=...\) is not supported yet"):
        Image.debian_slim().pip_install("a", secrets=[object()])
    with pytest.raises(InvalidError, match=r"from_registry\(setup_dockerfile_commands=...\)"):
        Image.from_registry("python:3.12", setup_dockerfile_commands=["RUN true"])


def test_from_registry_is_recorded_with_its_python() -> None:
    spec = Image.from_registry("python:3.12-slim", add_python="3.12").pip_install("a").to_proto()
    assert (spec.base, spec.registry_ref, spec.add_python) == ("from_registry", "python:3.12-slim", "3.12")


def test_local_files_are_read_when_the_spec_is_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "sub" / "b.txt").write_text("b")
    (data / "c.log").write_text("ignored")
    image = Image.debian_slim().add_local_dir(data, "/data", ignore=["*.log"])
    first = image.to_proto().steps[0].add_files
    tar = tarfile.open(fileobj=io.BytesIO(local_blob(first.digest)))
    assert sorted(tar.getnames()) == ["data/a.txt", "data/sub", "data/sub/b.txt"]
    assert first.digest == "sha256:" + hashlib.sha256(local_blob(first.digest)).hexdigest()
    assert image.to_proto().steps[0].add_files.digest == first.digest  # the same files, the same tar
    (data / "a.txt").write_text("changed")
    assert image.to_proto().steps[0].add_files.digest != first.digest


def test_add_local_file_lands_at_its_remote_path(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    for remote, name in (("/etc/y.txt", "etc/y.txt"), ("/opt/", "opt/x.txt")):
        step = Image.debian_slim().add_local_file(tmp_path / "x.txt", remote).to_proto().steps[0]
        assert tarfile.open(fileobj=io.BytesIO(local_blob(step.add_files.digest))).getnames() == [name]


def test_a_missing_local_file_is_named_when_the_spec_is_made(tmp_path: Path) -> None:
    image = Image.debian_slim().add_local_file(tmp_path / "nope.txt", "/nope.txt")  # inside a container: fine
    with pytest.raises(InvalidError, match=r"nope\.txt.*does not exist"):
        image.to_proto()
    with pytest.raises(InvalidError, match="must be an absolute path"):
        Image.debian_slim().add_local_file(tmp_path / "nope.txt", "relative.txt")


def test_requirements_and_pyproject_are_read_into_the_step(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("humanize==4.9.0\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["a"]\n[project.optional-dependencies]\nx = ["b"]\n'
    )
    image = (
        Image.debian_slim()
        .pip_install_from_requirements(str(tmp_path / "requirements.txt"))
        .pip_install_from_pyproject(str(tmp_path / "pyproject.toml"), optional_dependencies=["x"])
    )
    steps = image.to_proto().steps
    assert steps[0].pip_install.requirements_txt == "humanize==4.9.0\n\n"
    assert list(steps[1].pip_install.packages) == ["a", "b"]
    with pytest.raises(InvalidError, match="no optional dependencies 'y'"):
        Image.debian_slim().pip_install_from_pyproject(str(tmp_path / "pyproject.toml"), ["y"]).to_proto()


def test_a_build_step_after_local_files_without_copy_is_refused_as_modal_does(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    image = Image.debian_slim().add_local_file(tmp_path / "x.txt", "/x.txt")
    with pytest.raises(InvalidError, match="copy=True"):
        image.run_commands("cat /x.txt")
    image.env({"A": "1"})  # not a build step
    Image.debian_slim().add_local_file(tmp_path / "x.txt", "/x.txt", copy=True).run_commands("cat /x.txt")
