"""What OpenLine keeps in var/ (the database, the intake journal, the secret key, the demo
passwords) is its own user's alone from the first write: the directory 0700, files 0600,
even when started from a shell whose umask would give everyone read access."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A shell's usual umask (022): files would be readable by every local user."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_fresh_var_directory_and_its_files_are_private(tmp_path: Path, open_umask: None) -> None:
    var = tmp_path / "var"  # does not exist yet: the first command creates it
    drop = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE", "OPENLINE_TESTING")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["OPENLINE_VAR_DIR"] = str(var)
    run_cli(env, "migrate")
    run_cli(env, "demo")
    assert _mode(var) == 0o700
    files = {p.name: _mode(p) for p in var.rglob("*") if p.is_file()}
    expected = {"secret_key", "openline.sqlite3", "demo-credentials.json"}
    assert expected <= set(files), files
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}
    dirs = {p.name: _mode(p) for p in var.rglob("*") if p.is_dir()}
    assert {name: mode for name, mode in dirs.items() if mode != 0o700} == {}


def test_the_intake_journal_is_created_private(tmp_path: Path, open_umask: None) -> None:
    from openline.runtime.journal import Journal

    path = tmp_path / "openline.sqlite3-intake"
    journal = Journal(str(path), wait=1)
    try:
        journal.append([])  # a write: SQLite makes its -wal and -shm files now
        made = sorted(p for p in tmp_path.iterdir() if p.name.startswith(path.name))
        assert [p.name for p in made][0] == path.name
        assert {p.name: _mode(p) for p in made if _mode(p) != 0o600} == {}
    finally:
        journal.close()
