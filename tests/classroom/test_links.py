"""Personal join links: issued per student, signed, expiring, revocable one by one; every bad
token gets its own stable code and changes nothing (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import re
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from classroom.errors import ClassroomError
from classroom.links import (
    LINK_GRACE,
    LINK_SECRET_NAME,
    JoinLink,
    LinkKeyError,
    LinkService,
    link_url,
    load_link_secret,
)
from classroom.ratelimit import MemoryFailureLimiter
from classroom.records import open_records
from classroom.storage import Database
from classroom.tables import join_links, metadata, server_secrets
from tests.classroom.support import LESSON_END, ROSTER_CSV, FakeNow, School

TOKEN = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")


async def refusal(call: object) -> ClassroomError:
    with pytest.raises(ClassroomError) as refused:
        await call  # type: ignore[misc]
    return refused.value


async def table_rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: proof that a refusal changed nothing."""
    snapshot = {}
    async with database.engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            rows = await connection.execute(select(table))
            snapshot[name] = sorted(map(tuple, rows), key=repr)
    return snapshot


# --- issuing ------------------------------------------------------------------------------------


async def test_every_rostered_student_gets_one_link_with_128_random_bits(school: School) -> None:
    assert set(school.links) == {"HS001", "HS002", "HS003"}
    tokens = {code: school.token(code) for code in school.links}
    for code, link in school.links.items():
        assert TOKEN.fullmatch(tokens[code])
        assert len(base64.urlsafe_b64decode(link.id + "==")) == 16
        assert link.lesson_id == school.lesson.id
        assert link.expires_at == LESSON_END + LINK_GRACE
        assert link.revoked_at is None
    assert len(set(tokens.values())) == 3
    assert school.links["HS001"].full_name == "Nguyễn Văn An"


async def test_the_database_holds_link_ids_but_never_tokens(
    school: School, database: Database
) -> None:
    snapshot = repr(await table_rows(database))
    for code in school.links:
        assert school.links[code].id in snapshot
        assert school.token(code).split(".")[1] not in snapshot


async def test_ensure_links_is_idempotent_and_covers_new_students(
    school: School, now: FakeNow
) -> None:
    links = school.records.links
    assert len(await links.ensure_links(school.lesson)) == 3
    await school.records.rosters.import_csv(
        school.school_class.id, ROSTER_CSV + "HS004,Mai Thị Lan,\r\n".encode()
    )
    after = await links.ensure_links(school.lesson)
    assert [link.student_code for link in after] == ["HS001", "HS002", "HS003", "HS004"]
    assert {link.id for link in after} >= {link.id for link in school.links.values()}
    # After the links have expired nobody new gets one.
    await school.records.rosters.import_csv(
        school.school_class.id, ROSTER_CSV + "HS005,Hồ Văn Nam,\r\n".encode()
    )
    now.set(LESSON_END + LINK_GRACE)
    assert len(await links.ensure_links(school.lesson)) == 4


async def test_concurrent_issuing_never_gives_a_student_two_links(school: School) -> None:
    await school.records.rosters.import_csv(
        school.school_class.id, ROSTER_CSV + "HS004,Mai Thị Lan,\r\n".encode()
    )
    results = await asyncio.gather(
        *(school.records.links.ensure_links(school.lesson) for _ in range(5))
    )
    for links in results[-1:]:
        assert [link.student_code for link in links] == ["HS001", "HS002", "HS003", "HS004"]


def test_link_urls_carry_the_code_and_the_token() -> None:
    assert link_url("https://lop.example.vn/", "123456789", "abc.def") == (
        "https://lop.example.vn/l/123456789#k=abc.def"
    )


# --- verifying ----------------------------------------------------------------------------------


async def test_a_good_link_names_its_student(school: School) -> None:
    holder = await school.records.links.verify(school.token("HS002"), lesson_id=school.lesson.id)
    assert holder.student_code == "HS002"
    assert holder.full_name == "Trần Thị Bích Ngọc"
    assert holder.roster_entry_id == school.links["HS002"].roster_entry_id
    assert holder.lesson_id == school.lesson.id
    assert (await school.records.links.verify(f"  {school.token('HS002')}\n")).student_code == (
        "HS002"
    )


def forgeries(token: str) -> list[str]:
    link_id, signature = token.split(".")
    flip = {"A": "B"}.get(signature[0], "A")
    return [
        f"{link_id}.{flip}{signature[1:]}",  # signature changed
        f"{link_id[:-1]}{'A' if link_id[-1] != 'A' else 'B'}.{signature}",  # id changed
        f"{link_id}.{signature[:-1]}",  # too short
        f"{link_id}.{signature}A",  # too long
        f"{link_id}{signature}",  # no dot
        token.replace("-", "+").replace("_", "/") if ("-" in token or "_" in token) else "%%",
        "A" * 22 + "." + "A" * 43,  # well-formed, unknown
        "",
        " ",
        "x" * 5000,
    ]


async def test_forged_and_malformed_tokens_are_bad_links_and_change_nothing(
    school: School, database: Database
) -> None:
    before = await table_rows(database)
    for forged in [*forgeries(school.token("HS001")), None, 42, b"bytes"]:
        error = await refusal(school.records.links.verify(forged, lesson_id=school.lesson.id))
        assert error.code == "bad_link", forged
        assert error.message == "This join link is not valid."
    # Another student's id with this student's signature is a forgery too.
    mixed = school.links["HS002"].id + "." + school.token("HS001").split(".")[1]
    assert (await refusal(school.records.links.verify(mixed))).code == "bad_link"
    assert await table_rows(database) == before


async def test_the_signature_binds_the_stored_link(school: School, database: Database) -> None:
    """A row edited to point at another student, or to last longer, no longer matches."""
    token = school.token("HS001")
    async with database.engine.begin() as connection:
        await connection.execute(
            update(join_links)
            .where(join_links.c.id == school.links["HS001"].id)
            .values(expires_at=LESSON_END + timedelta(days=30))
        )
    assert (await refusal(school.records.links.verify(token))).code == "bad_link"


async def test_a_link_for_another_lesson_is_wrong_lesson(school: School) -> None:
    error = await refusal(
        school.records.links.verify(
            school.token("HS001"), lesson_id="0" * 8 + "-0000-4000-8000-" + "0" * 12
        )
    )
    assert error.code == "wrong_lesson"


async def test_links_expire_after_the_lesson_and_its_grace(school: School, now: FakeNow) -> None:
    links = school.records.links
    now.set(LESSON_END + LINK_GRACE - timedelta(seconds=1))
    assert (await links.verify(school.token("HS001"))).student_code == "HS001"
    now.set(LESSON_END + LINK_GRACE)
    assert (await refusal(links.verify(school.token("HS001")))).code == "link_expired"


async def test_revoking_one_link_cuts_off_only_that_one(school: School, database: Database) -> None:
    links = school.records.links
    revoked = await links.revoke(school.lesson.id, school.links["HS001"].id, by=school.teacher.id)
    assert revoked.revoked_at is not None
    assert (await refusal(links.verify(school.token("HS001")))).code == "link_revoked"
    for code in ("HS002", "HS003"):
        assert (await links.verify(school.token(code))).student_code == code
    again = await links.revoke(school.lesson.id, school.links["HS001"].id)
    assert again.revoked_at == revoked.revoked_at  # idempotent: the first time stays
    async with database.engine.connect() as connection:
        row = (
            await connection.execute(
                select(join_links).where(join_links.c.id == school.links["HS001"].id)
            )
        ).one()
    assert row.revoked_by == school.teacher.id


async def test_revoking_needs_the_link_to_belong_to_the_lesson(school: School) -> None:
    links = school.records.links
    other = str(uuid.uuid4())
    for lesson_id, link_id in [
        (other, school.links["HS001"].id),
        (school.lesson.id, "A" * 22),
        (school.lesson.id, "not a link id"),
    ]:
        assert (await refusal(links.revoke(lesson_id, link_id))).code == "not_found"
    assert (await links.verify(school.token("HS001"))).student_code == "HS001"


async def test_a_revoked_link_can_be_replaced_by_a_new_one(school: School) -> None:
    links = school.records.links
    old = school.links["HS003"]
    fresh = await links.reissue(school.lesson.id, old.id, by=school.teacher.id)
    assert fresh.id != old.id
    assert (fresh.roster_entry_id, fresh.expires_at) == (old.roster_entry_id, old.expires_at)
    assert (await refusal(links.verify(school.token("HS003")))).code == "link_revoked"
    assert (await links.verify(links.token_for(fresh))).student_code == "HS003"
    listed = await links.links(school.lesson.id)
    assert [(link.student_code, link.revoked) for link in listed] == [
        ("HS001", False),
        ("HS002", False),
        ("HS003", True),
        ("HS003", False),
    ]
    # Listing again does not bring the revoked one back or add a third.
    assert len(await links.ensure_links(school.lesson)) == 4


async def test_a_student_who_left_the_class_has_their_link_revoked(school: School) -> None:
    await school.records.rosters.import_csv(
        school.school_class.id,
        b"student_code,full_name,parent_contact\nHS001,Nguy\xe1\xbb\x85n V\xc4\x83n An,\n",
        withdraw_missing=True,
    )
    assert (await refusal(school.records.links.verify(school.token("HS002")))).code == (
        "link_revoked"
    )
    assert (await school.records.links.verify(school.token("HS001"))).student_code == "HS001"


# --- the secret ---------------------------------------------------------------------------------


async def test_a_single_server_makes_the_key_once_in_a_file_only_it_can_read(
    database: Database, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "link.key"
    first = await load_link_secret(database.secrets, key_file=key_file)
    assert len(first) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert await load_link_secret(database.secrets, key_file=key_file) == first
    # Nothing of it is in the database: a copy of the database mints no links.
    async with database.engine.connect() as connection:
        assert (await connection.execute(select(server_secrets))).all() == []
    assert base64.urlsafe_b64decode(key_file.read_text().strip() + "=") == first


async def test_servers_that_share_a_database_never_make_their_own_key(
    database: Database, tmp_path: Path
) -> None:
    key_file = tmp_path / "link.key"
    with pytest.raises(LinkKeyError) as refused:
        await load_link_secret(database.secrets, key_file=key_file, create=False)
    assert str(key_file) in str(refused.value) and "LOPHOC_LINK_SECRET" in str(refused.value)
    assert not key_file.exists()
    # Given a copy of the first server's key, it starts.
    made = await load_link_secret(database.secrets, key_file=tmp_path / "first.key")
    key_file.write_bytes((tmp_path / "first.key").read_bytes())
    key_file.chmod(0o600)
    assert await load_link_secret(database.secrets, key_file=key_file, create=False) == made


async def test_a_key_left_in_the_database_by_an_older_version_moves_to_the_file(
    database: Database, tmp_path: Path
) -> None:
    old_key = b"o" * 32
    async with database.engine.begin() as connection:
        await connection.execute(
            server_secrets.insert().values(
                name=LINK_SECRET_NAME,
                value=base64.urlsafe_b64encode(old_key).decode().rstrip("="),
                created_at=FUZZ_NOW,
            )
        )
    key_file = tmp_path / "link.key"
    # Even a server that may not make a key takes the old one: links handed out keep working.
    assert await load_link_secret(database.secrets, key_file=key_file, create=False) == old_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with database.engine.connect() as connection:
        assert (await connection.execute(select(server_secrets))).all() == []
    assert await load_link_secret(database.secrets, key_file=key_file) == old_key


async def test_a_key_file_others_can_read_or_a_damaged_one_stops_the_server(
    database: Database, tmp_path: Path
) -> None:
    key_file = tmp_path / "link.key"
    await load_link_secret(database.secrets, key_file=key_file)
    key_file.chmod(0o644)
    with pytest.raises(LinkKeyError, match="chmod 600"):
        await load_link_secret(database.secrets, key_file=key_file)
    key_file.chmod(0o600)
    key_file.write_text("too short\n")
    with pytest.raises(LinkKeyError, match="damaged"):
        await load_link_secret(database.secrets, key_file=key_file)
    with pytest.raises(LinkKeyError, match="LOPHOC_LINK_SECRET"):
        await load_link_secret(database.secrets)  # neither a file nor a configured key


async def test_two_servers_starting_at_once_agree_on_one_key(
    database: Database, tmp_path: Path
) -> None:
    key_file = tmp_path / "link.key"
    keys = await asyncio.gather(
        *(load_link_secret(database.secrets, key_file=key_file) for _ in range(8))
    )
    assert len(set(keys)) == 1


async def test_a_configured_secret_is_used_and_not_stored(database: Database) -> None:
    configured = "ab" * 32
    assert await load_link_secret(database.secrets, configured) == bytes.fromhex(configured)
    async with database.engine.connect() as connection:
        assert (await connection.execute(select(server_secrets))).all() == []
    for bad in ("ab" * 8, "not a secret!", "==="):
        with pytest.raises(ValueError):
            await load_link_secret(database.secrets, bad)
    base64_secret = base64.urlsafe_b64encode(b"k" * 40).decode().rstrip("=")
    assert await load_link_secret(database.secrets, base64_secret) == b"k" * 40


async def test_links_signed_with_another_secret_are_bad_links(
    school: School, database: Database, now: FakeNow
) -> None:
    other = await open_records(
        database, MemoryFailureLimiter(), link_secret="cd" * 32, node_id="node-b", clock=now
    )
    assert (await refusal(other.links.verify(school.token("HS001")))).code == "bad_link"


async def test_a_damaged_key_left_in_the_database_stops_the_server(
    database: Database, tmp_path: Path
) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            server_secrets.insert().values(name=LINK_SECRET_NAME, value="!!!", created_at=FUZZ_NOW)
        )
    with pytest.raises(LinkKeyError, match="damaged"):
        await load_link_secret(database.secrets, key_file=tmp_path / "link.key")
    assert not (tmp_path / "link.key").exists()


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        LinkService(FakeLinkStore([]), b"short")  # type: ignore[arg-type]
    assert "secret='…'" in repr(LinkService(FakeLinkStore([]), b"k" * 32))  # type: ignore[arg-type]


# --- fuzzing the verifier -----------------------------------------------------------------------


class FakeLinkStore:
    """Just enough of a LinkStore for verify(): links by id, in memory."""

    def __init__(self, links: list[JoinLink]) -> None:
        self._links = {link.id: link for link in links}

    async def link(self, link_id: str) -> JoinLink | None:
        return self._links.get(link_id)


FUZZ_NOW = datetime(2025, 9, 8, 1, 0, tzinfo=UTC)
FUZZ_LINK = JoinLink(
    id="AAAAAAAAAAAAAAAAAAAAAA",
    lesson_id="11111111-1111-4111-8111-111111111111",
    roster_entry_id="22222222-2222-4222-8222-222222222222",
    student_code="HS001",
    full_name="Nguyễn Văn An",
    issued_at=FUZZ_NOW,
    expires_at=FUZZ_NOW + timedelta(hours=1),
)
FUZZ_SERVICE = LinkService(
    FakeLinkStore([FUZZ_LINK]),  # type: ignore[arg-type]
    b"s" * 32,
    clock=lambda: FUZZ_NOW,
)
FUZZ_TOKEN = FUZZ_SERVICE.token_for(FUZZ_LINK)


def test_the_fuzz_fixture_verifies() -> None:
    assert asyncio.run(FUZZ_SERVICE.verify(FUZZ_TOKEN)).student_code == "HS001"


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=80), st.integers(), st.none()))
def test_arbitrary_input_is_a_bad_link(token: object) -> None:
    with pytest.raises(ClassroomError) as refused:
        asyncio.run(FUZZ_SERVICE.verify(token))
    assert refused.value.code == "bad_link"


@settings(max_examples=400)
@given(
    st.integers(0, len(FUZZ_TOKEN) - 1),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "),
)
def test_any_one_character_change_to_a_real_token_is_a_bad_link(index: int, char: str) -> None:
    mutated = FUZZ_TOKEN[:index] + char + FUZZ_TOKEN[index + 1 :]
    if mutated.strip() == FUZZ_TOKEN:
        return
    with pytest.raises(ClassroomError) as refused:
        asyncio.run(FUZZ_SERVICE.verify(mutated))
    assert refused.value.code == "bad_link"
