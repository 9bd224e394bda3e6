"""The public API is small, explicit and importable; the CLI starts and lists its commands."""

import subprocess
import sys

import atomsmith


def test_every_public_name_resolves():
    for name in atomsmith.__all__:
        assert getattr(atomsmith, name) is not None, name


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "atomsmith.cli.main", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for command in ("data", "evaluate"):
        assert command in out.stdout


def test_atomic_write_follows_umask(tmp_path):
    import os

    from atomsmith.structures.io import atomic_write

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
