"""The join-link key lives outside the database (classroom/links.py, ``load_link_secret``).

Pass criterion: a server's first start writes ``link.key`` into its data directory, readable
by its user only, and nothing of it into the database; servers meant to share one database
(``--redis``) refuse to start without a key rather than each signing links with its own; the
same key file, copied, lets them start.
"""

from __future__ import annotations

import logging
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from classroom.links import LinkKeyError, load_link_secret
from classroom.storage import open_database
from classroom.tables import server_secrets
from web.app import build_services
from web.config import Settings


async def test_the_first_start_writes_a_private_key_file_and_the_database_holds_none(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    settings.data_dir.mkdir()
    services = await build_services(settings)
    await services.close()
    key_file = settings.data_dir / "link.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with await open_database(settings.db_url) as database:
        async with database.engine.connect() as connection:
            assert (await connection.execute(select(server_secrets))).all() == []


async def test_nodes_sharing_redis_need_a_shared_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = Settings(data_dir=tmp_path / "a")
    first.data_dir.mkdir()
    services = await build_services(first)
    await services.close()

    second = Settings(data_dir=tmp_path / "b", redis_url="redis://127.0.0.1:6379/0")
    second.data_dir.mkdir()
    with caplog.at_level(logging.ERROR), pytest.raises(LinkKeyError):
        await build_services(second)
    assert "LOPHOC_LINK_SECRET" in caplog.text and "link.key" in caplog.text
    assert not (second.data_dir / "link.key").exists()
    # With a copy of the first node's key, both sign with one key.
    shutil.copy2(first.data_dir / "link.key", second.data_dir / "link.key")
    async with await open_database(second.db_url) as database:
        key = await load_link_secret(
            database.secrets, key_file=second.data_dir / "link.key", create=False
        )
    async with await open_database(first.db_url) as database:
        assert key == await load_link_secret(database.secrets, key_file=first.data_dir / "link.key")
