"""Image ids and spec checks (scheduler/image_spec.py), and how the worker matches a python_version."""

from __future__ import annotations

import pytest

from client.image import Image
from protos import stoker_pb2 as pb
from protos.image_steps import steps_of
from scheduler.image_spec import ImageSpecError, check_python_version, check_spec, image_id
from worker.images import version_matches


def spec(**fields: object) -> pb.ImageSpec:
    return pb.ImageSpec(base="debian_slim", **fields)  # type: ignore[arg-type]


def test_the_same_spec_always_has_the_same_id() -> None:
    a = Image.debian_slim("3.11").pip_install("inflection", "six").env({"A": "1"}).run_commands("echo hi")
    b = Image.debian_slim("3.11").pip_install(["inflection", "six"]).env({"A": "1"}).run_commands(["echo hi"])
    assert image_id(a.to_proto()) == image_id(b.to_proto())
    assert image_id(a.to_proto()).startswith("im-")


def test_the_id_does_not_depend_on_the_process() -> None:
    # A fixed value: scheduler and workers run in different processes (and hash seeds), and a
    # change of scheme would rebuild every worker's images.
    assert image_id(spec(pip_packages=["inflection==0.5.1"])) == "im-daaecb1aca604033f58b"
    assert image_id(pb.ImageSpec()) == image_id(spec())  # an empty base means debian_slim


def test_pip_order_and_command_order_count() -> None:
    assert image_id(spec(pip_packages=["a", "b"])) != image_id(spec(pip_packages=["b", "a"]))
    assert image_id(spec(commands=["x", "y"])) != image_id(spec(commands=["y", "x"]))


def test_env_order_does_not_count_but_its_values_do() -> None:
    one = spec(env={"A": "1", "B": "2"})
    two = pb.ImageSpec(base="debian_slim")
    two.env["B"] = "2"
    two.env["A"] = "1"
    assert image_id(one) == image_id(two)
    assert image_id(one) != image_id(spec(env={"A": "1", "B": "3"}))


def test_every_field_changes_the_id() -> None:
    base = image_id(spec(pip_packages=["a"]))
    assert base != image_id(spec(pip_packages=["a"], python_version="3.11"))
    assert base != image_id(spec(pip_packages=["a==1"]))
    assert base != image_id(spec(pip_packages=["a"], commands=["true"]))


@pytest.mark.parametrize("version", ["", "3.11", "3.12", "3.11.7"])
def test_python_versions_that_are_accepted(version: str) -> None:
    check_python_version(version)


@pytest.mark.parametrize("version", ["3", "3.x", "python3.11", "3.11.7.1", "2.7", " 3.11"])
def test_python_versions_that_are_refused_name_themselves(version: str) -> None:
    with pytest.raises(ImageSpecError, match="python_version") as caught:
        check_python_version(version)
    assert repr(version) in str(caught.value)


def test_version_matches_by_the_parts_given() -> None:
    assert version_matches("", (3, 11, 7))
    assert version_matches("3.11", (3, 11, 7))
    assert version_matches("3.11.7", (3, 11, 7))
    assert not version_matches("3.11.6", (3, 11, 7))
    assert not version_matches("3.12", (3, 11, 7))


def test_check_spec_refuses_what_cannot_be_built() -> None:
    check_spec(spec(pip_packages=["fastapi[standard]", "torch==2.4"], env={"A": "1"}))
    with pytest.raises(ImageSpecError, match="base 'alpine'"):
        check_spec(pb.ImageSpec(base="alpine"))
    with pytest.raises(ImageSpecError, match="not options"):
        check_spec(spec(pip_packages=["--index-url=http://evil"]))
    with pytest.raises(ImageSpecError, match="not a valid environment variable"):
        check_spec(spec(env={"A=B": "1"}))


def test_an_older_clients_fields_are_the_steps_pip_env_commands() -> None:
    old = spec(pip_packages=["a"], env={"A": "1"}, commands=["true"])
    new = Image.debian_slim().pip_install("a").env({"A": "1"}).run_commands("true").to_proto()
    assert image_id(old) == image_id(new)
    assert [s.WhichOneof("kind") for s in steps_of(old)] == ["pip_install", "env", "run_commands"]


def test_local_files_count_by_digest_not_by_where_they_came_from() -> None:
    def files(digest: str, description: str) -> pb.ImageSpec:
        step = pb.ImageStep(add_files=pb.ImageFiles(digest=digest, description=description))
        return spec(steps=[step])

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert image_id(files(a, "add_local_dir /one -> /x")) == image_id(files(a, "add_local_dir /two -> /x"))
    assert image_id(files(a, "same")) != image_id(files(b, "same"))
    check_spec(files(a, "x"), {a})
    with pytest.raises(ImageSpecError, match="does not carry its files"):
        check_spec(files(a, "add_local_dir ./data -> /data"), {b})
    with pytest.raises(ImageSpecError, match="not a sha256 digest"):
        check_spec(files("md5:1", "x"), None)


def test_check_spec_refuses_bad_steps_naming_them() -> None:
    with pytest.raises(ImageSpecError, match="'jq; rm -rf /'"):
        check_spec(Image.debian_slim().apt_install("jq; rm -rf /").to_proto())
    with pytest.raises(ImageSpecError, match="workdir"):
        check_spec(spec(steps=[pb.ImageStep(workdir="relative")]))
    with pytest.raises(ImageSpecError, match="of no kind"):
        check_spec(spec(steps=[pb.ImageStep()]))
    check_spec(Image.from_registry("python:3.12-slim", add_python="3.12").to_proto())
    with pytest.raises(ImageSpecError, match="from_registry"):
        check_spec(pb.ImageSpec(base="debian_slim", registry_ref="python:3.12"))
