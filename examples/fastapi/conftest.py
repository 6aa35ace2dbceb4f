"""A real redis-server and a real `ssot serve` for the example's tests, on ephemeral ports."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "example-secret-of-at-least-32-bytes!!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: "subprocess.Popen[bytes]", what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_listening(port, proc, "redis-server")
    url = f"redis://127.0.0.1:{port}"
    # The app's get_redis() initialises lazily from the environment.
    os.environ["REDIS_URL"] = url
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def gateway(redis_url: str) -> Iterator[str]:
    exe = Path(os.environ.get("SSOT_BIN", str(ROOT / "target/debug/ssot")))
    if not exe.exists():
        pytest.fail(f"{exe} missing: run scripts/test-python (or set SSOT_BIN)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOT_")}
    env.update({"SSOT_JWT_SECRET": SECRET, "SSOT_SERVICE_KEY": "example-service-key",
                "SSOT_LOG": "warn"})
    proc = subprocess.Popen(
        [str(exe), "serve", "--listen", f"127.0.0.1:{port}", "--redis", redis_url],
        env=env, cwd=tempfile.mkdtemp(), stdout=subprocess.DEVNULL,
    )
    wait_listening(port, proc, "ssot serve")
    yield f"ws://127.0.0.1:{port}/v1/ws"
    proc.terminate()
    proc.wait(timeout=10)
