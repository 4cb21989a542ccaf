"""Accounts: teachers and administrators, logins, sessions, classes (on SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from classroom.accounts import AccountService, LoginLimits, normalise_username
from classroom.errors import ClassroomError
from classroom.ratelimit import FailureLimiter
from classroom.records import Records
from classroom.storage import Database
from classroom.tables import user_sessions, users
from tests.classroom.support import TEACHER_PASSWORD, FakeClock, FakeNow, RecordingHasher

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"


async def refusal(call: object) -> ClassroomError:
    with pytest.raises(ClassroomError) as refused:
        await call  # type: ignore[misc]
    return refused.value


@pytest.fixture
def accounts(records: Records) -> AccountService:
    return records.accounts


# --- creating accounts --------------------------------------------------------------------------


async def test_a_teacher_is_created_with_an_argon2id_hash_and_never_the_password(
    accounts: AccountService, database: Database
) -> None:
    teacher = await accounts.create_user(
        "  Lan.Nguyen ", "Nguyễn  Thị Lan", TEACHER_PASSWORD, "teacher"
    )
    assert teacher.username == "lan.nguyen"
    assert teacher.full_name == "Nguyễn Thị Lan"
    assert teacher.role == "teacher"
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(users))).one()
    assert row.password_hash.startswith("$argon2id$")
    assert TEACHER_PASSWORD not in str(tuple(row))


@pytest.mark.parametrize(
    "username", ["ab", "9lan", "lan nguyen", "lân", "a" * 33, "", "lan;drop", None, 7]
)
async def test_bad_usernames_are_refused(accounts: AccountService, username: object) -> None:
    error = await refusal(accounts.create_user(username, "Lan", TEACHER_PASSWORD, "teacher"))
    assert error.code == "invalid_username"
    assert await accounts.teachers() == []


async def test_usernames_are_unique_whatever_the_case(accounts: AccountService) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    error = await refusal(accounts.create_user("LAN", "Khác", TEACHER_PASSWORD, "admin"))
    assert error.code == "username_taken"
    assert [user.full_name for user in await accounts.users()] == ["Nguyễn Thị Lan"]


async def test_weak_passwords_and_bad_names_are_refused(accounts: AccountService) -> None:
    assert (await refusal(accounts.create_user("lan", "Lan", "short", "teacher"))).code == (
        "weak_password"
    )
    assert (
        await refusal(accounts.create_user("lan", "La\u202en", TEACHER_PASSWORD, "teacher"))
    ).code == "invalid_name"
    assert await accounts.users() == []


def test_usernames_are_normalised() -> None:
    assert normalise_username(" Co.Lan_2 ") == "co.lan_2"
    assert normalise_username("x" * 100) is None


# --- logging in ---------------------------------------------------------------------------------


async def test_login_gives_a_session_that_authenticates_until_it_expires(
    accounts: AccountService, now: FakeNow
) -> None:
    teacher = await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    session = await accounts.login("LAN", TEACHER_PASSWORD, ADDRESS)
    assert session.user == teacher
    assert session.expires_at == now() + timedelta(hours=12)
    assert "token" not in repr(session) or session.token not in repr(session)
    assert await accounts.authenticate(session.token) == teacher
    now.advance(hours=11, minutes=59)
    assert await accounts.authenticate(session.token) == teacher
    now.advance(minutes=1)
    assert (await refusal(accounts.authenticate(session.token))).code == "not_authenticated"


async def test_sessions_are_stored_as_hashes_and_end_at_logout(
    accounts: AccountService, database: Database
) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    session = await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    async with database.engine.connect() as connection:
        stored = (await connection.execute(select(user_sessions))).one()
    assert session.token not in str(tuple(stored))
    await accounts.logout(session.token)
    assert (await refusal(accounts.authenticate(session.token))).code == "not_authenticated"
    await accounts.logout(session.token)  # idempotent
    await accounts.logout(None)


@pytest.mark.parametrize("token", [None, "", "x" * 300, 42, "nope"])
async def test_bad_session_tokens_are_not_authenticated(
    accounts: AccountService, token: object
) -> None:
    assert (await refusal(accounts.authenticate(token))).code == "not_authenticated"


async def test_expired_sessions_are_swept_at_the_next_login(
    accounts: AccountService, database: Database, now: FakeNow
) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    now.advance(hours=13)
    await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    async with database.engine.connect() as connection:
        assert len((await connection.execute(select(user_sessions))).all()) == 1


async def test_unknown_user_and_wrong_password_look_the_same(
    accounts: AccountService, hasher: RecordingHasher
) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    hasher.verified.clear()
    wrong = await refusal(accounts.login("lan", "not the password", ADDRESS))
    unknown = await refusal(accounts.login("nobody", TEACHER_PASSWORD, ADDRESS))
    malformed = await refusal(accounts.login({"$ne": 1}, TEACHER_PASSWORD, ADDRESS))
    assert {wrong.code, unknown.code, malformed.code} == {"bad_login"}
    assert wrong.message == unknown.message == malformed.message
    # Exactly one Argon2 verification each: the real hash, then the dummy one twice.
    assert len(hasher.verified) == 3
    assert hasher.verified[0] is not None
    assert hasher.verified[1:] == [None, None]


async def test_passwords_never_reach_the_logs(
    accounts: AccountService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    session = await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    await refusal(accounts.login("lan", "wrong password!", ADDRESS))
    assert TEACHER_PASSWORD not in caplog.text
    assert "wrong password!" not in caplog.text
    assert session.token not in caplog.text


async def test_login_is_rate_limited_per_user_and_address(
    database: Database, limiter: FailureLimiter, hasher: RecordingHasher, clock: FakeClock
) -> None:
    """Runs on the memory and the Redis limiter: counters are shared by every node."""
    accounts = AccountService(database.accounts, limiter, hasher=hasher)
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    for _ in range(5):
        assert (await refusal(accounts.login("lan", "guess-guess", ADDRESS))).code == "bad_login"
    limited = await refusal(accounts.login("lan", TEACHER_PASSWORD, ADDRESS))
    assert limited.code == "rate_limited"
    assert 1 <= limited.extra["retry_after"] <= 60
    # The teacher herself, from school, is not locked out by someone else's failures.
    assert (await accounts.login("lan", TEACHER_PASSWORD, OTHER_ADDRESS)).user.username == "lan"
    clock.advance(61)
    assert (await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)).user.username == "lan"


async def test_one_address_cannot_walk_through_usernames(
    database: Database, limiter: FailureLimiter, hasher: RecordingHasher
) -> None:
    accounts = AccountService(database.accounts, limiter, hasher=hasher)
    for index in range(20):
        error = await refusal(accounts.login(f"user{index:03d}", "guess-guess", ADDRESS))
        assert error.code == "bad_login"
    assert (await refusal(accounts.login("user999", "guess", ADDRESS))).code == "rate_limited"


def test_login_limits_name_the_counters() -> None:
    rules = LoginLimits().rules_for("lan", "2001:db8::1")
    assert [rule.key for rule in rules] == [
        "login-address:2001:db8::/64",
        "login:lan:2001:db8::/64",
    ]
    assert [rule.key for rule in LoginLimits().rules_for(None, "10.0.0.1")] == [
        "login-address:10.0.0.1"
    ]


# --- classes ------------------------------------------------------------------------------------


async def test_classes_have_teachers_and_teachers_see_only_theirs(accounts: AccountService) -> None:
    lan = await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    hung = await accounts.create_user("hung", "Phạm Văn Hùng", TEACHER_PASSWORD, "teacher")
    admin = await accounts.create_user("admin", "Quản trị", TEACHER_PASSWORD, "admin")
    five_a = await accounts.create_class(" 5A ", ["lan", "LAN"])
    five_b = await accounts.create_class("5B", [])
    assert five_a.name == "5A"
    assert five_a.teacher_ids == (lan.id,)
    await accounts.assign_teacher(five_b.id, "hung")
    updated = await accounts.assign_teacher(five_b.id, "lan")
    assert set(updated.teacher_ids) == {lan.id, hung.id}
    assert [c.name for c in await accounts.classes_for(lan)] == ["5A", "5B"]
    assert [c.name for c in await accounts.classes_for(hung)] == ["5B"]
    assert [c.name for c in await accounts.classes_for(admin)] == ["5A", "5B"]
    assert (await accounts.visible_class(admin, five_a.id)).id == five_a.id
    assert (await refusal(accounts.visible_class(hung, five_a.id))).code == "not_found"
    assert (await refusal(accounts.visible_class(hung, "not-an-id"))).code == "not_found"


async def test_class_names_are_unique_and_checked(accounts: AccountService) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    await accounts.create_class("5A")
    assert (await refusal(accounts.create_class("5A"))).code == "class_exists"
    assert (await refusal(accounts.create_class(""))).code == "invalid_class_name"
    assert (await refusal(accounts.create_class("5\x00A"))).code == "invalid_class_name"
    # An unknown teacher (or an administrator) creates no class at all.
    assert (await refusal(accounts.create_class("5C", ["nobody"]))).code == "not_found"
    assert await accounts.class_by_name("5C") is None


# --- an administrator's care of accounts --------------------------------------------------------

NEW_PASSWORD = "mật khẩu mới của Lan"


async def test_a_reset_password_works_at_once_and_ends_every_open_session(
    accounts: AccountService,
) -> None:
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    laptop = await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    phone = await accounts.login("lan", TEACHER_PASSWORD, "10.0.0.9")
    await accounts.reset_password("LAN", NEW_PASSWORD)
    for session in (laptop, phone):
        assert (await refusal(accounts.authenticate(session.token))).code == "not_authenticated"
    assert (await refusal(accounts.login("lan", TEACHER_PASSWORD, ADDRESS))).code == "bad_login"
    assert (await accounts.login("lan", NEW_PASSWORD, ADDRESS)).user.username == "lan"
    assert (await refusal(accounts.reset_password("lan", "short"))).code == "weak_password"
    assert (await refusal(accounts.reset_password("nobody", NEW_PASSWORD))).code == "not_found"
    # The refused reset changed nothing.
    assert (await accounts.login("lan", NEW_PASSWORD, ADDRESS)).user.username == "lan"


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end(
    accounts: AccountService,
) -> None:
    admin = await accounts.create_user("admin", "Quản trị", TEACHER_PASSWORD, "admin")
    await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    session = await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)
    disabled = await accounts.disable_user("lan", by=admin)
    assert disabled.disabled_at is not None
    assert (await refusal(accounts.authenticate(session.token))).code == "not_authenticated"
    # The right password of a disabled account looks like any wrong one from outside.
    assert (await refusal(accounts.login("lan", TEACHER_PASSWORD, ADDRESS))).code == "bad_login"
    assert (await accounts.disable_user("lan", by=admin)).disabled_at == disabled.disabled_at
    assert (await accounts.enable_user("lan")).disabled_at is None
    assert (await accounts.login("lan", TEACHER_PASSWORD, ADDRESS)).user.username == "lan"


async def test_no_one_disables_themselves_or_the_last_administrator(
    accounts: AccountService,
) -> None:
    first = await accounts.create_user("admin", "Quản trị", TEACHER_PASSWORD, "admin")
    assert (await refusal(accounts.disable_user("admin", by=first))).code == "cannot_disable_self"
    second = await accounts.create_user("admin2", "Quản trị hai", TEACHER_PASSWORD, "admin")
    await accounts.disable_user("admin", by=second)
    # Only admin2 is active now: a third administrator may not disable them.
    third = await accounts.create_user("admin3", "Quản trị ba", TEACHER_PASSWORD, "admin")
    await accounts.disable_user("admin3", by=second)
    assert (await refusal(accounts.disable_user("admin2", by=third))).code == "last_admin"
    assert (await refusal(accounts.disable_user("ghost", by=second))).code == "not_found"
