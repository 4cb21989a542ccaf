"""TURN (coturn with the configuration lophoc ships, docs/turnserver.conf) relays only to the
lophoc server, and only for credentials lophoc minted that have not expired.

Pass criterion: with the shipped configuration — only the secret, the lophoc server's address
and the ports filled in — a credential from ``media.turn.TurnSettings`` allocates a relay over
TCP and UDP; an expired one, or one signed with another secret, is refused (401); a permission
for any loopback, private, link-local, unspecified or multicast peer is refused (403) while the
lophoc server's address is granted. Everything stays on 127.0.0.1: the "lophoc server" here is
127.0.0.1, so coturn is told to consider loopback peers at all (``allow-loopback-peers``) and
the shipped deny list is what refuses every other loopback address.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aioice import stun, turn

from media.turn import TurnSettings
from tests.conftest import free_port
from tests.coturn import shipped_config, stop, turnserver

SECRET = "a-long-shared-secret-for-the-test"
LOPHOC = "127.0.0.1"  # stands for the lophoc server's address
TIMES = {"lifetime": 600, "channel_refresh_time": 300}


@pytest_asyncio.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[int]:
    binary = turnserver()
    port = free_port()
    config = tmp_path / "turnserver.conf"
    config.write_text(
        shipped_config(
            secret=SECRET,
            lophoc_address=LOPHOC,
            listen="127.0.0.1",
            port=port,
            workdir=tmp_path,
            extra=("allow-loopback-peers",),
        )
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                assert process.poll() is None, "coturn exited"
                assert time.monotonic() < deadline, "coturn did not listen"
                await asyncio.sleep(0.1)
        yield port
    finally:
        stop(process)


async def allocate(
    port: int, username: str, password: str, transport: str = "tcp"
) -> tuple[asyncio.BaseTransport, turn.TurnClientMixin]:
    """A TURN client's allocation (aioice's TURN client, RFC 8656)."""
    loop = asyncio.get_running_loop()
    server = ("127.0.0.1", port)
    protocol: turn.TurnClientMixin
    inner: asyncio.BaseTransport
    if transport == "tcp":
        inner, protocol = await loop.create_connection(
            lambda: turn.TurnClientTcpProtocol(
                server, username=username, password=password, **TIMES
            ),
            *server,
        )
    else:
        inner, protocol = await loop.create_datagram_endpoint(
            lambda: turn.TurnClientUdpProtocol(
                server, username=username, password=password, **TIMES
            ),
            remote_addr=server,
        )
    try:
        await protocol.connect()
    except BaseException:
        inner.close()
        raise
    return inner, protocol


def settings(port: int, secret: str = SECRET) -> TurnSettings:
    return TurnSettings(urls=(f"turn:127.0.0.1:{port}?transport=tcp",), secret=secret)


async def test_minted_credentials_allocate_and_expired_or_forged_ones_do_not(
    coturn: int,
) -> None:
    now = time.time()
    for transport in ("tcp", "udp"):
        inner, _ = await allocate(coturn, *settings(coturn).credentials("p1", now), transport)
        inner.close()
    stale = settings(coturn).credentials("p2", now - 2 * settings(coturn).ttl)
    forged = settings(coturn, "another-secret-of-sixteen+").credentials("p3", now)
    for username, password in (stale, forged):
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn, username, password)
        assert refused.value.response.error_code == 401


async def test_the_relay_reaches_the_lophoc_server_and_nothing_else(coturn: int) -> None:
    inner, client = await allocate(coturn, *settings(coturn).credentials("p1", time.time()))
    try:
        await client.channel_bind(0x4000, (LOPHOC, 40000))
        refused = {}
        peers = [
            "127.0.0.2",
            "127.255.0.1",
            "10.1.2.3",
            "172.16.5.4",
            "192.168.1.20",
            "100.64.0.9",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
        ]
        for number, peer in enumerate(peers, start=0x4001):
            with pytest.raises(stun.TransactionFailed) as failed:
                await client.channel_bind(number, (peer, 40000))
            refused[peer] = failed.value.response.error_code
        assert refused == dict.fromkeys(peers, 403)
    finally:
        inner.close()
