"""``/metrics`` says how many lessons and people are live: not for everyone.

Pass criterion: without a configured token only this host, asking directly (no proxy header),
gets the metrics; anyone else gets 403 ``forbidden``; with ``LOPHOC_METRICS_TOKEN`` configured,
only a request with ``Authorization: Bearer <token>`` gets them, from anywhere.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.requests import Request

from tests.conftest import run_server
from web.app import metrics_allowed


def request(client: str, headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "client": (client, 50000), "headers": raw})


def test_without_a_token_only_this_host_asking_directly() -> None:
    assert metrics_allowed(request("127.0.0.1"), None)
    assert metrics_allowed(request("::1"), None)
    assert not metrics_allowed(request("192.168.1.20"), None)
    assert not metrics_allowed(request("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}), None)
    assert not metrics_allowed(request("127.0.0.1", {"Forwarded": "for=203.0.113.5"}), None)
    assert not metrics_allowed(request("unknown"), None)


def test_with_a_token_only_the_bearer() -> None:
    token = "s3cret-metrics-token"
    assert metrics_allowed(request("192.168.1.20", {"Authorization": f"Bearer {token}"}), token)
    assert not metrics_allowed(request("127.0.0.1"), token)
    assert not metrics_allowed(request("127.0.0.1", {"Authorization": "Bearer wrong"}), token)


async def test_the_server_refuses_a_forwarded_request_and_serves_a_direct_one(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        direct = await http.get("/metrics")
        assert direct.status_code == 200 and "lophoc_participants" in direct.text
        proxied = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
        assert proxied.status_code == 403 and proxied.json()["error"]["code"] == "forbidden"
    async with (
        run_server(tmp_path, metrics_token="t0ken") as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        assert (await http.get("/metrics")).status_code == 403
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer t0ken"})
        assert allowed.status_code == 200
