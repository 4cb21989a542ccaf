"""Start the lophoc server as a subprocess on loopback for one benchmark run, and stop it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loadtests.signaling import http_request

__all__ = [
    "LocalServer",
    "ServerError",
    "free_port",
    "serve_command",
    "server_env",
    "wait_healthy",
]

CHECKOUT = Path(__file__).resolve().parents[1]
"""The source tree this load generator runs from; the server it starts runs the same code."""


def server_env() -> dict[str, str]:
    """The server's environment: this one, with the load generator's own checkout first on
    ``PYTHONPATH``. The server runs in a temporary directory, where an installed (e.g.
    editable) lophoc would otherwise be imported — another tree than the one benchmarked."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(CHECKOUT) if not path else str(CHECKOUT) + os.pathsep + path,
    }


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(
    base_url: str, within: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``GET /healthz`` until 200; ``ServerError`` on timeout or if ``process`` exits."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(f"server exited with status {process.returncode}")
        try:
            status, body = await http_request("GET", base_url + "/healthz", within=2)
            if status == 200:
                return
            last = f"HTTP {status}: {body[:200]}"
        except OSError as exc:
            last = str(exc)
        await asyncio.sleep(0.2)
    raise ServerError(f"server not healthy after {within:.0f} s ({last})")


def serve_command(
    port: int,
    data_dir: Path,
    *,
    python: str = sys.executable,
    module: str = "web.cli",
    log_level: str | None = None,
    waiting_room: str | None = None,
) -> list[str]:
    """``lophoc serve`` on 127.0.0.1 without TLS, with ICE pinned to loopback: candidates
    gathered on 127.0.0.1 only, and only 127.0.0.0/8 accepted (the network rule)."""
    command = [
        *(python, "-m", module, "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--no-tls", "--data-dir", str(data_dir)),
        *("--ice-address", "127.0.0.1", "--ice-accept", "127.0.0.0/8"),
    ]
    if log_level is not None:
        command += ["--log-level", log_level]
    if waiting_room is not None:
        command += ["--waiting-room", waiting_room]
    return command


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux).

    So a load generator killed with SIGKILL does not leave its server running. libc is loaded
    here, in the parent; the child only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return preexec


class LocalServer:
    """``python -m web.cli serve`` on 127.0.0.1 with a throw-away data directory."""

    def __init__(self, python: str = sys.executable, keep_dir: bool = False) -> None:
        self.python = python
        self.keep_dir = keep_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="lophoc-bench-"))
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        # Guests straight in: the benchmark measures forwarding, not a teacher admitting 40.
        return serve_command(self.port, self.data_dir, python=self.python, waiting_room="nobody")

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            return subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=server_env(),
                # its own process group: a Ctrl-C of the load generator reaches it through stop()
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )

    async def start(self, within: float = 30.0) -> None:
        self.process = self._spawn()
        try:
            await wait_healthy(self.base_url, within, self.process)
        except ServerError as exc:
            raise ServerError(f"{exc}\n--- server log (tail) ---\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        process = self.process
        status = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    # its own session (start_new_session): the group is the server and its workers
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(5)
            status = process.returncode
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return status
