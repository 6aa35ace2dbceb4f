"""The `ssot-check` hook of .pre-commit-hooks.yaml in a temporary git repository: a commit
that adds `redis.Redis()` is rejected, and accepted once fixed.

The hook definition (entry, file types, serial) is taken from .pre-commit-hooks.yaml as is;
only its `language` is switched from `python` to `system`, so pre-commit uses the `ssot` of
the venv this suite runs in (built from this repository) instead of pip-installing the
repository again, which would compile the extension from scratch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml  # pre-commit's own dependency

from conftest import ROOT


IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(repo: Path, *args: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check,
                          env={**os.environ, **IDENTITY})


def test_hook_rejects_redis_redis_and_accepts_the_fix() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "ssot-check")
    assert hook["language"] == "python" and hook["entry"] == "ssot check"
    bindir = Path(sys.executable).parent
    assert shutil.which("ssot", path=str(bindir)), "the package installed the ssot command"
    pre_commit = str(bindir / "pre-commit")

    repo = Path(tempfile.mkdtemp(prefix="ssot-hook-"))
    git(repo, "init", "-q")
    local = {**hook, "language": "system"}
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]}))
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PRE_COMMIT_HOME": str(repo / ".cache")}
    subprocess.run([pre_commit, "install"], cwd=repo, env=env, check=True, capture_output=True)
    git(repo, "add", ".pre-commit-config.yaml")

    (repo / "service.py").write_text("import redis\n\nclient = redis.Redis()\n")
    git(repo, "add", "service.py")
    rejected = subprocess.run(["git", "commit", "-qm", "add a client"], cwd=repo, env={**env, **IDENTITY},
                              capture_output=True, text=True)
    assert rejected.returncode != 0, rejected.stdout
    assert "SSOT001" in rejected.stdout + rejected.stderr
    assert git(repo, "rev-parse", "HEAD", check=False).returncode != 0, "nothing was committed"

    (repo / "service.py").write_text("import redis_ssot\n\nclient = redis_ssot.get_redis()\n")
    git(repo, "add", "service.py")
    accepted = subprocess.run(["git", "commit", "-qm", "use the manager"], cwd=repo, env={**env, **IDENTITY},
                              capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    hook_output = accepted.stdout + accepted.stderr
    assert "ssot check" in hook_output and "Passed" in hook_output, hook_output
    assert git(repo, "log", "--oneline").stdout.count("\n") == 1
