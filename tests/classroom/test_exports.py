"""Report exports for Excel: real ``.xlsx`` files read back with openpyxl (cells, types,
number formats), CSV read back with the csv module, in Vietnamese and English."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from classroom.exports import (
    BOM,
    DATETIME_FORMAT,
    PERCENT_FORMAT,
    ascii_fold,
    class_file_name,
    class_sheets,
    content_disposition,
    csv_bytes,
    language_of,
    lesson_file_name,
    lesson_sheets,
    xlsx_bytes,
)
from classroom.reports import class_report, freeze
from tests.classroom.support import LESSON_START
from tests.classroom.test_reports import (
    AN,
    DUC,
    LESSON,
    NGOC,
    ROSTER,
    Log,
    minutes,
    report,
    teacher,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def lesson_data(*, frozen: bool = False) -> dict[str, Any]:
    """07:30-08:15 (Hà Nội), taught from 07:20: An all along, Ngọc late, Đức away; a guest
    who typed a formula for a name."""
    log = teacher(Log(), minutes(-10), minutes(45))
    log.stay("p1", AN, minutes(-10), minutes(45)).stay("p2", NGOC, minutes(12), minutes(39))
    log.stay("g1", '=HYPERLINK("http://x")', minutes(1), minutes(2) + 29)
    built = report(log)
    data = built.to_json()
    if frozen:
        sealed = freeze(built, closed_by=None)
        data["frozen"] = {
            "closed_at": "2025-09-08T01:30:00Z",
            "closed_by": None,
            "content_hash": sealed.content_hash,
        }
    else:
        data["frozen"] = None
    return data


def workbook(body: bytes) -> Workbook:
    assert body[:2] == b"PK"  # a zip: the OOXML container
    return load_workbook(io.BytesIO(body))


def csv_rows(body: bytes, separator: str) -> list[list[str]]:
    assert body.startswith(BOM)
    text = body[len(BOM) :].decode("utf-8")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))


def test_the_lesson_workbook_in_vietnamese_has_typed_cells() -> None:
    data = lesson_data(frozen=True)
    book = workbook(xlsx_bytes(lesson_sheets(data, class_name="5A", zone=ZONE, language="vi")))
    assert book.sheetnames == ["Điểm danh", "Thông tin"]
    sheet = book["Điểm danh"]
    header = [cell.value for cell in sheet[1]]
    assert header == [
        "Loại",
        "Mã HS",
        "Họ và tên",
        "Trạng thái",
        "Vào lớp lần đầu",
        "Rời lớp lần cuối",
        "Số phút có mặt",
        "Tỉ lệ có mặt",
        "Đi muộn",
        "Về sớm",
        "Ghi chú",
    ]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    an = [cell for cell in sheet[2]]
    assert [c.value for c in an[:4]] == ["Học sinh", "HS001", "Nguyễn Văn An", "Có mặt"]
    # Moments: real date-times in the school's time zone, shown dd/mm/yyyy HH:MM.
    assert an[4].value == datetime(2025, 9, 8, 7, 20) and an[4].is_date
    assert an[4].number_format == DATETIME_FORMAT == "dd/mm/yyyy hh:mm"
    assert an[5].value == datetime(2025, 9, 8, 8, 15)
    # Minutes are whole numbers; the percentage a fraction formatted as %.
    assert an[6].value == 55 and isinstance(an[6].value, int)
    assert an[7].value == pytest.approx(1.0) and an[7].number_format == PERCENT_FORMAT
    ngoc = [cell.value for cell in sheet[3]]
    assert ngoc[3] == "Đi muộn" and ngoc[8] == "Có" and ngoc[9] == "Có"
    assert ngoc[6] == 27 and ngoc[7] == pytest.approx(0.491)
    duc = [cell.value for cell in sheet[4]]
    assert duc[:4] == ["Học sinh", "HS003", "Lê Hoàng Đức", "Vắng"]
    assert duc[4] is None and duc[6] == 0 and duc[7] == 0
    guest = sheet[5]
    assert guest[0].value == "Khách"
    # A typed name is text, never a formula, in the workbook.
    assert guest[2].value == '=HYPERLINK("http://x")' and guest[2].data_type == "s"
    assert guest[6].value == 1  # 89 s: half a minute and more is a minute
    assert sheet.max_row == 5

    about = {row[0].value: row[1] for row in book["Thông tin"].iter_rows(min_row=2)}
    assert about["Lớp"].value == "5A"
    assert about["Buổi học"].value == "Toán 5A"
    assert about["Mã buổi học"].value == "123 456 789"
    assert about["Bắt đầu theo lịch"].value == datetime(2025, 9, 8, 7, 30)
    assert about["Bắt đầu theo lịch"].number_format == DATETIME_FORMAT
    assert about["Tính chuyên cần từ"].value == datetime(2025, 9, 8, 7, 20)
    assert about["Cách tính"].value == "Theo giờ dạy thực tế"
    assert about["Báo cáo"].value == "Đã chốt"
    assert about["Chốt lúc"].value == datetime(2025, 9, 8, 8, 30)
    assert about["Mã kiểm tra (SHA-256)"].value == data["frozen"]["content_hash"]
    assert about["Phiên bản báo cáo"].value == 2
    assert about["Múi giờ"].value == "Asia/Ho_Chi_Minh"
    assert about["Đi muộn nếu vào lớp muộn hơn (phút)"].value == 5


def test_no_cell_of_the_workbook_is_a_formula() -> None:
    body = xlsx_bytes(lesson_sheets(lesson_data(), class_name="=5A", zone=ZONE, language="vi"))
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        assert len(sheets) == 2
        for name in sheets:
            assert "<f>" not in archive.read(name).decode(), name


def test_the_lesson_workbook_in_english() -> None:
    data = lesson_data()
    book = workbook(xlsx_bytes(lesson_sheets(data, class_name="5A", zone=ZONE, language="en")))
    assert book.sheetnames == ["Attendance", "About"]
    sheet = book["Attendance"]
    assert [c.value for c in sheet[1]][:4] == ["Type", "Student code", "Full name", "Status"]
    assert [sheet.cell(row=r, column=4).value for r in (2, 3, 4)] == ["Present", "Late", "Absent"]
    about = {row[0].value: row[1].value for row in book["About"].iter_rows(min_row=2)}
    assert about["Report"] == "Not closed yet" and "Check code (SHA-256)" not in about
    assert about["Time counted"] == "As taught"


def test_an_old_report_without_a_version_says_it_was_counted_by_the_schedule() -> None:
    data = lesson_data()
    del data["version"]
    for key in ("basis", "due_start", "due_end", "taught_start", "taught_end"):
        del data["window"][key]
    book = workbook(xlsx_bytes(lesson_sheets(data, class_name="5A", zone=ZONE, language="vi")))
    about = {row[0].value: row[1].value for row in book["Thông tin"].iter_rows(min_row=2)}
    assert (about["Cách tính"], about["Phiên bản báo cáo"]) == ("Theo lịch", 1)


def test_the_lesson_csv_in_vietnamese_uses_semicolons_and_decimal_commas() -> None:
    sheets = lesson_sheets(lesson_data(), class_name="5A", zone=ZONE, language="vi")
    rows = csv_rows(csv_bytes(sheets[0], "vi"), ";")
    assert rows[0][:4] == ["Loại", "Mã HS", "Họ và tên", "Trạng thái"]
    assert rows[1] == [
        "Học sinh",
        "HS001",
        "Nguyễn Văn An",
        "Có mặt",
        "08/09/2025 07:20",
        "08/09/2025 08:15",
        "55",
        "100%",
        "",
        "",
        "",
    ]
    assert rows[2][6:8] == ["27", "49,1%"]
    assert rows[3][3] == "Vắng" and rows[3][4] == ""
    assert rows[4][2] == '\'=HYPERLINK("http://x")'  # shown by Excel, never run
    assert len(rows) == 5


def test_the_lesson_csv_in_english_uses_commas_and_decimal_points() -> None:
    sheets = lesson_sheets(lesson_data(), class_name="5A", zone=ZONE, language="en")
    body = csv_bytes(sheets[0], "en")
    rows = csv_rows(body, ",")
    assert rows[0][:4] == ["Type", "Student code", "Full name", "Status"]
    assert rows[2][3] == "Late" and rows[2][6:8] == ["27", "49.1%"]
    assert rows[1][4] == "08/09/2025 07:20"


def test_a_student_still_in_the_lesson_has_no_leave_time_and_a_note() -> None:
    log = teacher(Log(), 0).add("joined", "p1", 0, AN)
    data = {**report(log, as_of=LESSON_START + timedelta(minutes=20)).to_json()}
    data["frozen"] = None
    sheets = lesson_sheets(data, class_name="5A", zone=ZONE, language="vi")
    book = workbook(xlsx_bytes(sheets))
    row = [cell.value for cell in book["Điểm danh"][2]]
    assert row[5] is None and row[10] == "đang trong lớp"


def class_data() -> dict[str, Any]:
    first = report(Log().stay("p1", AN, 0, minutes(45)).stay("p2", NGOC, minutes(10), minutes(45)))
    second = report(Log().stay("p1", AN, 0, minutes(20)).stay("p3", DUC, 0, 29))
    second_json = second.to_json()
    second_json["lesson"] = {
        **second_json["lesson"],
        "id": "11111111-1111-4111-8111-111111111112",
        "scheduled_start": (LESSON_START + timedelta(days=7)).isoformat(),
    }
    return class_report(
        LESSON.class_id or "",
        "5A",
        ROSTER,
        [first.to_json(), {**second_json, "frozen": True}],
        first_day=date(2025, 9, 1),
        last_day=date(2026, 1, 15),
    )


def test_the_class_workbook_has_students_lessons_and_the_range() -> None:
    data = class_data()
    book = workbook(xlsx_bytes(class_sheets(data, zone=ZONE, language="vi")))
    assert book.sheetnames == ["Học sinh", "Buổi học", "Thông tin"]
    students = book["Học sinh"]
    assert [c.value for c in students[1]] == [
        "Mã HS",
        "Họ và tên",
        "Số buổi",
        "Có tham gia",
        "Có mặt",
        "Đi muộn",
        "Về sớm",
        "Vắng",
        "Số phút có mặt",
        "Tỉ lệ đi học",
    ]
    an = students[2]
    assert [c.value for c in an[:9]] == ["HS001", "Nguyễn Văn An", 2, 2, 1, 0, 1, 0, 65]
    assert an[9].value == pytest.approx(1.0) and an[9].number_format == PERCENT_FORMAT
    ngoc = [c.value for c in students[3]]
    assert ngoc[2:4] == [2, 1] and ngoc[9] == pytest.approx(0.5)
    duc = [c.value for c in students[4]]
    assert duc[8] == 0  # 29 seconds: not a minute
    lessons = book["Buổi học"]
    assert [c.value for c in lessons[2]] == [
        "Toán 5A",
        datetime(2025, 9, 8, 7, 30),
        "Theo lịch",
        "Chưa chốt",
    ]
    assert lessons[2][1].number_format == DATETIME_FORMAT
    assert lessons[3][1].value == datetime(2025, 9, 15, 7, 30)
    assert lessons[3][3].value == "Đã chốt"
    about = {row[0].value: row[1] for row in book["Thông tin"].iter_rows(min_row=2)}
    assert about["Từ ngày"].value == datetime(2025, 9, 1)  # Excel has no date-only type
    assert about["Từ ngày"].number_format == "dd/mm/yyyy"
    assert about["Số buổi học"].value == 2


def test_the_class_csv_in_both_languages() -> None:
    data = class_data()
    vi = csv_rows(csv_bytes(class_sheets(data, zone=ZONE, language="vi")[0], "vi"), ";")
    assert vi[1] == ["HS001", "Nguyễn Văn An", "2", "2", "1", "0", "1", "0", "65", "100%"]
    assert vi[2][-1] == "50%"
    en = csv_rows(csv_bytes(class_sheets(data, zone=ZONE, language="en")[0], "en"), ",")
    assert en[0][:3] == ["Student code", "Full name", "Lessons"]


def test_a_student_with_no_lessons_has_no_rate() -> None:
    data = class_report(
        "c", "5A", ROSTER, [], first_day=date(2025, 9, 1), last_day=date(2025, 9, 2)
    )
    sheets = class_sheets(data, zone=ZONE, language="vi")
    book = workbook(xlsx_bytes(sheets))
    assert book["Học sinh"].cell(row=2, column=10).value is None
    assert csv_rows(csv_bytes(sheets[0], "vi"), ";")[1][-1] == ""


# --- file names and languages ---------------------------------------------------------------


def test_file_names_say_class_lesson_and_date_in_ascii_and_utf8() -> None:
    data = lesson_data()
    data["lesson"] = {**data["lesson"], "title": "Toán 7A — Phân số: ôn tập/kiểm tra"}
    name = lesson_file_name(data, class_name="7A", zone=ZONE, language="vi", ext="xlsx")
    assert name.ascii == "diem-danh_7A_Toan-7A-Phan-so-on-tap-kiem-tra_2025-09-08.xlsx"
    assert name.unicode == "Điểm danh 7A - Toán 7A — Phân số- ôn tập-kiểm tra - 2025-09-08.xlsx"
    header = content_disposition(name)
    assert header.startswith('attachment; filename="diem-danh_7A_')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert " " not in encoded and '"' not in encoded
    assert unquote(encoded) == name.unicode
    assert header.isascii()
    english = lesson_file_name(data, class_name="7A", zone=ZONE, language="en", ext="csv")
    assert english.ascii.startswith("attendance_7A_") and english.ascii.endswith(".csv")
    range_name = class_file_name(class_data(), language="vi", ext="xlsx")
    assert range_name.ascii == "chuyen-can_5A_2025-09-01_2026-01-15.xlsx"
    assert range_name.unicode == "Chuyên cần 5A - 2025-09-01 - 2026-01-15.xlsx"


def test_file_names_are_bounded_and_survive_anything_typed() -> None:
    data = lesson_data()
    data["lesson"] = {**data["lesson"], "title": '"; x=\\..\\' + "Ư" * 300}
    name = lesson_file_name(data, class_name="Lớp\r\n9", zone=ZONE, language="vi", ext="xlsx")
    assert len(name.ascii) < 160 and len(name.unicode) < 160
    assert '"' not in name.ascii and "\\" not in name.unicode and "\n" not in name.unicode
    assert "/" not in name.unicode and ";" not in name.unicode
    assert content_disposition(name).isascii()


def test_ascii_folding_of_vietnamese() -> None:
    assert ascii_fold("Đặng Thị Hoà, Nguyễn Văn Đức") == "Dang Thi Hoa, Nguyen Van Duc"


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        (None, None, "vi"),
        ("en", None, "en"),
        ("VI", "en", "vi"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr-FR, vi;q=0.5", "vi"),
        (None, "fr", "vi"),
        ("fr", None, None),
        ("", None, None),
    ],
)
def test_the_export_language(requested: str | None, accept: str | None, expected: str) -> None:
    assert language_of(requested, accept) == expected


def test_moments_are_in_the_school_time_zone_whatever_the_server_runs_in() -> None:
    data = lesson_data()
    data["as_of"] = datetime(2025, 12, 31, 17, 30, tzinfo=UTC).isoformat()
    sheets = lesson_sheets(data, class_name="5A", zone=ZONE, language="vi")
    about = {row[0]: row[1] for row in sheets[1].rows}
    assert about["Số liệu tính đến"] == datetime(2026, 1, 1, 0, 30)
