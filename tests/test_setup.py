"""``make setup`` on machines that are not this one: a Python too old and a user who is neither root nor a
password-less sudoer each get one line saying what to do, before anything is installed."""
from __future__ import annotations

import os
import stat
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT


def fake(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def setup(env: dict, user: int | None = None) -> subprocess.CompletedProcess:
    cmd = ["bash", str(ROOT / "scripts" / "setup.sh")]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_a_python_too_old_is_one_line(tmp_path):
    fake(tmp_path, "python3.10", 'case "$1" in -V) echo "Python 3.10.12";; *) exit 1;; esac\n')
    proc = setup({"PYTHON": str(tmp_path / "python3.10"), "VENV": str(tmp_path / "venv")})
    assert proc.returncode == 1 and not (tmp_path / "venv").exists()
    assert proc.stdout.strip() == ("setup: Python >= 3.11 required, " + str(tmp_path / "python3.10")
                                   + " is Python 3.10.12 (set PYTHON=/path/to/python3.11)")


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv")
def test_missing_packages_without_root_or_sudo_is_one_line():
    """A user with no sudo on a machine that lacks the Debian packages (dpkg-query says so here)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="vecs-setup-"))  # pytest's own temp folder is root's alone
    tmp_path.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "dpkg-query", "exit 1\n")
    proc = setup({"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHON": "/usr/bin/python3",
                  "VENV": str(tmp_path / "venv"), "VECS_SETUP_BROWSER": "0"}, user=65534)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup: needs Debian packages (ffmpeg espeak-ng sox")
    assert "not root and has no password-less sudo: ask an administrator to run 'apt-get install ffmpeg" in lines[0]
    assert not (tmp_path / "venv").exists()
    shutil.rmtree(tmp_path)
