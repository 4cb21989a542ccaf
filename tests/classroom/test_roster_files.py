"""Class lists as schools have them: the files in ``tests/classroom/rosters/`` (made by
``make_fixtures.py`` the way Excel and Windows save them), every encoding and separator,
Vietnamese headers, errors with line, column, value and messages, the limits, garbage that
must never crash the reader, and the dry run against the import itself."""

from __future__ import annotations

import io
import random
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classroom.errors import ClassroomError
from classroom.lessons import MAX_NAME_LENGTH
from classroom.records import Records
from classroom.roster_files import (
    MAX_COLUMNS,
    MAX_CONTACT_LENGTH,
    MAX_ROSTER_BYTES,
    MAX_ROSTER_ROWS,
    MAX_SHEET_ROWS,
    MAX_STUDENT_CODE_LENGTH,
    MAX_XLSX_UNPACKED_BYTES,
    MESSAGES,
    ROW_REASONS,
    header_key,
    read_roster,
)
from classroom.rosters import parse_roster
from tests.classroom.rosters.make_fixtures import CLASS_7A, excel_csv

FILES = Path(__file__).parent / "rosters"
EXPECTED_7A = [
    (code, name, contact or None) for code, name, contact in CLASS_7A
]  # as the fixtures were written


def fixture(name: str) -> bytes:
    return (FILES / name).read_bytes()


def students(data: bytes) -> list[tuple[str, str, str | None]]:
    return [(r.student_code, r.full_name, r.parent_contact) for r in parse_roster(data)]


def issues(data: bytes) -> list[tuple[int | None, str]]:
    read = read_roster(data)
    assert not read.ok
    return [(issue.line, issue.reason) for issue in read.issues]


def xlsx(rows: list[list[object]], *, title: str = "Sheet1") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- the files schools have ---------------------------------------------------------------------


def test_the_fixtures_are_what_make_fixtures_writes() -> None:
    """The text fixtures are byte-for-byte reproducible (workbooks carry a timestamp)."""
    from tests.classroom.rosters.make_fixtures import fixtures

    for name, data in fixtures().items():
        if not name.endswith(".xlsx"):
            assert fixture(name) == data, name


def test_excel_semicolon_csv_with_bom_and_crlf() -> None:
    data = fixture("excel-semicolon-utf8-bom.csv")
    assert data.startswith(b"\xef\xbb\xbf") and b";" in data and b"\r\n" in data
    read = read_roster(data)
    assert read.ok and read.delimiter == ";" and read.encoding == "utf-8-sig"
    assert read.columns == {
        "student_code": "Mã HS",
        "full_name": "Họ và tên",
        "parent_contact": "SĐT phụ huynh",
    }
    assert read.ignored_columns == ["STT", "Ngày sinh"]
    assert students(data) == EXPECTED_7A


def test_windows_1258_is_converted_with_its_tone_marks_composed() -> None:
    data = fixture("windows-1258.csv")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert b"Nguy\xea\xden" in data  # ê then a combining tilde: "Nguyễn" as Windows writes it
    read = read_roster(data)
    assert read.ok and read.encoding == "cp1258"
    assert read.describe_json()["encoding"] == "Windows-1258"
    assert students(data) == EXPECTED_7A
    for row in read.rows:
        assert unicodedata.is_normalized("NFC", row.full_name)


def test_utf16_unicode_text_from_excel() -> None:
    data = fixture("excel-unicode-text.txt")
    assert data.startswith(b"\xff\xfe")
    read = read_roster(data)
    assert read.ok and read.encoding == "utf-16" and read.delimiter == "\t"
    assert students(data) == EXPECTED_7A


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_recognised(codec: str) -> None:
    text = excel_csv([["Mã HS", "Họ và tên"], ["HS001", "Nguyễn Văn An"]], "\t")
    assert students(text.encode(codec)) == [("HS001", "Nguyễn Văn An", None)]


def test_letters_already_replaced_by_question_marks_are_refused_saying_so() -> None:
    data = fixture("windows-1252-lost-letters.csv")
    assert b"Nguy?n V?n An" in data
    read = read_roster(data)
    assert read.encoding == "cp1252"
    assert [(i.line, i.reason, i.value) for i in read.issues] == [
        (2, "letters_replaced", "Nguy?n V?n An"),
        (3, "letters_replaced", "Tr?n Th? Bích Ng?c"),
        (4, "letters_replaced", "Lê Hoàng ??c"),
    ]
    first = read.issues[0].to_json()
    assert first["column"] == "H? và tên" and first["field"] == "full_name"
    assert "“?”" in first["messages"]["en"] and "Windows-1252" in first["messages"]["en"]
    assert "“?”" in first["messages"]["vi"] and "Windows-1252" in first["messages"]["vi"]
    with pytest.raises(ClassroomError):
        parse_roster(data)
    # In a UTF-8 file too, a lone "?" and the Unicode replacement character.
    assert issues("Mã HS,Họ và tên\nHS1,Nguy?n An\nHS2,Tr\ufffdn B\nHS3,Lê ?\n".encode()) == [
        (2, "letters_replaced"),
        (3, "letters_replaced"),
        (4, "letters_replaced"),
    ]


@pytest.mark.parametrize(
    "data", [b"", b"\r\n", b"\xef\xbb\xbf\r\n", "\ufeff\r\n".encode("utf-16"), b"\xff\xfe"]
)
def test_an_empty_file_says_so(data: bytes) -> None:
    assert issues(data) == [(None, "empty_file")]


def test_windows_1252_without_lost_letters_is_read() -> None:
    data = "Mã HS,Họ và tên\r\nHS001,Lê Anh Tú\r\nHS002,Võ Hòa\r\n".encode("cp1252", "replace")
    read = read_roster(data)
    assert read.encoding == "cp1252" and read.ok
    assert [r.full_name for r in read.rows] == ["Lê Anh Tú", "Võ Hòa"]


def test_a_file_in_no_known_encoding_is_refused_whole() -> None:
    # A Vietnamese name in the TCVN3 font encoding read through cp1252 is no Vietnamese text.
    text = "Ma HS,Ho va ten\nHS001,NguyÔn V¨n An\nHS002,TrÇn ThÞ B×nh\n"
    data = text.encode("cp1252")
    assert issues(data) == [(None, "unknown_encoding")]
    read = read_roster(data)
    assert "Windows-1258" in read.issues[0].messages()["en"]


def test_the_workbook_sheet_with_the_header_is_found_past_titles_and_merged_cells() -> None:
    data = fixture("class-7a.xlsx")
    read = read_roster(data)
    assert read.ok and read.format == "xlsx" and read.sheet == "Lớp 7A"
    assert read.header_line == 4 and read.skipped_lines == [1, 2, 10]
    assert read.ignored_columns == ["STT", "Giới tính"]
    assert [(r.student_code, r.full_name, r.parent_contact, r.line) for r in read.rows] == [
        ("1001", "Nguyễn Văn An", "0912345678", 5),  # a number with a 0000000000 format
        ("1002", "Trần Thị Bích Ngọc", None, 6),  # 1002.0 in the file
        ("1003", "Lê Hoàng Đức", "me.duc@example.vn", 7),  # NFD in the file
        ("1004", "Phạm Thị Thu Hằng", "0987654321", 8),  # whitespace collapsed
    ]


def test_workbook_errors_give_the_sheet_row_and_cell() -> None:
    read = read_roster(fixture("class-7b-errors.xlsx"))
    assert read.columns == {"student_code": "Mã HS", "family_name": "Họ", "given_name": "Tên"}
    assert [line.full_name for line in read.lines][:2] == ["Nguyễn Văn An", "Nguy?n Th? Bình"]
    assert [(i.to_json()["sheet"], i.line, i.cell, i.reason, i.value) for i in read.issues] == [
        ("7B", 3, "B3", "letters_replaced", "Nguy?n Th? Bình"),
        ("7B", 4, "A4", "duplicate_code", "HS101"),
        ("7B", 5, "A5", "code_as_number", "1.23456789012e+17"),
    ]
    assert read.issues[1].to_json()["first_line"] == 2
    assert read.issues[1].messages()["vi"] == "Mã học sinh này đã có ở dòng 2."


def test_zero_padded_codes_and_number_formats_come_back_as_typed() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Mã HS", "Họ tên", "SĐT"])
    sheet.append([42, "An", 912345678])
    sheet["A2"].number_format = "00000"
    sheet["C2"].number_format = "0000000000"
    sheet.append([43, "Bình", 84.5])
    sheet["A3"].number_format = '"HS"000'
    sheet.append(["0044", "Cường", "0912 000 111"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert students(buffer.getvalue()) == [
        ("00042", "An", "0912345678"),
        ("HS043", "Bình", "84.5"),
        ("0044", "Cường", "0912 000 111"),
    ]


def test_a_workbook_without_a_header_anywhere_is_refused() -> None:
    data = xlsx([["Danh sách"], ["1", "An"]])
    read = read_roster(data)
    assert [(i.line, i.reason, i.value) for i in read.issues] == [(1, "bad_header", "Danh sách")]


def test_old_xls_protected_ods_and_damaged_workbooks_have_their_own_codes() -> None:
    assert issues(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500) == [
        (None, "xls_not_supported")
    ]
    encrypted = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 500
        + "EncryptedPackage".encode("utf-16-le")
        + b"\0" * 100
    )
    assert issues(encrypted) == [(None, "xlsx_encrypted")]
    ods = io.BytesIO()
    with zipfile.ZipFile(ods, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    assert issues(ods.getvalue()) == [(None, "ods_not_supported")]
    good = fixture("class-7a.xlsx")
    assert issues(good[: len(good) // 2]) == [(None, "bad_xlsx")]
    assert issues(b"PK\x03\x04 not a zip at all") == [(None, "bad_xlsx")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert issues(buffer.getvalue()) == [(None, "bad_xlsx")]


def test_xml_entity_bombs_inside_a_workbook_are_refused() -> None:
    """Expat refuses entity amplification; the reader turns that into ``bad_xlsx``."""
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    source = io.BytesIO(fixture("class-7a.xlsx"))
    target = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                text = data.decode()
                root = text.index("<worksheet")
                text = f"{text[:root]}<!DOCTYPE worksheet [{entities}]>{text[root:]}"
                assert "Nguyễn Văn An" in text
                data = text.replace("Nguyễn Văn An", "&lol9;").encode()
            new.writestr(item, data)
    assert issues(target.getvalue()) == [(None, "bad_xlsx")]


def test_a_workbook_that_unpacks_too_big_is_refused_before_reading() -> None:
    target = io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (MAX_XLSX_UNPACKED_BYTES + 1))
    assert len(target.getvalue()) < MAX_ROSTER_BYTES
    assert issues(target.getvalue()) == [(None, "xlsx_too_big")]


def test_a_value_far_below_the_sheet_row_limit_is_refused() -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Mã HS", "Họ và tên"])
    sheet.append(["HS1", "An"])
    for _ in range(MAX_SHEET_ROWS):
        sheet.append([])
    sheet.append(["HS2", "Bình"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert issues(buffer.getvalue()) == [(MAX_SHEET_ROWS + 3, "too_many_rows")]


# --- separators, headers, names -----------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_separator_is_sniffed_from_the_header(delimiter: str) -> None:
    # A comma inside the contact does not fool the ; and tab files.
    text = excel_csv(
        [["Mã HS", "Họ và tên", "Liên hệ"], ["HS001", "Nguyễn Văn An", "Bố: 0912, mẹ: 0987"]],
        delimiter,
    )
    read = read_roster(text.encode())
    assert read.ok and read.delimiter == delimiter
    assert read.rows[0].parent_contact == "Bố: 0912, mẹ: 0987"


def test_excels_sep_line_sets_the_separator() -> None:
    data = "sep=;\r\nMã HS;Họ và tên\r\nHS001;Nguyễn Văn An\r\n".encode()
    read = read_roster(data)
    assert read.delimiter == ";" and read.header_line == 2
    assert [(r.student_code, r.line) for r in read.rows] == [("HS001", 3)]


@pytest.mark.parametrize(
    ("code", "name", "contact"),
    [
        ("Mã HS", "Họ và tên", "SĐT"),
        ("MÃ HỌC SINH", "HỌ TÊN", "Số điện thoại phụ huynh"),
        ("ma hoc sinh", "ho va ten", "lien he"),
        ("Mã số học sinh (*)", "Họ và tên học sinh", "Điện thoại"),
        ("student_code", "full_name", "parent_contact"),
        ("Student Code", "Full Name", "Contact"),
        ("code", "name", "email"),
        (unicodedata.normalize("NFD", "Mã HS"), unicodedata.normalize("NFD", "Họ tên"), "SDT"),
    ],
)
def test_header_names_in_vietnamese_and_english(code: str, name: str, contact: str) -> None:
    data = f"STT,{code},{name},{contact}\n1,hs01,Nguyễn Văn An,0912\n".encode()
    assert students(data) == [("HS01", "Nguyễn Văn An", "0912")]


def test_header_keys_ignore_case_diacritics_and_punctuation() -> None:
    assert header_key(" Mã  HS (*) ") == "ma hs"
    assert header_key("ĐIỆN THOẠI") == "dien thoai"
    assert header_key("student_code") == "student code"


def test_family_and_given_name_columns_are_joined() -> None:
    data = "Mã HS;Họ và tên đệm;Tên\nHS1;Nguyễn  Văn;An\nHS2;;Bình\n".encode()
    assert students(data) == [("HS1", "Nguyễn Văn An", None), ("HS2", "Bình", None)]


def test_two_code_columns_are_an_error_and_a_second_contact_is_ignored() -> None:
    data = b"Ma HS,Code,Ho ten,SDT,Email\nHS1,X,An,0912,a@b.vn\n"
    read = read_roster(data)
    assert [(i.line, i.reason, i.column) for i in read.issues] == [(1, "duplicate_column", "Code")]
    data = b"Ma HS,Ho ten,SDT,Email\nHS1,An,0912,a@b.vn\n"
    read = read_roster(data)
    assert read.ok and read.ignored_columns == ["Email"] and read.rows[0].parent_contact == "0912"


def test_title_rows_before_the_header_and_notes_after_the_table_are_skipped() -> None:
    data = (
        "DANH SÁCH LỚP 7A;;\r\n;;\r\nMã HS;Họ và tên;SĐT\r\nHS1;An;\r\n;;\r\nTổng số: 1;;\r\n"
    ).encode()
    read = read_roster(data)
    assert not read.ok  # the total is in the code column: a person must look at it
    assert [(i.line, i.reason) for i in read.issues] == [(6, "bad_code"), (6, "bad_name")]
    ok = read_roster("STT;Mã HS;Họ và tên\r\n1;HS1;An\r\nNgười lập biểu;;\r\n".encode())
    assert ok.ok and ok.skipped_lines == [3]


def test_every_error_has_line_column_value_and_messages_in_both_languages() -> None:
    data = (
        "Mã HS;Họ và tên;SĐT\r\n"
        "HS 1;Nguyễn Văn An;\r\n"
        f"{'A' * (MAX_STUDENT_CODE_LENGTH + 1)};Trần B;\r\n"
        f"HS3;{'Lê ' * 30};\r\n"
        f"HS4;Phạm D;{'9' * (MAX_CONTACT_LENGTH + 1)}\r\n"
        "1.23E+11;Võ E;\r\n"
        "HS6;Ngô F;=HYPERLINK()\r\n"
    ).encode()
    read = read_roster(data)
    found = [i.to_json() for i in read.issues]
    assert [(e["line"], e["reason"], e["column"]) for e in found] == [
        (2, "bad_code", "Mã HS"),
        (3, "code_too_long", "Mã HS"),
        (4, "name_too_long", "Họ và tên"),
        (5, "contact_too_long", "SĐT"),
        (6, "code_as_number", "Mã HS"),
        (7, "bad_contact", "SĐT"),
    ]
    assert found[0]["value"] == "HS 1"
    assert len(found[2]["value"]) <= 100
    for error in found:
        assert error["messages"]["vi"] and error["messages"]["en"]
        assert error["messages"]["vi"] != error["messages"]["en"]
        assert "{" not in error["messages"]["vi"] + error["messages"]["en"]
    assert str(MAX_NAME_LENGTH) in found[2]["messages"]["vi"]


def test_every_reason_has_messages_in_both_languages() -> None:
    assert set(MESSAGES) == set(ROW_REASONS)


def test_names_at_the_length_limit_pass_and_one_more_is_refused() -> None:
    at_limit = "Â" * MAX_NAME_LENGTH
    assert students(f"code,name\nHS1,{at_limit}\n".encode())[0][1] == at_limit
    assert issues(f"code,name\nHS1,{at_limit}Â\n".encode()) == [(2, "name_too_long")]


def test_rows_past_the_limit_are_refused_in_a_workbook_too() -> None:
    rows: list[list[object]] = [["Mã HS", "Họ và tên"]]
    rows += [[f"HS{n:05d}", f"Học Sinh {n}"] for n in range(MAX_ROSTER_ROWS + 1)]
    assert issues(xlsx(rows)) == [(MAX_ROSTER_ROWS + 2, "too_many_rows")]
    assert len(parse_roster(xlsx(rows[:-1]))) == MAX_ROSTER_ROWS


def test_columns_past_the_column_limit_are_not_read() -> None:
    padding = [""] * MAX_COLUMNS
    data = xlsx([[*padding, "Mã HS", "Họ và tên"], [*padding, "HS1", "An"]])
    assert issues(data) == [(1, "bad_header")]


# --- garbage never crashes ---------------------------------------------------------------------


def _check(data: bytes) -> None:
    read = read_roster(data)
    for issue in read.issues:
        assert issue.reason in ROW_REASONS
        assert issue.line is None or issue.line >= 1
        json = issue.to_json()
        json["messages"]["vi"].encode("utf-8")
        if "value" in json:
            json["value"].encode("utf-8")  # no lone surrogates from bad bytes
    for row in read.rows:
        assert unicodedata.is_normalized("NFC", row.full_name)
        assert 1 <= len(row.full_name) <= MAX_NAME_LENGTH
    assert read.ok == (not read.issues)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check(data)


ALPHABET = st.sampled_from(
    list("Mã HS;Họ và tên,\t\"'\r\n?=+-@0123456789ABCaăâđêôơưễ\ufeff\u0301\x00\udc80 ")
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=ALPHABET, max_size=400),
    st.sampled_from(["utf-8", "utf-16", "cp1258", "cp1252", "utf-8-sig"]),
)
def test_roster_like_text_in_any_encoding_never_raises(text: str, codec: str) -> None:
    _check(("Mã HS,Họ và tên\n" + text).encode(codec, "replace"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(1, 40))
def test_damaged_workbooks_never_raise(seed: int, flips: int) -> None:
    data = bytearray(fixture("class-7a.xlsx"))
    rng = random.Random(seed)
    for _ in range(flips):
        data[rng.randrange(len(data))] = rng.randrange(256)
    _check(bytes(data))


def test_a_file_over_the_size_limit_is_refused_unread() -> None:
    assert issues(b"PK\x03\x04" + b"\0" * MAX_ROSTER_BYTES) == [(None, "too_big")]
    assert len(read_roster(b"x" * MAX_ROSTER_BYTES).issues) == 1  # read: a header error


# --- the dry run --------------------------------------------------------------------------------


async def test_the_dry_run_says_what_the_import_then_does(records: Records) -> None:
    school_class = await records.accounts.create_class("7A")
    await records.rosters.import_csv(
        school_class.id,
        "student_code,full_name,parent_contact\n"
        "HS001,Nguyễn Văn An,0912 345 678\n"
        "HS002,Trần Thị Ngọc,\n"
        "HS003,Lê Hoàng Đức,me.duc@example.vn\n"
        "HS007,Bùi Minh Khoa,\n"
        "HS008,Hồ Thị Lan,\n".encode(),
    )
    await records.rosters.import_csv(
        school_class.id,
        "student_code,full_name\nHS001,Nguyễn Văn An\nHS003,Lê Hoàng Đức\n"
        "HS007,Bùi Minh Khoa\n".encode(),
        withdraw_missing=True,
    )  # HS002 and HS008 withdrawn; HS001 and HS003 lost their contacts
    data = fixture("excel-semicolon-utf8-bom.csv")
    before = await records.rosters.entries(school_class.id, include_withdrawn=True)
    preview = await records.rosters.preview(school_class.id, data, withdraw_missing=True)
    assert await records.rosters.entries(school_class.id, include_withdrawn=True) == before
    assert preview["ok"] is True and preview["errors"] == []
    assert preview["file"]["delimiter"] == ";" and preview["file"]["encoding"] == "UTF-8"
    by_code = {row["student_code"]: row for row in preview["rows"]}
    assert by_code["HS001"]["status"] == "updated"
    assert by_code["HS001"]["changes"] == ["parent_contact"]
    assert by_code["HS002"]["changes"] == ["full_name", "readmitted"]
    assert by_code["HS002"]["previous"] == {"full_name": "Trần Thị Ngọc", "parent_contact": None}
    assert by_code["HS003"]["changes"] == ["parent_contact"]
    assert [by_code[c]["status"] for c in ("HS004", "HS005", "HS006")] == ["added"] * 3
    assert preview["missing"] == [
        {"student_code": "HS007", "full_name": "Bùi Minh Khoa", "action": "withdraw"}
    ]
    summary = preview["summary"]
    result = await records.rosters.import_csv(school_class.id, data, withdraw_missing=True)
    assert {k: summary[k] for k in ("added", "updated", "unchanged", "withdrawn")} == (
        result.to_json()
    )
    assert result.to_json() == {"added": 3, "updated": 3, "unchanged": 0, "withdrawn": 1}
    again = await records.rosters.preview(school_class.id, data)
    assert {row["status"] for row in again["rows"]} == {"unchanged"}
    assert again["summary"]["kept"] == 0 and again["missing"] == []


async def test_the_dry_run_of_a_bad_file_shows_every_row_and_imports_nothing(
    records: Records,
) -> None:
    school_class = await records.accounts.create_class("7B")
    preview = await records.rosters.preview(school_class.id, fixture("class-7b-errors.xlsx"))
    assert preview["ok"] is False and preview["file"]["sheet"] == "7B"
    assert [(row["line"], row["status"], row["errors"]) for row in preview["rows"]] == [
        (2, "added", []),
        (3, "error", ["letters_replaced"]),
        (4, "error", ["duplicate_code"]),
        (5, "error", ["code_as_number"]),
    ]
    assert preview["summary"]["errors"] == 3
    assert await records.rosters.entries(school_class.id) == []
