"""The checked-in generated protobuf code matches protos/*.proto."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protos import generate

pytest.importorskip("grpc_tools", reason="grpcio-tools (a dev dependency) regenerates the protos")

FIX = "run `python -m protos.generate` from the repository root and commit the result"
# The grpcio-tools release that generated a file is written into it (the oldest grpcio it runs
# with). Any grpcio-tools the dependencies allow may be installed: that line is not compared.
GENERATED_VERSION = re.compile(rb"^GRPC_GENERATED_VERSION = .*$", re.MULTILINE)


def _content(code: bytes) -> bytes:
    return GENERATED_VERSION.sub(b"GRPC_GENERATED_VERSION = ...", code)


def test_checked_in_generated_code_matches_the_protos(tmp_path: Path) -> None:
    generated = {p.name: _content(p.read_bytes()) for p in generate.generate(tmp_path)}
    assert generated, "protos.generate produced no files"

    checked_in = {
        p.name: _content(p.read_bytes())
        for p in generate.PROTOS.iterdir()
        if p.name.endswith(generate.GENERATED_SUFFIXES)
    }
    missing = sorted(generated.keys() - checked_in.keys())
    stale = sorted(name for name in generated.keys() & checked_in.keys() if generated[name] != checked_in[name])
    orphaned = sorted(checked_in.keys() - generated.keys())

    assert not missing, f"generated files missing from protos/: {missing}; {FIX}"
    assert not stale, f"protos/ files differ from what the .proto files generate: {stale}; {FIX}"
    assert not orphaned, f"protos/ files no .proto generates: {orphaned}; {FIX} (and delete them)"
