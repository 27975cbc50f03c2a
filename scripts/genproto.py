"""Regenerates gen/ from protos/ (python, grpc and mypy stubs); `--check` fails when stale."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    # Only ours: google/api/*.proto are vendored for imports, their code comes with googleapis-common-protos.
    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "collect").rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (out / "collect" / "py.typed").touch()


def _tree(path: Path) -> dict[str, Path]:
    return {str(p.relative_to(path)): p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is not current")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh)
        if args.check:
            old, new = _tree(GEN) if GEN.exists() else {}, _tree(fresh)
            stale = sorted(
                name
                for name in old.keys() | new.keys()
                if name not in old or name not in new or not filecmp.cmp(old[name], new[name], shallow=False)
            )
            if stale:
                print("gen/ is stale; run `make proto`:", *stale, sep="\n  ")
                raise SystemExit(1)
            print("gen/ is current")
            return
        if GEN.exists():
            shutil.rmtree(GEN)
        shutil.copytree(fresh, GEN)
        print(f"generated {len(_tree(GEN))} files in gen/")


if __name__ == "__main__":
    main()
