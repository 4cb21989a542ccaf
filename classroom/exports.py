"""Attendance reports as files a school opens in Excel: ``.xlsx`` (the default) and CSV.

Both are built from a report's JSON (``classroom.reports``: a lesson's, frozen or live, or a
class's over a date range), in the reader's language (:data:`LANGUAGES`, Vietnamese first):

* headers and values (statuses, "yes") in that language;
* moments in the school's time zone, ``dd/mm/yyyy HH:MM`` — real date-times in the workbook,
  that text in the CSV; minutes as whole numbers; percentages as numbers shown as ``%``
  (a fraction with a ``0.0%`` format in the workbook, ``95,7%`` / ``95.7%`` in the CSV,
  which Excel reads back as a percentage);
* CSV: UTF-8 with a BOM (Excel otherwise guesses a legacy code page and garbles Vietnamese),
  CRLF, and the list separator Excel expects in that language: ``;`` in Vietnamese, whose
  decimal separator is the comma, ``,`` in English;
* text a spreadsheet would run as a formula (a guest may type ``=HYPERLINK(…)`` as a name) is
  kept as text: prefixed with ``'`` in the CSV, stored as a string cell in the workbook.

The workbook has the table first, then sheets that say what it is: for a lesson, the class,
the schedule, the window counted and why (as taught or as scheduled), thresholds, the report's
version and, once frozen, its SHA-256; for a class, the lessons included.

File names say class, lesson (or date range) and date: an ASCII one for old clients and the
UTF-8 one of RFC 6266 / RFC 8187 (``filename*``) — :func:`content_disposition`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, Final, Literal
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

Language = Literal["vi", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("vi", "en")
DEFAULT_LANGUAGE: Final[Language] = "vi"
ExportFormat = Literal["xlsx", "csv"]

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
BOM: Final = b"\xef\xbb\xbf"
CSV_SEPARATORS: Final[Mapping[Language, str]] = {"vi": ";", "en": ","}
DECIMAL_SEPARATORS: Final[Mapping[Language, str]] = {"vi": ",", "en": "."}
DATETIME_FORMAT: Final = "dd/mm/yyyy hh:mm"
"""Excel's number format for moments (``mm`` after ``hh`` is minutes, as Excel reads it)."""
DATE_FORMAT: Final = "dd/mm/yyyy"
PERCENT_FORMAT: Final = "0.0%"
INTEGER_FORMAT: Final = "0"
MAX_NAME_PART: Final = 60
"""Longest class name or lesson title part of a file name, in characters."""

Kind = Literal["text", "datetime", "date", "int", "percent"]
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")

_TEXT: Final[Mapping[Language, Mapping[str, str]]] = {
    "vi": {
        "sheet.attendance": "Điểm danh",
        "sheet.about": "Thông tin",
        "sheet.students": "Học sinh",
        "sheet.lessons": "Buổi học",
        "col.type": "Loại",
        "col.code": "Mã HS",
        "col.name": "Họ và tên",
        "col.status": "Trạng thái",
        "col.first_join": "Vào lớp lần đầu",
        "col.last_leave": "Rời lớp lần cuối",
        "col.minutes": "Số phút có mặt",
        "col.percentage": "Tỉ lệ có mặt",
        "col.late": "Đi muộn",
        "col.left_early": "Về sớm",
        "col.notes": "Ghi chú",
        "col.lessons": "Số buổi",
        "col.attended": "Có tham gia",
        "col.rate": "Tỉ lệ đi học",
        "col.lesson": "Buổi học",
        "col.scheduled_start": "Bắt đầu theo lịch",
        "col.report": "Báo cáo",
        "col.basis": "Thời gian tính chuyên cần",
        "col.field": "Mục",
        "col.value": "Giá trị",
        "type.student": "Học sinh",
        "type.guest": "Khách",
        "status.present": "Có mặt",
        "status.late": "Đi muộn",
        "status.left_early": "Về sớm",
        "status.absent": "Vắng",
        "yes": "Có",
        "no": "Không",
        "note.still_present": "đang trong lớp",
        "note.removed": "bị mời ra khỏi lớp",
        "note.recovery": "bị ngắt do máy chủ gặp sự cố",
        "note.devices": "đổi thiết bị",
        "basis.taught": "Theo giờ dạy thực tế",
        "basis.scheduled": "Theo lịch",
        "state.frozen": "Đã chốt",
        "state.live": "Chưa chốt",
        "about.class": "Lớp",
        "about.lesson": "Buổi học",
        "about.lesson_code": "Mã buổi học",
        "about.scheduled_start": "Bắt đầu theo lịch",
        "about.scheduled_end": "Kết thúc theo lịch",
        "about.window_start": "Tính chuyên cần từ",
        "about.window_end": "Tính chuyên cần đến",
        "about.basis": "Cách tính",
        "about.as_of": "Số liệu tính đến",
        "about.report": "Báo cáo",
        "about.closed_at": "Chốt lúc",
        "about.hash": "Mã kiểm tra (SHA-256)",
        "about.late_after": "Đi muộn nếu vào lớp muộn hơn (phút)",
        "about.left_early_before": "Về sớm nếu rời lớp sớm hơn (phút)",
        "about.grace": "Mất kết nối vẫn tính có mặt nếu không quá (giây)",
        "about.version": "Phiên bản báo cáo",
        "about.zone": "Múi giờ",
        "about.from": "Từ ngày",
        "about.to": "Đến ngày",
        "about.lesson_count": "Số buổi học",
        "file.lesson": "Điểm danh",
        "file.class": "Chuyên cần",
        "file.lesson_ascii": "diem-danh",
        "file.class_ascii": "chuyen-can",
    },
    "en": {
        "sheet.attendance": "Attendance",
        "sheet.about": "About",
        "sheet.students": "Students",
        "sheet.lessons": "Lessons",
        "col.type": "Type",
        "col.code": "Student code",
        "col.name": "Full name",
        "col.status": "Status",
        "col.first_join": "First joined",
        "col.last_leave": "Last left",
        "col.minutes": "Minutes present",
        "col.percentage": "Share of the lesson",
        "col.late": "Late",
        "col.left_early": "Left early",
        "col.notes": "Notes",
        "col.lessons": "Lessons",
        "col.attended": "Attended",
        "col.rate": "Attendance rate",
        "col.lesson": "Lesson",
        "col.scheduled_start": "Scheduled start",
        "col.report": "Report",
        "col.basis": "Time counted",
        "col.field": "Field",
        "col.value": "Value",
        "type.student": "Student",
        "type.guest": "Visitor",
        "status.present": "Present",
        "status.late": "Late",
        "status.left_early": "Left early",
        "status.absent": "Absent",
        "yes": "Yes",
        "no": "No",
        "note.still_present": "still in the lesson",
        "note.removed": "removed from the lesson",
        "note.recovery": "cut off by a server failure",
        "note.devices": "changed device",
        "basis.taught": "As taught",
        "basis.scheduled": "As scheduled",
        "state.frozen": "Closed",
        "state.live": "Not closed yet",
        "about.class": "Class",
        "about.lesson": "Lesson",
        "about.lesson_code": "Lesson code",
        "about.scheduled_start": "Scheduled start",
        "about.scheduled_end": "Scheduled end",
        "about.window_start": "Counted from",
        "about.window_end": "Counted until",
        "about.basis": "Time counted",
        "about.as_of": "Figures as of",
        "about.report": "Report",
        "about.closed_at": "Closed at",
        "about.hash": "Check code (SHA-256)",
        "about.late_after": "Late if joined more than (minutes) after the start",
        "about.left_early_before": "Left early if left more than (minutes) before the end",
        "about.grace": "Drop-outs still count as present up to (seconds)",
        "about.version": "Report version",
        "about.zone": "Time zone",
        "about.from": "From",
        "about.to": "To",
        "about.lesson_count": "Lessons",
        "file.lesson": "Attendance",
        "file.class": "Attendance",
        "file.lesson_ascii": "attendance",
        "file.class_ascii": "attendance",
    },
}


def language_of(requested: str | None, accept_language: str | None = None) -> Language | None:
    """The export language: ``requested`` (``?lang=``) if given — None when it is not one of
    :data:`LANGUAGES` (the caller refuses it) — else the first of ours in ``Accept-Language``,
    else Vietnamese."""
    if requested is not None:
        wanted = requested.strip().lower()
        return next((language for language in LANGUAGES if language == wanted), None)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower().split("-")[0]
        for language in LANGUAGES:
            if tag == language:
                return language
    return DEFAULT_LANGUAGE


# --- tables -------------------------------------------------------------------------------------

Value = str | int | float | datetime | date | None


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind = "text"
    width: int = 14


@dataclass(slots=True)
class Sheet:
    """One table: typed columns and rows of values (``datetime`` naive, in local time)."""

    title: str
    columns: tuple[Column, ...]
    rows: list[list[Value]] = field(default_factory=list)
    kinds: list[list[Kind]] | None = None
    """Per-cell kinds for key/value sheets, whose second column mixes kinds."""


def _moment(value: str | None, zone: tzinfo) -> datetime | None:
    """An ISO moment from a report, in the school's time zone, to the minute as shown (naive:
    spreadsheets have no time zones; the workbook says which one)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(zone)
    return moment.replace(second=0, microsecond=0, tzinfo=None)


def _whole_minutes(seconds: int | float) -> int:
    """Half a minute and more counts as a minute (no banker's rounding)."""
    return int((float(seconds) + 30) // 60)


def _fraction(percentage: float | None) -> float | None:
    return None if percentage is None else round(float(percentage) / 100, 4)


def zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def lesson_sheets(
    report: Mapping[str, Any], *, class_name: str, zone: tzinfo, language: Language
) -> list[Sheet]:
    """A lesson's report (``ReportView.to_json()``: with ``frozen``) as its two sheets."""
    say = _TEXT[language]
    table = Sheet(
        say["sheet.attendance"],
        (
            Column(say["col.type"], width=10),
            Column(say["col.code"], width=12),
            Column(say["col.name"], width=30),
            Column(say["col.status"], width=12),
            Column(say["col.first_join"], "datetime", 17),
            Column(say["col.last_leave"], "datetime", 17),
            Column(say["col.minutes"], "int", 10),
            Column(say["col.percentage"], "percent", 10),
            Column(say["col.late"], width=9),
            Column(say["col.left_early"], width=9),
            Column(say["col.notes"], width=30),
        ),
    )
    yes = say["yes"]
    for line in report["students"]:
        table.rows.append(
            [
                say["type.student"],
                line["student_code"],
                line["full_name"],
                say[f"status.{line['status']}"],
                _moment(line["first_join"], zone),
                _moment(line["last_leave"], zone),
                _whole_minutes(line["seconds_present"]),
                _fraction(line["percentage"]),
                yes if line["late"] else "",
                yes if line["left_early"] else "",
                _notes(line, language),
            ]
        )
    for line in report["guests"]:
        table.rows.append(
            [
                say["type.guest"],
                "",
                line["name"],
                "",
                _moment(line["first_join"], zone),
                _moment(line["last_leave"], zone),
                _whole_minutes(line["seconds_present"]),
                _fraction(line["percentage"]),
                "",
                "",
                _notes(line, language),
            ]
        )

    lesson, window, policy = report["lesson"], report["window"], report["policy"]
    frozen = report.get("frozen")
    facts: list[tuple[str, Value, Kind]] = [
        (say["about.class"], class_name, "text"),
        (say["about.lesson"], lesson["title"], "text"),
        (say["about.lesson_code"], _spaced_code(lesson["code"]), "text"),
        (say["about.scheduled_start"], _moment(lesson["scheduled_start"], zone), "datetime"),
        (say["about.scheduled_end"], _moment(lesson["scheduled_end"], zone), "datetime"),
        (say["about.window_start"], _moment(window["start"], zone), "datetime"),
        (say["about.window_end"], _moment(window["end"], zone), "datetime"),
        (say["about.basis"], say[f"basis.{window.get('basis', 'scheduled')}"], "text"),
        (say["about.as_of"], _moment(report["as_of"], zone), "datetime"),
        (say["about.report"], say["state.frozen" if frozen else "state.live"], "text"),
    ]
    if frozen:
        facts += [
            (say["about.closed_at"], _moment(frozen["closed_at"], zone), "datetime"),
            (say["about.hash"], frozen["content_hash"], "text"),
        ]
    facts += [
        (say["about.late_after"], _whole_minutes(policy["late_after_seconds"]), "int"),
        (
            say["about.left_early_before"],
            _whole_minutes(policy["left_early_before_seconds"]),
            "int",
        ),
        (say["about.grace"], int(policy["reconnect_grace_seconds"]), "int"),
        (say["about.version"], int(report.get("version", 1)), "int"),
        (say["about.zone"], zone_name(zone), "text"),
    ]
    return [table, _about(facts, language)]


def class_sheets(report: Mapping[str, Any], *, zone: tzinfo, language: Language) -> list[Sheet]:
    """A class report (``classroom.reports.class_report``) as students, lessons and about."""
    say = _TEXT[language]
    students = Sheet(
        say["sheet.students"],
        (
            Column(say["col.code"], width=12),
            Column(say["col.name"], width=30),
            Column(say["col.lessons"], "int", 9),
            Column(say["col.attended"], "int", 11),
            Column(say["status.present"], "int", 9),
            Column(say["status.late"], "int", 9),
            Column(say["status.left_early"], "int", 9),
            Column(say["status.absent"], "int", 9),
            Column(say["col.minutes"], "int", 10),
            Column(say["col.rate"], "percent", 11),
        ),
    )
    for row in report["students"]:
        students.rows.append(
            [
                row["student_code"],
                row["full_name"],
                row["lessons"],
                row["attended"],
                row["present"],
                row["late"],
                row["left_early"],
                row["absent"],
                _whole_minutes(row["seconds_present"]),
                _fraction(row["attendance_rate"]),
            ]
        )
    lessons = Sheet(
        say["sheet.lessons"],
        (
            Column(say["col.lesson"], width=36),
            Column(say["col.scheduled_start"], "datetime", 17),
            Column(say["col.basis"], width=22),
            Column(say["col.report"], width=14),
        ),
    )
    for lesson in report["lessons"]:
        lessons.rows.append(
            [
                lesson["title"],
                _moment(lesson["scheduled_start"], zone),
                say[f"basis.{lesson.get('basis', 'scheduled')}"],
                say["state.frozen" if lesson["frozen"] else "state.live"],
            ]
        )
    facts: list[tuple[str, Value, Kind]] = [
        (say["about.class"], report["class"]["name"], "text"),
        (say["about.from"], date.fromisoformat(report["from"]), "date"),
        (say["about.to"], date.fromisoformat(report["to"]), "date"),
        (say["about.lesson_count"], len(report["lessons"]), "int"),
        (say["about.zone"], zone_name(zone), "text"),
    ]
    return [students, lessons, _about(facts, language)]


def _about(facts: Sequence[tuple[str, Value, Kind]], language: Language) -> Sheet:
    say = _TEXT[language]
    sheet = Sheet(
        say["sheet.about"],
        (Column(say["col.field"], width=44), Column(say["col.value"], width=66)),
        kinds=[],
    )
    for label, value, kind in facts:
        sheet.rows.append([label, value])
        assert sheet.kinds is not None
        sheet.kinds.append(["text", kind])
    return sheet


def _notes(line: Mapping[str, Any], language: Language) -> str:
    say = _TEXT[language]
    notes = []
    if line.get("still_present"):
        notes.append(say["note.still_present"])
    if line.get("removed"):
        notes.append(say["note.removed"])
    if line.get("closed_by_recovery"):
        notes.append(say["note.recovery"])
    if line.get("devices_replaced"):
        notes.append(say["note.devices"])
    return "; ".join(notes)


def _spaced_code(code: str) -> str:
    return " ".join(code[i : i + 3] for i in range(0, len(code), 3))


# --- writers ------------------------------------------------------------------------------------


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """The sheets as an Excel workbook: bold, frozen header row; typed cells with their number
    formats; text always stored as text (never a formula)."""
    workbook = Workbook()
    workbook.properties.creator = "lophoc"
    first = True
    for sheet in sheets:
        if first:
            worksheet = workbook.active
            assert worksheet is not None
            worksheet.title = _sheet_title(sheet.title)
            first = False
        else:
            worksheet = workbook.create_sheet(_sheet_title(sheet.title))
        bold = Font(bold=True)
        for column, spec in enumerate(sheet.columns, start=1):
            cell = worksheet.cell(row=1, column=column)
            _set_text(cell, spec.header)
            cell.font = bold
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            worksheet.column_dimensions[get_column_letter(column)].width = spec.width
        for r, row in enumerate(sheet.rows, start=2):
            for c, value in enumerate(row, start=1):
                kind = sheet.kinds[r - 2][c - 1] if sheet.kinds else sheet.columns[c - 1].kind
                cell = worksheet.cell(row=r, column=c)
                if value is None or value == "":
                    continue
                if kind == "text" or isinstance(value, str):
                    _set_text(cell, str(value))
                    continue
                cell.value = value
                cell.number_format = {
                    "datetime": DATETIME_FORMAT,
                    "date": DATE_FORMAT,
                    "int": INTEGER_FORMAT,
                    "percent": PERCENT_FORMAT,
                }[kind]
        worksheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _set_text(cell: Any, value: str) -> None:
    # openpyxl takes a string starting with "=" for a formula; the data type says otherwise.
    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell.data_type = "s"


def _sheet_title(title: str) -> str:
    """Excel's limits: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", "-", title)[:31]


def csv_bytes(sheet: Sheet, language: Language) -> bytes:
    """The table as CSV for Excel in ``language``: its separator and decimal comma or point,
    UTF-8 with BOM, CRLF."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=CSV_SEPARATORS[language], lineterminator="\r\n")
    writer.writerow([_csv_text(column.header) for column in sheet.columns])
    for row in sheet.rows:
        writer.writerow(
            [
                _csv_value(value, column.kind, language)
                for value, column in zip(row, sheet.columns, strict=True)
            ]
        )
    return BOM + buffer.getvalue().encode("utf-8")


def _csv_value(value: Value, kind: Kind, language: Language) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if kind == "percent" and isinstance(value, int | float):
        number = f"{round(value * 100, 1):.1f}".removesuffix(".0")
        return number.replace(".", DECIMAL_SEPARATORS[language]) + "%"
    if isinstance(value, int | float):
        return str(value).replace(".", DECIMAL_SEPARATORS[language])
    return _csv_text(value)


def _csv_text(value: str) -> str:
    """Text Excel would run as a formula gets a leading ``'`` (shown, but never run)."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


# --- file names ---------------------------------------------------------------------------------


def ascii_fold(value: str) -> str:
    """Vietnamese (and other Latin) text without its marks: "Đặng Thị Hoà" → "Dang Thi Hoa"."""
    value = value.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", value)
    return (
        "".join(char for char in decomposed if not unicodedata.combining(char))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def _ascii_part(value: str) -> str:
    folded = re.sub(r"[^A-Za-z0-9]+", "-", ascii_fold(value)).strip("-")
    return folded[:MAX_NAME_PART].strip("-")


def _unicode_part(value: str) -> str:
    """Printable, no path or quoting characters, one space between words, bounded."""
    cleaned = "".join(
        " " if unicodedata.category(char)[0] in "CZ" else char
        for char in unicodedata.normalize("NFC", value)
    )
    cleaned = re.sub(r'[\\/:*?"<>|;%]+', "-", cleaned)
    return " ".join(cleaned.split())[:MAX_NAME_PART].strip()


@dataclass(frozen=True, slots=True)
class FileName:
    ascii: str
    unicode: str


def lesson_file_name(
    report: Mapping[str, Any], *, class_name: str, zone: tzinfo, language: Language, ext: str
) -> FileName:
    """``Điểm danh 7A - Toán 7A — Phân số - 2025-09-08.xlsx`` and its ASCII
    ``diem-danh_7A_Toan-7A-Phan-so_2025-09-08.xlsx``."""
    lesson = report["lesson"]
    when = _moment(lesson["scheduled_start"] or report["as_of"], zone)
    day = when.date().isoformat() if when else ""
    return _file_name(language, "lesson", [class_name, lesson["title"], day], ext)


def class_file_name(report: Mapping[str, Any], *, language: Language, ext: str) -> FileName:
    """``Chuyên cần 7A - 2025-09-01 - 2025-12-31.xlsx`` and its ASCII form."""
    return _file_name(
        language, "class", [report["class"]["name"], report["from"], report["to"]], ext
    )


def _file_name(language: Language, what: str, parts: Sequence[str], ext: str) -> FileName:
    say = _TEXT[language]
    ascii_parts = [say[f"file.{what}_ascii"], *(p for p in map(_ascii_part, parts) if p)]
    unicode_parts = [p for p in map(_unicode_part, parts) if p]
    unicode_name = f"{say[f'file.{what}']} {' - '.join(unicode_parts)}".strip()
    return FileName(f"{'_'.join(ascii_parts)}.{ext}", f"{unicode_name}.{ext}")


def content_disposition(name: FileName) -> str:
    """``attachment`` with both names (RFC 6266 section 4.3: ``filename*`` wins where known)."""
    return f"attachment; filename=\"{name.ascii}\"; filename*=UTF-8''{quote(name.unicode, safe='')}"
