"""Container images as the SDK records them (client/image.py)."""

from __future__ import annotations

from client.image import Image
from protos import stoker_pb2 as pb


def test_debian_slim_pip_install_env_to_proto() -> None:
    image = (
        Image.debian_slim(python_version="3.12")
        .pip_install("fastapi[standard]", ["torch==2.4", "numpy"])
        .env({"HF_HOME": "/cache", "A": "1"})
    )
    assert image.to_proto() == pb.ImageSpec(
        base="debian_slim",
        python_version="3.12",
        pip_packages=["fastapi[standard]", "torch==2.4", "numpy"],
        env={"HF_HOME": "/cache", "A": "1"},
    )


def test_debian_slim_without_a_python_version_leaves_it_empty() -> None:
    assert Image.debian_slim().to_proto().python_version == ""


def test_pip_install_appends_in_order_across_calls() -> None:
    image = Image.debian_slim().pip_install("a").pip_install("b", "c")
    assert list(image.to_proto().pip_packages) == ["a", "b", "c"]


def test_pip_install_accepts_modal_keyword_options() -> None:
    image = Image.debian_slim().pip_install("a", index_url="https://example.org/simple", pre=True)
    assert image.pip_packages == ("a",)


def test_later_env_wins_for_the_same_variable() -> None:
    image = Image.debian_slim().env({"A": "1", "B": "2"}).env({"A": "3"})
    assert dict(image.to_proto().env) == {"A": "3", "B": "2"}


def test_run_commands_records_commands_in_order() -> None:
    image = Image.debian_slim().run_commands("apt-get update", ["echo a", "echo b"])
    assert list(image.to_proto().commands) == ["apt-get update", "echo a", "echo b"]


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
