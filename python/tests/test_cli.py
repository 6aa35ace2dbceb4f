"""The `ssot` command installed with the package runs every subcommand from the wheel: no
separate binary, no Rust toolchain (the whole command is compiled into the extension)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

import redis_ssot
from conftest import RedisServer, free_port

SECRET = "cli-test-secret-" + "x" * 32


@pytest.fixture(scope="module")
def ssot() -> str:
    """The `ssot` console script of this interpreter's environment."""
    script = shutil.which("ssot", path=os.path.dirname(sys.executable))
    assert script is not None, "the package's `ssot` script is not installed next to python"
    with open(script, "rb") as f:
        assert f.read(2) == b"#!", f"{script} is not the package's Python script"
    return script


def run(ssot: str, args: List[str], env: Dict[str, str], cwd: str = "") -> "subprocess.CompletedProcess[str]":
    # No SSOT_* from the test process, no cargo, no target/ on PATH: only the wheel's script.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SSOT_") and k != "REDIS_URL"}
    clean["PATH"] = "/usr/bin:/bin"
    clean.update(env)
    return subprocess.run([ssot, *args], env=clean, capture_output=True, text=True,
                          timeout=60, cwd=cwd or tempfile.mkdtemp())


def test_doctor_reports_a_healthy_server_and_exits_1_when_it_is_down(ssot: str) -> None:
    server = RedisServer()
    try:
        done = run(ssot, ["doctor", "--json", "--redis", server.url], {})
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["healthy"] is True and report["breaker"] == "closed", report
        assert report["server_version"], report
    finally:
        server.stop()
    down = run(ssot, ["doctor", "--redis", server.url], {"SSOT_REDIS_CONNECT_TIMEOUT_MS": "300"})
    assert down.returncode == 1, (down.stdout, down.stderr)
    assert "unhealthy: cannot connect" in down.stdout


def test_token_issues_a_jwt_that_the_package_verifies(ssot: str, redis) -> None:  # type: ignore[no-untyped-def]
    done = run(ssot, ["token", "--user", "alice", "--ttl", "60"], {"SSOT_JWT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    claims = asyncio.run(redis_ssot.Tokens(redis, secret=SECRET).verify(token))
    assert claims["sub"] == "alice"
    bad = run(ssot, ["token", "--user", "a:b"], {"SSOT_JWT_SECRET": SECRET})
    assert bad.returncode == 2 and "error:" in bad.stderr, (bad.stdout, bad.stderr)


def test_check_finds_a_violation_and_passes_once_fixed(ssot: str) -> None:
    project = Path(tempfile.mkdtemp())
    (project / "app.py").write_text("import redis\n\nclient = redis.Redis()\n")
    found = run(ssot, ["check", "."], {}, cwd=str(project))
    assert found.returncode == 1, (found.stdout, found.stderr)
    assert "app.py" in found.stdout
    (project / "app.py").write_text("import redis_ssot\n\nclient = redis_ssot.get_redis()\n")
    clean = run(ssot, ["check", "."], {}, cwd=str(project))
    assert clean.returncode == 0, (clean.stdout, clean.stderr)


def test_flags_help_and_version_exit_like_the_binary(ssot: str) -> None:
    assert run(ssot, ["--version"], {}).returncode == 0
    helped = run(ssot, ["--help"], {})
    assert helped.returncode == 0
    for sub in ("serve", "worker", "check", "doctor", "token", "demo"):
        assert sub in helped.stdout, helped.stdout
    bad = run(ssot, ["serve", "--no-such-flag"], {})
    assert bad.returncode == 2 and "--no-such-flag" in bad.stderr


def test_serve_answers_health_and_stops_cleanly_on_sigint(ssot: str) -> None:
    server = RedisServer()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOT_") and k != "REDIS_URL"}
    env.update({"PATH": "/usr/bin:/bin", "SSOT_JWT_SECRET": SECRET,
                "SSOT_SERVICE_KEY": "cli-test-service-key", "SSOT_LOG": "warn"})
    proc = subprocess.Popen(
        [ssot, "serve", "--listen", f"127.0.0.1:{port}", "--redis", server.url],
        env=env, cwd=tempfile.mkdtemp(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.05)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "no answer"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()
