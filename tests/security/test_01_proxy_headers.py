"""Per-address limits count the address a connection really comes from.

uvicorn, left to itself, believes ``X-Forwarded-For`` from loopback: from the server's own host,
or through a proxy that passes the header on, every attempt could then claim a new address and
the per-address login limit would never bite. Pass criterion: without ``--trusted-proxy`` the
header is ignored and the sixth wrong password from one address is ``rate_limited`` whatever
address the header names; with the proxy's address trusted, the header's address is the one
counted (so students behind a proxy are not all one address).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_server


async def attempts(base_url: str, n: int) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for i in range(n):
            response = await http.post(
                "/api/login",
                json={"username": "co.lan", "password": "wrong password"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}", "Origin": base_url},
            )
            statuses.append(response.status_code)
    return statuses


async def test_forwarded_for_from_loopback_is_ignored_by_default(tmp_path: Path) -> None:
    async with run_server(tmp_path) as server:
        statuses = await attempts(server.base_url, 6)
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    proxy = (ipaddress.ip_network("127.0.0.1/32"),)
    async with run_server(tmp_path, trusted_proxies=proxy) as server:
        statuses = await attempts(server.base_url, 6)
    assert statuses == [401] * 6, statuses


def test_the_cli_takes_trusted_proxies_and_refuses_a_bad_one() -> None:
    from web.cli import build_parser, settings_from_args

    args = build_parser().parse_args(
        ["serve", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.168.1.7"]
    )
    assert [str(n) for n in settings_from_args(args).trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
    ]
    assert settings_from_args(build_parser().parse_args(["serve"])).trusted_proxies == ()
    with pytest.raises(SystemExit, match="--trusted-proxy"):
        settings_from_args(build_parser().parse_args(["serve", "--trusted-proxy", "nonsense"]))
