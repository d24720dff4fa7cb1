"""App references (`FILE.py::name`, `-m module`) and where their code lives, found without
running it; and the local entrypoints `stoker run` chooses among."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import App
from client.app_ref import AppRef, in_bundle, locate, locate_file, parse_ref
from client.cli.run_options import options
from client.cli.runnables import choose
from client.exceptions import InvalidError


def test_parse_ref_splits_the_object_path_and_refuses_a_single_colon() -> None:
    assert parse_ref("app.py::second") == AppRef("app.py", False, "second")
    assert parse_ref("pkg.mod::app.main", module_mode=True) == AppRef("pkg.mod", True, "app.main")
    with pytest.raises(InvalidError, match="did you mean '::'"):
        parse_ref("app.py:main")
    with pytest.raises(InvalidError, match=r"use -m pkg\.mod"):
        parse_ref("pkg.mod")


def test_a_file_in_a_package_is_a_module_of_it(tmp_path: Path) -> None:
    (tmp_path / "top" / "pkg").mkdir(parents=True)
    for name in ("top/__init__.py", "top/pkg/__init__.py", "top/pkg/app.py", "loose.py"):
        (tmp_path / name).write_text("")
    nested = locate_file(tmp_path / "top" / "pkg" / "app.py")
    assert (nested.root, nested.module, nested.entry) == (tmp_path, "top.pkg.app", "top/pkg/app.py")
    loose = locate_file(tmp_path / "loose.py")
    assert (loose.root, loose.module, loose.entry) == (tmp_path, "loose", "loose.py")
    # In a container the bundle's root is the working directory; the module name is the same.
    assert in_bundle(tmp_path / "top" / "pkg" / "app.py", tmp_path).module == "top.pkg.app"


def test_a_module_is_found_in_the_current_directory_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("raise SystemExit('must not run')")
    (tmp_path / "pkg" / "app.py").write_text("")
    monkeypatch.chdir(tmp_path)
    source = locate(parse_ref("pkg.app", module_mode=True))
    assert (source.path, source.root, source.module) == (tmp_path / "pkg" / "app.py", tmp_path, "pkg.app")
    with pytest.raises(InvalidError, match=r"no module named 'pkg\.nope'"):
        locate(parse_ref("pkg.nope", module_mode=True))


def test_a_file_name_with_a_dot_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app.v2.py").write_text("")
    with pytest.raises(InvalidError, match=r"has a '\.' before \.py"):
        locate_file(tmp_path / "app.v2.py")


def _module_members() -> dict[str, object]:
    app = App("choices")

    @app.function()
    def work(x: int) -> int:
        return x

    @app.local_entrypoint()
    def main(n: int, flag: bool = False) -> None:
        pass

    return {"app": app, "work": work, "main": main}


def test_the_entrypoint_runs_first_and_a_name_picks_a_function() -> None:
    members = _module_members()
    assert choose(members, "", "f.py") is members["main"]
    assert choose(members, "work", "f.py") is members["work"]
    assert choose(members, "app.work", "f.py") is members["work"]
    with pytest.raises(InvalidError, match="has no function or local entrypoint 'nope'"):
        choose(members, "nope", "f.py")


def test_parameters_become_typed_options() -> None:
    def entry(count: int, name: str = "x", verbose: bool = False, ratio: float | None = None) -> None:
        pass

    made = {o.name: o for o in options(entry)}
    assert made["count"].required and made["count"].opts == ["--count"]
    assert made["verbose"].secondary_opts == ["--no-verbose"]
    assert made["ratio"].type.name == "float"

    def bad(items: list[int]) -> None:
        pass

    with pytest.raises(InvalidError, match="parameter 'items'"):
        options(bad)
