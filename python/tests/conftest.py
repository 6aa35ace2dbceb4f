"""Shared support: real redis-server processes on ephemeral ports (never 6379), the
process-wide manager pointed at one of them, and the paths of the Rust helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server child on its own port; can be SIGKILLed and restarted on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ssot-py-redis-")
        self.proc: "subprocess.Popen[bytes] | None" = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.cli("PING") == ["PONG"]:
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args: str) -> List[str]:
        """Runs one command with redis-cli (outside the manager) and returns its lines."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--no-raw", *args],
            check=True, capture_output=True, timeout=10,
        ).stdout.decode()
        return [line.split(") ", 1)[-1].strip('"') for line in out.splitlines() if line]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()


@pytest.fixture(scope="session")
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def redis(server: RedisServer):  # type: ignore[no-untyped-def]
    import redis_ssot

    r = redis_ssot.init(server.url, app="pytest", command_timeout_ms=1000)
    assert r.instance_id
    return r


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.stop()


def run_scenario(name: str, env: dict, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    """Runs python/tests/scenarios/<name>.py in a new interpreter (its own process-wide
    manager) and returns the finished process."""
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, str(SCENARIOS / f"{name}.py")],
        env=full_env, capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir(),
    )


def binary(var: str, default: Path) -> Path:
    """A Rust helper built by scripts/test-python (path from `var`, else the default)."""
    path = Path(os.environ.get(var, str(default)))
    if not path.exists():
        pytest.fail(f"{path} missing: run scripts/test-python (or set {var})")
    return path
