"""``lophoc admin``: accounts, classes and rosters from the command line (SQLite files)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from classroom.admin import admin_records
from classroom.errors import ClassroomError
from classroom.ratelimit import MemoryFailureLimiter
from classroom.records import open_records
from classroom.rosters import BOM
from classroom.storage import open_database
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV, TEACHER_PASSWORD
from web.cli import build_parser, main

ADMIN_PASSWORD = "mật khẩu quản trị 2025"


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exited:
        main(["admin", *argv])
    return int(exited.value.code or 0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def db(data_dir: Path) -> list[str]:
    return ["--data-dir", str(data_dir)]


async def login(data_dir: Path, username: str, password: str) -> str:
    url = f"sqlite+aiosqlite:///{data_dir}/lophoc.sqlite3"
    async with await open_database(url) as database:
        records = await open_records(
            database, MemoryFailureLimiter(), link_key_file=data_dir / "link.key"
        )
        session = await records.accounts.login(username, password, "127.0.0.1")
        return session.user.role


def test_accounts_classes_and_rosters_from_the_command_line(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db(data_dir)
    assert (
        run(
            ["create-admin", "hieutruong", "--name", "Đỗ Văn Minh", "--password-stdin", *args],
            monkeypatch,
            stdin=ADMIN_PASSWORD + "\n",
        )
        == 0
    )
    assert (
        run(
            ["create-teacher", "lan", "--name", "Nguyễn Thị Lan", "--password-stdin", *args],
            monkeypatch,
            stdin=TEACHER_PASSWORD + "\r\n",
        )
        == 0
    )
    assert (
        run(
            ["create-teacher", "hung", "--name", "Phạm Văn Hùng", "--password-stdin", *args],
            monkeypatch,
            stdin=TEACHER_PASSWORD,
        )
        == 0
    )
    assert run(["create-class", "5A", "--teacher", "lan", *args], monkeypatch) == 0
    assert run(["assign-teacher", "--class", "5A", "hung", *args], monkeypatch) == 0
    roster = tmp_path / "5a.csv"
    roster.write_bytes(BOM + ROSTER_CSV)
    assert run(["import-roster", str(roster), "--class", "5A", *args], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "created admin hieutruong (Đỗ Văn Minh)" in out
    assert "imported: 3 added, 0 updated, 0 unchanged, 0 withdrawn" in out
    assert TEACHER_PASSWORD not in out and ADMIN_PASSWORD not in out

    assert run(["list-teachers", *args], monkeypatch) == 0
    assert capsys.readouterr().out.splitlines() == ["hung\tPhạm Văn Hùng", "lan\tNguyễn Thị Lan"]
    assert run(["list-classes", *args], monkeypatch) == 0
    assert capsys.readouterr().out.splitlines() == ["5A\t3 students\thung,lan"]

    exported = tmp_path / "out.csv"
    assert (
        run(["export-roster", "--class", "5A", "--output", str(exported), *args], monkeypatch) == 0
    )
    assert exported.read_bytes() == BOM + ROSTER_CSV.replace(b",+84", b",'+84")

    assert asyncio.run(login(data_dir, "hieutruong", ADMIN_PASSWORD)) == "admin"
    assert asyncio.run(login(data_dir, "lan", TEACHER_PASSWORD)) == "teacher"


def test_export_to_standard_output_is_the_raw_file(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    args = db(data_dir)
    assert run(["create-class", "5A", *args], monkeypatch) == 0
    roster = tmp_path / "5a.csv"
    roster.write_bytes(ROSTER_CSV)
    assert run(["import-roster", str(roster), "--class", "5A", *args], monkeypatch) == 0
    capsysbinary.readouterr()
    assert run(["export-roster", "--class", "5A", *args], monkeypatch) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(BOM + b"student_code,full_name,parent_contact\r\n")
    assert "Trần Thị Bích Ngọc".encode() in out


def test_a_bad_roster_lists_every_bad_line_and_imports_nothing(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db(data_dir)
    assert run(["create-class", "5A", *args], monkeypatch) == 0
    roster = tmp_path / "bad.csv"
    roster.write_bytes(ROSTER_CSV + b"HS001,Tr\xc3\xa2n An,\r\nHS009,,\r\n")
    assert run(["import-roster", str(roster), "--class", "5A", *args], monkeypatch) == 1
    err = capsys.readouterr().err
    assert "nothing was imported" in err
    assert (
        "line 5, column student_code: “HS001” This student code is already on line 2. "
        "[duplicate_code]"
    ) in err
    assert "line 6, column full_name: The name is empty" in err
    assert run(["list-classes", *args], monkeypatch) == 0
    assert "0 students" in capsys.readouterr().out
    # The same in Vietnamese.
    args_vi = [*args, "--lang", "vi"]
    assert run(["import-roster", str(roster), "--class", "5A", *args_vi], monkeypatch) == 1
    assert "dòng 5, cột student_code: “HS001” Mã học sinh này đã có ở dòng 2." in (
        capsys.readouterr().err
    )


def test_the_dry_run_shows_the_changes_and_changes_nothing(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db(data_dir)
    assert run(["create-class", "5A", *args], monkeypatch) == 0
    roster = tmp_path / "5a.csv"
    roster.write_bytes(ROSTER_CSV)
    assert run(["import-roster", str(roster), "--class", "5A", *args], monkeypatch) == 0
    capsys.readouterr()
    workbook = Path(__file__).parent / "rosters" / "class-7a.xlsx"
    dry = ["import-roster", str(workbook), "--class", "5A", "--dry-run", "--withdraw-missing"]
    assert run([*dry, *args, "--lang", "en"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "read as: xlsx, Lớp 7A" in out
    assert "      5  added      1001\tNguyễn Văn An" in out
    assert "withdrawn: HS001\tNguyễn Văn An" in out
    assert "would import: 4 added, 0 updated, 0 unchanged, 3 withdrawn" in out
    assert run(["list-classes", *args], monkeypatch) == 0
    assert "3 students" in capsys.readouterr().out
    bad = Path(__file__).parent / "rosters" / "windows-1252-lost-letters.csv"
    assert run(["import-roster", str(bad), "--class", "5A", "--dry-run", *args], monkeypatch) == 1
    assert "[letters_replaced]" in capsys.readouterr().out


def test_refusals_exit_with_their_message(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db(data_dir)
    assert (
        run(["import-roster", str(tmp_path / "5a.csv"), "--class", "5A", *args], monkeypatch) == 1
    )
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "5a.csv").write_bytes(ROSTER_CSV)
    assert (
        run(["import-roster", str(tmp_path / "5a.csv"), "--class", "5A", *args], monkeypatch) == 1
    )
    assert "There is no such record." in capsys.readouterr().err
    assert (
        run(
            ["create-teacher", "x", "--name", "X", "--password-stdin", *args],
            monkeypatch,
            stdin="long enough",
        )
        == 1
    )
    assert "Usernames must be" in capsys.readouterr().err
    assert (
        run(
            ["create-teacher", "lan", "--name", "Lan", "--password-stdin", *args],
            monkeypatch,
            stdin="short",
        )
        == 1
    )
    assert "Passwords must be" in capsys.readouterr().err
    assert run(["create-class", "5A", "--teacher", "nobody", *args], monkeypatch) == 1


def test_passwords_are_never_taken_from_the_command_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["admin", "create-teacher", "lan", "--name", "Lan", "--password", "x"]
        )
    # Without a terminal and without --password-stdin there is nothing to ask.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit, match="password-stdin"):
        main(["admin", "create-teacher", "lan", "--name", "Lan", *db(data_dir)])


def test_a_database_url_can_be_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/elsewhere/school.sqlite3"
    assert run(["create-class", "5A", "--db", url], monkeypatch) == 0
    assert (tmp_path / "elsewhere" / "school.sqlite3").exists()
    assert not (tmp_path / "var").exists()


async def test_admin_records_open_and_close_the_database(tmp_path: Path) -> None:
    from classroom.passwords import PasswordHasher

    url = f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("lan", "Lan", TEACHER_PASSWORD, "teacher")
    async with admin_records(url) as records:
        assert [t.username for t in await records.accounts.teachers()] == ["lan"]


def test_reset_disable_and_enable_from_the_command_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = db(data_dir)
    for command, name, who in (
        ("create-admin", "hieutruong", "Đỗ Văn Minh"),
        ("create-teacher", "lan", "Nguyễn Thị Lan"),
    ):
        stdin = ADMIN_PASSWORD + "\n"
        assert (
            run([command, name, "--name", who, "--password-stdin", *args], monkeypatch, stdin=stdin)
            == 0
        )
    new = "một mật khẩu mới dài"
    assert (
        run(["reset-password", "lan", "--password-stdin", *args], monkeypatch, stdin=new + "\n")
        == 0
    )
    assert asyncio.run(login(data_dir, "lan", new)) == "teacher"
    assert run(["disable", "lan", *args], monkeypatch) == 0
    with pytest.raises(ClassroomError) as refused:
        asyncio.run(login(data_dir, "lan", new))
    assert refused.value.code == "bad_login"
    assert run(["enable", "lan", *args], monkeypatch) == 0
    assert asyncio.run(login(data_dir, "lan", new)) == "teacher"
    # The last administrator stays: refused with a message, exit status 1.
    assert run(["disable", "hieutruong", *args], monkeypatch) == 1
    assert run(["reset-password", "ghost", "--password-stdin", *args], monkeypatch, stdin=new) == 1
    captured = capsys.readouterr()
    assert "disabled lan" in captured.out and "enabled lan" in captured.out
    assert "last active administrator" in captured.err and new not in captured.out + captured.err
