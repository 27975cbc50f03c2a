"""`make lint`: the two lock files pin the same versions.

`uv.lock` is the project's lock (every dependency, dev tools included, for every platform; `uv lock
--check` says it still matches pyproject.toml). `requirements.lock` is the same resolution for pip
(`make install`), with the hash of every file the indexes here may serve: `make lock` writes both,
the second constrained by the first. This check fails when one was changed without the other.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in _PIN.findall(text)}


def main() -> int:
    subprocess.run([UV, "lock", "--check", "--quiet"], cwd=ROOT, check=True)
    exported = subprocess.run(
        [UV, "export", "--frozen", "--all-extras", "--no-emit-project", "--no-hashes", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    locked, for_pip = pins(exported), pins((ROOT / "requirements.lock").read_text())
    differ = sorted(name for name in locked.keys() | for_pip.keys() if locked.get(name) != for_pip.get(name))
    for name in differ:
        print(f"{name}: uv.lock {locked.get(name, '-')}, requirements.lock {for_pip.get(name, '-')}")
    if differ:
        print("the locks disagree: run `make lock`")
        return 1
    print(f"uv.lock and requirements.lock: the same {len(locked)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
