"""coturn, run by a test with the configuration lophoc ships (docs/turnserver.conf)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.unavailable import unavailable

REPO = Path(__file__).resolve().parents[1]


def shipped_config(
    *,
    secret: str,
    lophoc_address: str,
    listen: str,
    port: int,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> str:
    """docs/turnserver.conf with its CHANGE values filled in, as an operator would, plus the
    test's own listening address and files. No TLS listener (no certificate here): the relay
    rules and credentials are the same on every listener."""
    lines = []
    for line in (REPO / "docs" / "turnserver.conf").read_text().splitlines():
        key = line.split("=", 1)[0]
        if key == "static-auth-secret":
            line = f"static-auth-secret={secret}"
        elif key == "allowed-peer-ip":
            line = f"allowed-peer-ip={lophoc_address}"
        elif key in ("cert", "pkey", "tls-listening-port"):
            continue
        elif key == "listening-port":
            line = f"listening-port={port}"
        assert line.startswith("#") or "CHANGE" not in line, line
        lines.append(line)
    lines += [
        "no-tls",
        f"listening-ip={listen}",
        f"relay-ip={listen}",
        f"log-file={workdir / 'turn.log'}",
        f"pidfile={workdir / 'turn.pid'}",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def turnserver() -> str:
    binary = shutil.which("turnserver")
    if binary is None:
        unavailable("coturn is not installed (apt-get install coturn)")
    return binary


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
