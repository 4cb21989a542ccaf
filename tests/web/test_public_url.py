"""``--public-url``: join links name the address students open, not the one a request came to
(behind a reverse proxy or a NAT the two differ)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import run_server
from web.cli import build_parser, settings_from_args, urls_to_open


def public_url(*argv: str) -> str | None:
    return settings_from_args(build_parser().parse_args(["serve", *argv])).public_url


def test_the_option_is_checked() -> None:
    assert public_url() is None
    assert public_url("--public-url", "https://hoc.truong.example.vn/") == (
        "https://hoc.truong.example.vn"
    )
    assert public_url("--public-url", "https://example.vn:8443/lophoc") == (
        "https://example.vn:8443/lophoc"
    )
    for bad in (
        "hoc.truong.vn",
        "ftp://x.vn",
        "https://",
        "https://x.vn/?a=1",
        "https://x.vn:99999",
    ):
        with pytest.raises(SystemExit, match="--public-url"):
            public_url("--public-url", bad)


def test_the_server_prints_it_and_builds_join_links_from_it(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--public-url", "https://hoc.truong.example.vn"])
    assert urls_to_open(settings_from_args(args)) == ["https://hoc.truong.example.vn/"]


async def test_a_lessons_join_link_uses_the_public_url(tmp_path: Path) -> None:
    async with (
        run_server(tmp_path, public_url="https://hoc.truong.example.vn") as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        created = await http.post(
            "/api/lessons", json={"title": "Toán 9A", "password": "mat-khau-9a"}
        )
    assert created.status_code == 201, created.text
    assert created.json()["join_url"].startswith("https://hoc.truong.example.vn/l/")
