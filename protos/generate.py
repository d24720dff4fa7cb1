"""Regenerate the checked-in Python code for protos/*.proto.

Run `python -m protos.generate` from the repository root after editing a .proto file;
tests/unit/test_protos.py fails while the checked-in output differs from what this produces.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = Path(__file__).resolve().parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out_dir: Path) -> list[Path]:
    """Write generated modules for every .proto into out_dir/protos; return their paths."""
    from grpc_tools import protoc  # a build-time dependency only

    sources = sorted(p.relative_to(ROOT).as_posix() for p in PROTOS.glob("*.proto"))
    (out_dir / "protos").mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    scripts = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside the interpreter
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    return sorted(p for p in (out_dir / "protos").iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copyfile(path, PROTOS / path.name)
            print(f"wrote protos/{path.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
