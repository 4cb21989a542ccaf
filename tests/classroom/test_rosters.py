"""Roster CSV in the export format: parsing, all-or-nothing imports, the dry run, and the
round trip through export (the parser on its own, the imports on SQLite and PostgreSQL).

The other files schools have (Excel workbooks, ``;`` CSV, Windows code pages, UTF-16,
Vietnamese headers) are ``test_roster_files.py``."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from classroom.errors import ClassroomError
from classroom.records import Records
from classroom.rosters import (
    BOM,
    MAX_ROSTER_BYTES,
    MAX_ROSTER_ROWS,
    ROW_REASONS,
    RosterRow,
    csv_cell,
    parse_roster,
    render_roster,
)
from classroom.storage import Database
from classroom.tables import roster_entries
from tests.classroom.support import FakeNow

HEADER = "student_code,full_name,parent_contact"
STUDENTS = [
    ("HS001", "Nguyễn Văn An", "+84 912 345 678"),
    ("HS002", "Trần Thị Bích Ngọc", None),
    ("HS003", "Lê Hoàng Đức", "me.duc@example.vn"),
    ("HS004", "Phạm Thị Thu Hằng", "-"),
    ("HS005", "Võ Nguyễn Quỳnh Như", 'Mẹ: 0987 654 321, "Zalo"'),
]


def roster_file(rows: list[str], *, newline: str = "\r\n", bom: bool = False) -> bytes:
    data = newline.join([HEADER, *rows]) + newline
    return (BOM if bom else b"") + data.encode("utf-8")


def student_lines() -> list[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for code, name, contact in STUDENTS:
        writer.writerow([code, name, csv_cell(contact or "")])
    return out.getvalue().splitlines()


def bad_lines(data: bytes) -> list[tuple[int | None, str]]:
    with pytest.raises(ClassroomError) as refused:
        parse_roster(data)
    assert refused.value.code == "bad_roster"
    errors = refused.value.extra["errors"]
    assert all(error["reason"] in ROW_REASONS for error in errors)
    return [(error["line"], error["reason"]) for error in errors]


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_vietnamese_names_are_read_with_or_without_bom_and_either_line_end(
    bom: bool, newline: str
) -> None:
    rows = parse_roster(roster_file(student_lines(), newline=newline, bom=bom))
    assert [(r.student_code, r.full_name, r.parent_contact) for r in rows] == STUDENTS
    assert [r.line for r in rows] == [2, 3, 4, 5, 6]


def test_names_are_nfc_normalised_and_tidied() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn  Thị   Ánh")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    rows = parse_roster(roster_file([f" hs010 ,  {decomposed} , "]))
    assert rows == [RosterRow("HS010", "Nguyễn Thị Ánh", None, 2)]


def test_blank_lines_and_trailing_empty_cells_are_ignored() -> None:
    rows = parse_roster(roster_file(["", "HS001,Nguyễn Văn An,,,", ",,", "HS002,Trần An,"]))
    assert [(r.student_code, r.line) for r in rows] == [("HS001", 3), ("HS002", 5)]


def test_header_only_is_an_empty_roster() -> None:
    assert parse_roster(roster_file([])) == []
    assert parse_roster(b"Student_Code , FULL_NAME, parent_contact\n") == []


def test_quoted_cells_may_hold_commas_and_quotes() -> None:
    rows = parse_roster(roster_file(['HS001,"Nguyễn Văn An","Bố: 0912, ""anh Ba"""']))
    assert rows[0].parent_contact == 'Bố: 0912, "anh Ba"'


def test_every_bad_line_is_reported_with_its_number_and_reason() -> None:
    data = roster_file(
        [
            "HS001,Nguyễn Văn An,",  # 2 fine
            ",Trần Thị B,",  # 3 empty code
            "HS 2,Trần Thị B,",  # 4 bad code
            "HS001,Lê Văn C,",  # 5 duplicate code
            "HS004,,",  # 6 bad name (empty)
            "HS005,12345,",  # 7 bad name (no letter)
            'HS006,=HYPERLINK("http://x"),',  # 8 bad name (formula)
            "HS007,Ngô Văn D",  # 9 two columns
            "HS008,Ngô Văn E,0912,extra",  # 10 four columns
            "HS009,Ngô\tVăn F,",  # 11 control character in the name
            "HS010,Ngô Văn G,@SUM(A1)",  # 12 bad contact
            f"HS011,Ngô Văn H,{'9' * 201}",  # 13 contact too long
            "hs001,Đỗ Văn I,",  # 14 duplicate once upper-cased
            ",,x",  # 15 empty code and bad name
        ]
    )
    assert bad_lines(data) == [
        (3, "empty_code"),
        (4, "bad_code"),
        (5, "duplicate_code"),
        (6, "bad_name"),
        (7, "bad_name"),
        (8, "bad_name"),
        (9, "wrong_column_count"),
        (10, "wrong_column_count"),
        (11, "bad_name"),
        (12, "bad_contact"),
        (13, "contact_too_long"),
        (14, "duplicate_code"),
        (15, "empty_code"),
        (15, "bad_name"),
    ]


def test_lines_that_are_not_utf8_are_reported_and_the_others_still_checked() -> None:
    data = (
        HEADER.encode()
        + b"\nHS001,Nguy\xc3\xa1n An,\n"
        + "HS002,Hélène B,\n".encode("latin-1")  # saved in the wrong encoding
        + b"HS003,,\n"
        + b"HS004,L\xc3 V\xc4\x83n C,\n"  # a truncated character
        + "HS005,Lê Văn C,\n".encode()
    )
    assert bad_lines(data) == [(3, "not_utf8"), (4, "bad_name"), (5, "not_utf8")]


def test_a_wrong_header_is_reported() -> None:
    assert bad_lines("Số,Tên lớp,Liên hệ\nHS001,Nguyễn Văn An,\n".encode()) == [(1, "bad_header")]
    assert bad_lines(b"HS001,Nguyen Van An,\n") == [(1, "bad_header")]
    assert bad_lines(b"") == [(None, "empty_file")]
    assert bad_lines(b"\r\n\r\n") == [(None, "empty_file")]
    assert bad_lines(BOM) == [(None, "empty_file")]


def test_the_contact_column_may_be_left_out() -> None:
    assert parse_roster(b"student_code,full_name\nHS001,An\n") == [
        RosterRow("HS001", "An", None, 2)
    ]


def test_broken_quoting_is_reported_and_parsing_goes_on() -> None:
    data = roster_file(['HS001,"Nguyễn" Văn An,', "HS002,Trần Thị B,", "HS003,,"])
    assert bad_lines(data) == [(2, "malformed_csv"), (4, "bad_name")]


def test_multi_line_cells_report_the_line_they_start_on() -> None:
    data = roster_file(['HS001,"Nguyễn\nVăn An",', "HS002,,"])
    assert bad_lines(data) == [(2, "bad_name"), (4, "bad_name")]


def test_files_over_the_size_limit_are_refused_unread() -> None:
    assert bad_lines(b"x" * (MAX_ROSTER_BYTES + 1)) == [(None, "too_big")]


def test_rows_over_the_row_limit_are_refused() -> None:
    lines = [f"HS{index:05d},Học Sinh {index}," for index in range(MAX_ROSTER_ROWS + 5)]
    assert bad_lines(roster_file(lines)) == [(MAX_ROSTER_ROWS + 2, "too_many_rows")]
    assert len(parse_roster(roster_file(lines[:MAX_ROSTER_ROWS]))) == MAX_ROSTER_ROWS


def test_parser_refuses_text() -> None:
    with pytest.raises(TypeError):
        parse_roster("student_code,full_name,parent_contact")  # type: ignore[arg-type]


# --- export and the round trip -----------------------------------------------------------------


def test_export_is_utf8_with_bom_and_crlf_and_reads_back_the_same() -> None:
    rows = parse_roster(roster_file(student_lines()))
    exported = render_roster(rows)
    assert exported.startswith(BOM + HEADER.encode() + b"\r\n")
    assert "Trần Thị Bích Ngọc".encode() in exported
    assert b"'+84 912 345 678" in exported  # Excel shows it as text, never as a formula
    assert b"\r\n" in exported and b"\n" not in exported.replace(b"\r\n", b"")
    again = parse_roster(exported)
    assert [(r.student_code, r.full_name, r.parent_contact) for r in again] == STUDENTS


@pytest.mark.parametrize("value", ["=1+1", "+84 9", "-5", "@x", "plain", ""])
def test_cells_that_spreadsheets_would_run_are_quoted(value: str) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@"))
    assert cell.endswith(value)


VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)
names = (
    st.lists(
        st.text(alphabet=VIETNAMESE + VIETNAMESE.upper(), min_size=1, max_size=12),
        min_size=1,
        max_size=5,
    )
    .map(" ".join)
    .filter(lambda name: len(name) <= 64)
)
contacts = st.one_of(
    st.none(),
    st.text(alphabet="0123456789 +-.@abcxyzđ,\"'", min_size=1, max_size=40).filter(
        # A leading ' is the spreadsheet's "this is text" mark and is dropped on import.
        lambda c: c.strip() and not c.strip().startswith(("=", "@", "'"))
    ),
)
codes = st.text(alphabet="ABCXYZ0123456789._-", min_size=1, max_size=32)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(codes, names, contacts), max_size=30, unique_by=lambda r: r[0]))
def test_any_valid_roster_survives_the_round_trip(
    students: list[tuple[str, str, str | None]],
) -> None:
    rows = [
        RosterRow(code, name, " ".join(contact.split()) if contact else None, 0)
        for code, name, contact in students
    ]
    rows = [row for row in rows if not row.full_name.startswith(("-", "+"))]
    again = parse_roster(render_roster(rows))
    assert [(r.student_code, r.full_name, r.parent_contact or None) for r in again] == [
        (r.student_code, r.full_name, r.parent_contact or None) for r in rows
    ]


@settings(max_examples=500)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_rows_or_a_bad_roster_never_a_crash(data: bytes) -> None:
    try:
        rows = parse_roster(data)
    except ClassroomError as error:
        assert error.code == "bad_roster"
        assert error.extra["errors"]
        for entry in error.extra["errors"]:
            assert entry["reason"] in ROW_REASONS
            assert entry["line"] is None or entry["line"] >= 1
    else:
        for row in rows:
            assert row.full_name == unicodedata.normalize("NFC", row.full_name)
            assert 1 <= len(row.full_name) <= 64


@settings(max_examples=300)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=6), st.integers(1, 20))
def test_arbitrary_text_rows_after_a_good_header(cells: list[str], repeat: int) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER.split(","))
    for _ in range(repeat):
        writer.writerow(cells)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    try:
        parse_roster(data)
    except ClassroomError as error:
        assert error.code == "bad_roster"


# --- importing into the database ---------------------------------------------------------------


async def count_entries(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int(
            (
                await connection.execute(select(func.count()).select_from(roster_entries))
            ).scalar_one()
        )


async def test_import_then_export_round_trips_vietnamese_names(records: Records) -> None:
    school_class = await records.accounts.create_class("5A")
    data = roster_file(student_lines(), newline="\n")
    result = await records.rosters.import_csv(school_class.id, data)
    assert result.to_json() == {"added": 5, "updated": 0, "unchanged": 0, "withdrawn": 0}
    exported = await records.rosters.export_csv(school_class.id)
    assert exported.startswith(BOM)
    assert [(r.student_code, r.full_name, r.parent_contact) for r in parse_roster(exported)] == (
        STUDENTS
    )
    # Importing the export changes nothing.
    again = await records.rosters.import_csv(school_class.id, exported)
    assert again.to_json() == {"added": 0, "updated": 0, "unchanged": 5, "withdrawn": 0}


async def test_reimport_updates_changed_rows_and_can_withdraw_missing_ones(
    records: Records, now: FakeNow
) -> None:
    school_class = await records.accounts.create_class("5A")
    await records.rosters.import_csv(school_class.id, roster_file(student_lines()))
    before = {e.student_code: e for e in await records.rosters.entries(school_class.id)}
    now.advance(days=1)
    changed = roster_file(
        ["HS001,Nguyễn Văn Anh,+84 912 345 678", "HS002,Trần Thị Bích Ngọc,", "HS099,Mai Lan,"]
    )
    result = await records.rosters.import_csv(school_class.id, changed)
    assert result.to_json() == {"added": 1, "updated": 1, "unchanged": 1, "withdrawn": 0}
    assert len(await records.rosters.entries(school_class.id)) == 6
    result = await records.rosters.import_csv(school_class.id, changed, withdraw_missing=True)
    assert result.to_json() == {"added": 0, "updated": 0, "unchanged": 3, "withdrawn": 3}
    after = {e.student_code: e for e in await records.rosters.entries(school_class.id)}
    assert set(after) == {"HS001", "HS002", "HS099"}
    assert after["HS001"].id == before["HS001"].id  # same student, same record
    assert after["HS001"].full_name == "Nguyễn Văn Anh"
    assert after["HS001"].updated_at == now()
    withdrawn = await records.rosters.entries(school_class.id, include_withdrawn=True)
    assert {e.student_code for e in withdrawn if not e.active} == {"HS003", "HS004", "HS005"}
    # A withdrawn student who is in the file again comes back.
    result = await records.rosters.import_csv(school_class.id, roster_file(student_lines()))
    assert result.withdrawn == 0 and result.updated == 4


async def test_a_bad_file_imports_nothing_at_all(records: Records, database: Database) -> None:
    school_class = await records.accounts.create_class("5A")
    await records.rosters.import_csv(school_class.id, roster_file(["HS001,Nguyễn Văn An,"]))
    data = roster_file(["HS001,Nguyễn Văn Anh,", "HS002,Trần Thị B,", "HS003,,"])
    with pytest.raises(ClassroomError) as refused:
        await records.rosters.import_csv(school_class.id, data)
    [error] = refused.value.extra["errors"]
    assert (error["line"], error["reason"], error["column"], error["value"]) == (
        4,
        "bad_name",
        "full_name",
        "",
    )
    assert await count_entries(database) == 1
    [entry] = await records.rosters.entries(school_class.id)
    assert entry.full_name == "Nguyễn Văn An"


async def test_rosters_of_classes_are_separate(records: Records) -> None:
    five_a = await records.accounts.create_class("5A")
    five_b = await records.accounts.create_class("5B")
    await records.rosters.import_csv(five_a.id, roster_file(["HS001,Nguyễn Văn An,"]))
    await records.rosters.import_csv(five_b.id, roster_file(["HS001,Trần Văn Bình,"]))
    assert [e.full_name for e in await records.rosters.entries(five_a.id)] == ["Nguyễn Văn An"]
    assert [e.full_name for e in await records.rosters.entries(five_b.id)] == ["Trần Văn Bình"]
