"""Reading a class list from the file a school office already has.

Schools keep class lists in Excel, in exports of the education department's database and in
CSV files saved on Windows in every way Excel offers. This module turns such a file into
student rows, or into a list of problems a person can fix — never into a half-read class.

What is read:

* **Excel workbooks** (``.xlsx``, through openpyxl in read-only mode): the first sheet with a
  recognised header row, title rows and merged cells above it skipped. Numbers in a code or
  contact column come back as the school typed them: ``1001`` not ``1001.0``, and a cell shown
  as ``0912345678`` through a ``0000000000`` number format keeps its leading zero. The old
  binary ``.xls`` format, password-protected workbooks and OpenDocument ``.ods`` files are
  refused, each with its own code saying how to save the file instead.
* **CSV and text** separated by ``,``, ``;`` (what Excel writes where the decimal mark is a
  comma, as in Vietnam) or a tab (Excel's "Unicode text"); Excel's ``sep=;`` first line is
  understood. The separator is the one under which a header row is recognised.
* **Encodings**: UTF-8 with or without a BOM; UTF-16 (with a BOM, or without one when the zero
  bytes show it). A file that is not UTF-8 is read as Windows-1258 (Vietnamese Windows; tones
  are combining marks there, composed here by NFC) or Windows-1252 (Western Windows), whichever
  reads as Vietnamese letters; when neither does the file is refused, saying so. A mostly UTF-8
  file with a few broken bytes has those lines reported (``not_utf8``).
* **Letters already lost**: a name with ``?`` (or U+FFFD), as "Nguy?n Văn An"
  when a program saved Vietnamese in an encoding without those letters, is refused with
  ``letters_replaced``: the letters are gone from the file and only the original can give them
  back.

Headers are matched without case or diacritics (:data:`HEADER_NAMES`): ``Mã HS``, ``Mã học
sinh``, ``student_code``, ``Họ và tên``, ``Họ tên``, ``full_name``, ``SĐT``, ``parent_contact``
and more; a family-name column (``Họ``, ``Họ đệm``) with a given-name column (``Tên``) is
joined into the full name. Other columns (``STT``, ``Ngày sinh``, ...) are ignored and listed.

Every problem is a :class:`RosterIssue`: the line (for a workbook, the sheet's row number and
the cell), the column as the file names it, the offending value, a stable reason code
(:data:`ROW_REASONS`) and a message in Vietnamese and English. Messages never contain file
content: the value travels beside them.

Limits are explicit: :data:`MAX_ROSTER_BYTES` for the file, :data:`MAX_XLSX_UNPACKED_BYTES`
for a workbook's unpacked parts, :data:`MAX_ROSTER_ROWS` student rows, :data:`MAX_SHEET_ROWS`
rows of a sheet scanned, :data:`MAX_COLUMNS` columns, and the name, code and contact lengths.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final, Literal

from classroom.errors import ClassroomError
from classroom.lessons import MAX_NAME_LENGTH

MAX_ROSTER_BYTES: Final = 1024 * 1024
MAX_ROSTER_ROWS: Final = 2000
MAX_STUDENT_CODE_LENGTH: Final = 32
MAX_CONTACT_LENGTH: Final = 200
MAX_XLSX_UNPACKED_BYTES: Final = 32 * 1024 * 1024
"""A workbook is a zip file: what its parts unpack to is limited too (a zip bomb is small)."""
MAX_XLSX_PARTS: Final = 2000
MAX_SHEET_ROWS: Final = 20_000
"""Rows of one sheet read, blank ones included, before giving up on it."""
MAX_COLUMNS: Final = 64
"""Columns read from a row; a header further right is not looked for."""
HEADER_SEARCH_ROWS: Final = 30
"""Non-blank rows (titles, a school's name, merged banners) scanned for the header row."""
MAX_VALUE_SHOWN: Final = 100
"""Characters of an offending value given back with an error."""

HEADER: Final = ("student_code", "full_name", "parent_contact")
BOM: Final = b"\xef\xbb\xbf"
FORMULA_START: Final = ("=", "+", "-", "@")

Field = Literal["student_code", "full_name", "parent_contact", "family_name", "given_name"]

ROW_REASONS: Final = (
    # the file as a whole (line None)
    "too_big",  # over MAX_ROSTER_BYTES
    "empty_file",
    "unknown_encoding",  # not UTF-8/UTF-16, and not readable as Vietnamese in 1258 or 1252
    "xls_not_supported",  # the Excel 97-2003 binary format
    "xlsx_encrypted",  # a workbook protected by a password (an encrypted OLE package)
    "ods_not_supported",  # an OpenDocument spreadsheet (LibreOffice's own format)
    "bad_xlsx",  # a zip or workbook that cannot be read
    "xlsx_too_big",  # unpacks to more than MAX_XLSX_UNPACKED_BYTES or MAX_XLSX_PARTS
    "bad_header",  # no row in the first HEADER_SEARCH_ROWS is a recognised header
    "duplicate_column",  # two columns for the same thing (two code columns, ...)
    "too_many_rows",  # more than MAX_ROSTER_ROWS students, or MAX_SHEET_ROWS rows
    # one line
    "malformed_csv",  # broken quoting
    "not_utf8",  # bytes that are not UTF-8 in an otherwise UTF-8 file
    "wrong_column_count",  # a CSV line with more cells than the header, or fewer
    "empty_code",
    "bad_code",  # not A-Z 0-9 . _ -
    "code_too_long",  # over MAX_STUDENT_CODE_LENGTH
    "code_as_number",  # Excel wrote the code as 1.23E+11: the digits are gone
    "duplicate_code",  # the code is on an earlier line too
    "bad_name",  # empty, control characters, no letter, starts like a formula
    "name_too_long",  # over MAX_NAME_LENGTH
    "letters_replaced",  # "Nguy?n": the letters were lost before the file reached us
    "bad_contact",  # control characters, starts with = or @
    "contact_too_long",  # over MAX_CONTACT_LENGTH
)
"""The reason codes of a ``bad_roster`` error."""

ENCODING_NAMES: Final = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "cp1258": "Windows-1258",
    "cp1252": "Windows-1252",
}

_LIMITS: Final[dict[str, int]] = {
    "max_bytes": MAX_ROSTER_BYTES,
    "max_rows": MAX_ROSTER_ROWS,
    "max_sheet_rows": MAX_SHEET_ROWS,
    "max_name": MAX_NAME_LENGTH,
    "max_code": MAX_STUDENT_CODE_LENGTH,
    "max_contact": MAX_CONTACT_LENGTH,
    "max_unpacked_mib": MAX_XLSX_UNPACKED_BYTES // (1024 * 1024),
    "header_rows": HEADER_SEARCH_ROWS,
}

#: reason → (English, Vietnamese); ``{name}`` fields come from the problem's ``params`` or the
#: limits above, never from the file.
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "too_big": (
        "The file is larger than 1 MiB. A class list is much smaller: save only the class's "
        "sheet, or as CSV.",
        "Tệp lớn hơn 1 MiB. Danh sách một lớp nhỏ hơn nhiều: hãy chỉ lưu trang tính của lớp, "
        "hoặc lưu dạng CSV.",
    ),
    "empty_file": ("The file is empty.", "Tệp trống, không có nội dung."),
    "unknown_encoding": (
        "The file is not UTF-8, and its letters do not read as Vietnamese in Windows-1258 or "
        "Windows-1252 either. In Excel choose Save As → “CSV UTF-8”, or upload the .xlsx file. "
        "Text typed in an old font (.VnTime, VNI-Times) must first be converted to Unicode, "
        "for example with Unikey's converter.",
        "Tệp không ở dạng UTF-8, và đọc theo Windows-1258 hay Windows-1252 cũng không ra chữ "
        "tiếng Việt. Trong Excel hãy chọn Lưu thành → “CSV UTF-8”, hoặc tải lên tệp .xlsx. "
        "Chữ gõ bằng phông cũ (.VnTime, VNI-Times) cần được chuyển sang Unicode trước, ví dụ "
        "bằng công cụ chuyển mã của Unikey.",
    ),
    "xls_not_supported": (
        "This is an old Excel 97-2003 file (.xls). Open it in Excel and save it as an Excel "
        "workbook (.xlsx) or as “CSV UTF-8”.",
        "Đây là tệp Excel 97-2003 cũ (.xls). Hãy mở bằng Excel và lưu thành Excel Workbook "
        "(.xlsx) hoặc “CSV UTF-8”.",
    ),
    "xlsx_encrypted": (
        "The Excel file is protected by a password and cannot be read. Open it, remove the "
        "password (File → Info → Protect Workbook) and save it again.",
        "Tệp Excel đang được đặt mật khẩu nên không đọc được. Hãy mở tệp, bỏ mật khẩu (Tệp → "
        "Thông tin → Bảo vệ sổ làm việc) rồi lưu lại.",
    ),
    "ods_not_supported": (
        "This is an OpenDocument spreadsheet (.ods). Save it as an Excel workbook (.xlsx) or "
        "as CSV (UTF-8).",
        "Đây là bảng tính OpenDocument (.ods). Hãy lưu thành Excel Workbook (.xlsx) hoặc CSV "
        "(UTF-8).",
    ),
    "bad_xlsx": (
        "The Excel file cannot be read: it is damaged or not really an .xlsx workbook.",
        "Không đọc được tệp Excel: tệp bị hỏng hoặc không phải sổ tính .xlsx.",
    ),
    "xlsx_too_big": (
        "The Excel file unpacks to more than {max_unpacked_mib} MiB. Copy the class's sheet "
        "into a new workbook and upload that.",
        "Tệp Excel khi giải nén lớn hơn {max_unpacked_mib} MiB. Hãy chép trang tính của lớp "
        "sang một sổ tính mới rồi tải lên.",
    ),
    "bad_header": (
        "No header row found in the first {header_rows} rows. It needs a student code column "
        "(“Mã HS”, “Mã học sinh” or “student_code”) and a name column (“Họ và tên” or "
        "“full_name”).",
        "Không tìm thấy dòng tiêu đề trong {header_rows} dòng đầu. Cần có cột mã học sinh "
        "(“Mã HS”, “Mã học sinh” hoặc “student_code”) và cột họ tên (“Họ và tên” hoặc "
        "“full_name”).",
    ),
    "duplicate_column": (
        "Two columns hold the same thing; keep only one of them.",
        "Có hai cột cùng một nội dung; hãy giữ lại một cột.",
    ),
    "too_many_rows": (
        "More than {max_rows} students (or {max_sheet_rows} rows in the sheet): this row and "
        "those after it were not read. Import one class at a time.",
        "Quá {max_rows} học sinh (hoặc {max_sheet_rows} dòng trong trang tính): từ dòng này "
        "trở đi không được đọc. Hãy nhập từng lớp một.",
    ),
    "malformed_csv": (
        "The quotation marks on this line are broken (or one cell is extremely long).",
        "Dấu ngoặc kép trên dòng này bị lỗi (hoặc có một ô quá dài).",
    ),
    "not_utf8": (
        "This line has bytes that are not UTF-8 (a damaged or mixed-up character).",
        "Dòng này có ký tự hỏng, không đúng mã UTF-8.",
    ),
    "wrong_column_count": (
        "This line has a different number of cells than the header row.",
        "Dòng này có số ô khác với dòng tiêu đề.",
    ),
    "empty_code": ("The student code is empty.", "Mã học sinh đang để trống."),
    "bad_code": (
        "A student code may only have letters A–Z, digits, dots, dashes and underscores.",
        "Mã học sinh chỉ được gồm chữ A–Z, chữ số, dấu chấm, gạch ngang và gạch dưới.",
    ),
    "code_too_long": (
        "The student code is longer than {max_code} characters.",
        "Mã học sinh dài quá {max_code} ký tự.",
    ),
    "code_as_number": (
        "Excel turned this code into a number (like 1.23E+11) and its digits are lost. "
        "Format the column as Text, type the codes again and save.",
        "Excel đã đổi mã này thành số (dạng 1,23E+11) nên mất chữ số. Hãy định dạng cột là "
        "Văn bản (Text), nhập lại mã rồi lưu.",
    ),
    "duplicate_code": (
        "This student code is already on line {first_line}.",
        "Mã học sinh này đã có ở dòng {first_line}.",
    ),
    "bad_name": (
        "The name is empty, has no letters, has control characters or starts with = + - @.",
        "Họ tên trống, không có chữ cái, có ký tự điều khiển hoặc bắt đầu bằng = + - @.",
    ),
    "name_too_long": (
        "The name is longer than {max_name} characters.",
        "Họ tên dài quá {max_name} ký tự.",
    ),
    "letters_replaced": (
        "Letters of this name were replaced by “?” before the file was uploaded "
        "(file: {encoding}): they cannot be recovered from it. Save the original list "
        "again as “CSV UTF-8” or as an Excel workbook (.xlsx).",
        "Một số chữ trong họ tên đã bị thay bằng “?” trước khi tải lên (tệp: {encoding}), không "
        "thể khôi phục từ tệp này. Hãy lưu lại danh sách gốc dạng “CSV UTF-8” hoặc sổ tính "
        "Excel (.xlsx).",
    ),
    "bad_contact": (
        "The contact has control characters or starts with = or @.",
        "Thông tin liên hệ có ký tự điều khiển hoặc bắt đầu bằng = hoặc @.",
    ),
    "contact_too_long": (
        "The contact is longer than {max_contact} characters.",
        "Thông tin liên hệ dài quá {max_contact} ký tự.",
    ),
}

_CODE: Final = re.compile(r"[A-Z0-9._-]+")
_SCIENTIFIC: Final = re.compile(r"[0-9](?:[.,][0-9]+)?E\+?[0-9]+", re.IGNORECASE)
_REPLACED: Final = re.compile(r"\w\?|\?\w|\ufffd")
"""A letter lost in a file: ``?`` next to a letter, or U+FFFD (used to tell the encodings)."""
_ZERO_FORMAT: Final = re.compile(r'^(?:"(?P<prefix>[^"]*)")?(?P<zeros>0+)$')

# Vietnamese letters outside ASCII, lower and upper case.
_VIETNAMESE_LOWER: Final = "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
VIETNAMESE_LETTERS: Final = frozenset(_VIETNAMESE_LOWER + _VIETNAMESE_LOWER.upper())


def header_key(text: str) -> str:
    """A header cell without case, diacritics or punctuation: ``"Mã HS (*)"`` → ``"ma hs"``."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^\w?]+|_", " ", bare).split())


def header_field(text: str) -> Field | None:
    """The field a header cell names, if any. A ``?`` stands for one lost letter ("H? và
    tên" from a file saved without Vietnamese letters): the header is still recognised, and
    the names below it are refused with ``letters_replaced``."""
    key = header_key(text)
    if "?" not in key:
        return HEADER_NAMES.get(key)
    pattern = re.compile(re.escape(key).replace(r"\?", "."))
    matches = {role for name, role in HEADER_NAMES.items() if pattern.fullmatch(name)}
    return matches.pop() if len(matches) == 1 else None


HEADER_NAMES: Final[dict[str, Field]] = {
    **dict.fromkeys(
        (
            "student code",
            "code",
            "student id",
            "ma hs",
            "ma hoc sinh",
            "ma so hs",
            "ma so hoc sinh",
            "mshs",
            "ma so",
            "ma",
        ),
        "student_code",
    ),
    **dict.fromkeys(
        (
            "full name",
            "name",
            "student name",
            "ho va ten",
            "ho ten",
            "ho va ten hoc sinh",
            "ho ten hoc sinh",
            "ho va ten hs",
            "ho ten hs",
            "ten hoc sinh",
        ),
        "full_name",
    ),
    **dict.fromkeys(
        ("ho", "ho dem", "ho lot", "ho va dem", "ho va ten dem", "ho va ten lot", "family name"),
        "family_name",
    ),
    **dict.fromkeys(("ten", "given name", "first name"), "given_name"),
    **dict.fromkeys(
        (
            "parent contact",
            "contact",
            "phone",
            "email",
            "parent phone",
            "parent email",
            "lien he",
            "lien he phu huynh",
            "thong tin lien he",
            "so dien thoai",
            "so dien thoai phu huynh",
            "dien thoai",
            "dien thoai phu huynh",
            "sdt",
            "sdt phu huynh",
        ),
        "parent_contact",
    ),
}
"""Header cells (as :func:`header_key` makes them) and the field each one is."""


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One valid student line of an imported file (``line`` is where it started)."""

    student_code: str
    full_name: str
    parent_contact: str | None
    line: int


@dataclass(frozen=True, slots=True)
class RosterIssue:
    """One problem: where, in which column, with which value, and why."""

    reason: str
    line: int | None = None
    column: str | None = None
    """The column's header as the file writes it."""
    field: str | None = None
    value: str | None = None
    sheet: str | None = None
    cell: str | None = None
    """A workbook's cell reference, e.g. ``B7``."""
    params: tuple[tuple[str, str | int], ...] = ()

    def messages(self) -> dict[str, str]:
        english, vietnamese = MESSAGES[self.reason]
        values = {**_LIMITS, **dict(self.params)}
        return {"en": english.format(**values), "vi": vietnamese.format(**values)}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "reason": self.reason}
        for name in ("column", "field", "value", "sheet", "cell"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(dict(self.params))
        out["messages"] = self.messages()
        return out


@dataclass(slots=True)
class RosterLine:
    """A data line of the file as read: its cells for the three fields, and what is wrong."""

    line: int
    student_code: str
    full_name: str
    parent_contact: str
    row: RosterRow | None
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line": self.line,
            "student_code": self.row.student_code if self.row else _shown(self.student_code),
            "full_name": self.row.full_name if self.row else _shown(self.full_name),
            "parent_contact": (
                self.row.parent_contact if self.row else _shown(self.parent_contact) or None
            ),
            "errors": list(self.reasons),
        }
        return out


@dataclass(slots=True)
class RosterFile:
    """Everything read from one file; ``ok`` when it may be imported."""

    format: Literal["csv", "xlsx"] | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    header_line: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    """field → the header as the file writes it."""
    ignored_columns: list[str] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    """Title rows above the header, and rows with neither a code nor a name."""
    lines: list[RosterLine] = field(default_factory=list)
    issues: list[RosterIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def rows(self) -> list[RosterRow]:
        return [line.row for line in self.lines if line.row is not None]

    def errors_json(self) -> list[dict[str, Any]]:
        return [issue.to_json() for issue in self.issues]

    def describe_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": ENCODING_NAMES.get(self.encoding or "", self.encoding),
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "header_line": self.header_line,
            "columns": dict(self.columns),
            "ignored_columns": list(self.ignored_columns),
            "skipped_lines": list(self.skipped_lines),
        }


def _shown(value: str) -> str:
    """A value as it may be given back: no lone surrogates (bad bytes), bounded length."""
    clean = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return clean if len(clean) <= MAX_VALUE_SHOWN else clean[: MAX_VALUE_SHOWN - 1] + "…"


# --- entry points -------------------------------------------------------------------------------


def parse_roster(data: bytes) -> list[RosterRow]:
    """The student rows of a roster file, or ``bad_roster`` listing every problem."""
    read = read_roster(data)
    if not read.ok:
        raise ClassroomError.bad_roster(read.errors_json())
    return read.rows


def read_roster(data: bytes) -> RosterFile:
    """Read a CSV or ``.xlsx`` roster. Pure (no I/O) and never raises on content: whatever the
    bytes, the result lists rows and problems."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("a roster file is bytes")
    out = RosterFile()
    if len(data) > MAX_ROSTER_BYTES:
        out.issues.append(RosterIssue("too_big"))
        return out
    raw = bytes(data)
    if raw.startswith(b"PK\x03\x04"):
        out.format = "xlsx"
        _read_xlsx(raw, out)
    elif raw.startswith(_OLE):
        # Both the old .xls and a password-protected .xlsx are OLE compound files; the
        # second holds an "EncryptedPackage" stream, named in UTF-16 in the directory.
        encrypted = "EncryptedPackage".encode("utf-16-le") in raw
        out.issues.append(RosterIssue("xlsx_encrypted" if encrypted else "xls_not_supported"))
    else:
        out.format = "csv"
        _read_csv(raw, out)
    return out


_OLE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIMETYPE: Final = b"application/vnd.oasis.opendocument.spreadsheet"


# --- text: encodings ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Text:
    text: str
    encoding: str


def decode_roster_text(raw: bytes) -> _Text | None:
    """The text of a CSV file and the encoding it was in (see the module docstring); None when
    it is in no encoding this can tell."""
    if raw.startswith(BOM):
        return _utf8(raw[len(BOM) :], "utf-8-sig")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _utf16(raw, "utf-16")
    utf16 = _utf16_without_bom(raw)
    if utf16 is not None:
        return _utf16(raw, utf16)
    try:
        return _Text(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "surrogateescape")
    broken = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    valid = sum(1 for c in text if ord(c) > 0x7F and not "\udc80" <= c <= "\udcff")
    if valid >= broken:
        return _utf8(raw, "utf-8")
    return _single_byte(raw)


def _utf8(raw: bytes, encoding: str) -> _Text:
    # surrogateescape keeps going past bad bytes, which come back as lone surrogates: the line
    # that has them is reported (``not_utf8``), and every other line is still checked.
    return _Text(raw.decode("utf-8", "surrogateescape"), encoding)


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _utf16_without_bom(raw: bytes) -> str | None:
    """``utf-16-le``/``-be`` when the zero bytes say so (ASCII text has one in every pair)."""
    pairs = len(raw) // 2
    if pairs < 2 or len(raw) % 2:
        return None
    even = raw[0::2].count(0)
    odd = raw[1::2].count(0)
    if odd >= 0.3 * pairs and even <= 0.05 * pairs:
        return "utf-16-le"
    if even >= 0.3 * pairs and odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _utf16(raw: bytes, codec: str) -> _Text | None:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None
    return _Text(text.removeprefix("\ufeff"), "utf-16")


def _single_byte(raw: bytes) -> _Text | None:
    """Windows-1258 or Windows-1252, whichever reads as Vietnamese (None if neither does)."""
    readings: list[tuple[int, int, str, str]] = []
    for codec in ("cp1258", "cp1252"):
        try:
            text = unicodedata.normalize("NFC", raw.decode(codec))
        except UnicodeDecodeError:
            continue
        readings.append((*_plausibility(text), codec, text))
    plausible = [r for r in readings if r[1] == 0]
    if not plausible:
        return None
    if len(plausible) == 2 and plausible[0][3] != plausible[1][3]:
        if plausible[0][0] != plausible[1][0]:
            plausible.sort(key=lambda r: -r[0])
        elif _REPLACED.search(plausible[0][3]):
            # Letters already replaced by "?": saved in a code page without them, and of the
            # two that is Windows-1252 (Windows-1258 has every Vietnamese letter).
            plausible.sort(key=lambda r: r[2] != "cp1252")
    _, _, codec, text = plausible[0]
    return _Text(text, codec)


_TONE_MARKS: Final = frozenset("\u0300\u0301\u0303\u0309\u0323")


def _plausibility(text: str) -> tuple[int, int]:
    """(Vietnamese letters, things no Vietnamese text has) in NFC text: letters outside the
    Vietnamese alphabet, marks left over, two tones in one word (a word is one syllable)."""
    good = bad = 0
    for word in re.findall(r"[^\W\d_]+", text):
        tones = 0
        for char in word:
            if char in VIETNAMESE_LETTERS:
                good += 1
                tones += any(mark in _TONE_MARKS for mark in unicodedata.normalize("NFD", char))
            elif ord(char) > 0x7F:
                bad += 1
        bad += tones > 1
    bad += sum(1 for char in text if unicodedata.combining(char))
    return good, bad


# --- CSV ----------------------------------------------------------------------------------------

_DELIMITERS: Final = (",", ";", "\t")


def _read_csv(raw: bytes, out: RosterFile) -> None:
    if not raw.strip(b" \t\r\n\x00") or raw in (BOM, b"\xff\xfe", b"\xfe\xff"):
        out.issues.append(RosterIssue("empty_file"))
        return
    decoded = decode_roster_text(raw)
    if decoded is None:
        out.issues.append(RosterIssue("unknown_encoding"))
        return
    out.encoding = decoded.encoding
    text = decoded.text
    if not text.strip(" \t\r\n\x00\ufeff"):
        out.issues.append(RosterIssue("empty_file"))
        return
    forced: str | None = None
    first_end = text.find("\n")
    first = (text if first_end < 0 else text[:first_end]).strip()
    skip_first = False
    if first.lower().startswith("sep=") and len(first) == 5 and first[4] in _DELIMITERS:
        forced, skip_first = first[4], True
    candidates = (forced,) if forced else _DELIMITERS
    chosen: str | None = None
    for delimiter in candidates:
        if _find_header(_csv_rows(text, delimiter, skip_first)) is not None:
            chosen = delimiter
            break
    if chosen is None:
        counts = {d: first.count(d) for d in candidates}
        chosen = max(candidates, key=lambda d: counts[d])
    out.delimiter = chosen
    _read_table(_csv_rows(text, chosen, skip_first), out, csv_lines=True)


@dataclass(slots=True)
class _Row:
    line: int
    cells: list[str]
    malformed: bool = False
    cell_refs: list[str] | None = None  # a workbook's A1 references, by column


def _csv_rows(text: str, delimiter: str, skip_first: bool) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield _Row(line, [], malformed=True)
            continue
        if skip_first and line == 1:
            continue
        yield _Row(line, cells)


# --- xlsx ---------------------------------------------------------------------------------------


def _read_xlsx(raw: bytes, out: RosterFile) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            parts = archive.infolist()
            if len(parts) > MAX_XLSX_PARTS or sum(p.file_size for p in parts) > (
                MAX_XLSX_UNPACKED_BYTES
            ):
                out.issues.append(RosterIssue("xlsx_too_big"))
                return
            if "mimetype" in archive.namelist() and archive.read("mimetype")[:100].startswith(
                _ODS_MIMETYPE
            ):
                out.issues.append(RosterIssue("ods_not_supported"))
                return
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        # What zipfile raises for a damaged archive: no central directory (BadZipFile), a
        # negative or impossible offset (ValueError, OSError), a cut-off file (EOFError), a
        # compression method it cannot undo (NotImplementedError). All are "not a workbook".
        out.issues.append(RosterIssue("bad_xlsx"))
        return
    # Any exception from here on is a workbook openpyxl cannot read: XML errors (expat refuses
    # entity bombs), bad zip members, unexpected parts. None of them may escape.
    try:
        _read_workbook(raw, out)
    except Exception:
        out.issues = [RosterIssue("bad_xlsx")]
        out.lines = []


def _read_workbook(raw: bytes, out: RosterFile) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    try:
        sheets = list(workbook.worksheets)[:50]
        if not sheets:
            out.issues.append(RosterIssue("bad_header"))
            return
        chosen = sheets[0]
        for sheet in sheets:
            sheet.reset_dimensions()  # some writers record a wrong used range
            if _find_header(_sheet_rows(sheet)) is not None:
                chosen = sheet
                break
        out.sheet = chosen.title
        _read_table(_sheet_rows(chosen), out, csv_lines=False)
    finally:
        workbook.close()


def _sheet_rows(sheet: Any) -> Iterator[_Row]:
    from openpyxl.utils import get_column_letter

    letters = [get_column_letter(i) for i in range(1, MAX_COLUMNS + 1)]
    for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), 1):
        if number > MAX_SHEET_ROWS:
            # Formatted but empty rows far down are common; a value there is over the limit.
            if any(getattr(cell, "value", None) not in (None, "") for cell in cells):
                yield _Row(number, [])
                return
            continue
        values = [_cell_text(cell) for cell in cells]
        yield _Row(number, values, cell_refs=[f"{c}{number}" for c in letters[: len(values)]])


def _cell_text(cell: Any) -> str:
    """A cell as the school sees it in Excel: whole numbers without ``.0``, leading zeros of a
    ``0000`` number format kept, dates as ISO dates."""
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        match = _ZERO_FORMAT.match(str(getattr(cell, "number_format", "") or ""))
        if match and value >= 0:
            text = (match["prefix"] or "") + text.zfill(len(match["zeros"]))
        return text
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# --- the table: header, then student rows -------------------------------------------------------


@dataclass(slots=True)
class _Header:
    row: _Row
    fields: dict[str, int]  # field → column index
    names: dict[str, str]  # field → header text
    ignored: list[str]
    duplicates: list[tuple[int, str]]  # (column index, header text) of a second column


def _header_of(row: _Row) -> _Header | None:
    fields: dict[str, int] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    duplicates: list[tuple[int, str]] = []
    for index, cell in enumerate(row.cells):
        text = " ".join(cell.split())
        if not text:
            continue
        role = header_field(text)
        if role is None:
            ignored.append(text)
        elif role in fields:
            if role == "parent_contact":
                ignored.append(text)
            else:
                duplicates.append((index, text))
        else:
            fields[role] = index
            names[role] = text
    has_name = "full_name" in fields or {"family_name", "given_name"} <= fields.keys()
    if "student_code" not in fields or not has_name:
        return None
    if "full_name" in fields:
        for part in ("family_name", "given_name"):
            if part in fields:
                ignored.append(names.pop(part))
                del fields[part]
    return _Header(row, fields, names, ignored, duplicates)


def _find_header(rows: Iterable[_Row]) -> _Header | None:
    seen = 0
    for row in rows:
        if row.malformed:
            seen += 1
        elif any(cell.strip() for cell in row.cells):
            seen += 1
            header = _header_of(row)
            if header is not None:
                return header
        if seen >= HEADER_SEARCH_ROWS or row.line > MAX_SHEET_ROWS:
            return None
    return None


def _read_table(rows: Iterable[_Row], out: RosterFile, *, csv_lines: bool) -> None:
    iterator = iter(rows)
    header: _Header | None = None
    before: list[_Row] = []
    for row in iterator:
        if row.line > MAX_SHEET_ROWS:
            break
        if row.malformed or any(cell.strip() for cell in row.cells):
            before.append(row)
            if not row.malformed:
                header = _header_of(row)
                if header is not None:
                    break
            if len(before) >= HEADER_SEARCH_ROWS:
                break
    if header is None:
        first = next((r for r in before if not r.malformed), None)
        shown = " | ".join(" ".join(c.split()) for c in first.cells if c.strip()) if first else ""
        out.issues.append(
            RosterIssue(
                "bad_header",
                line=first.line if first else (before[0].line if before else 1),
                value=_shown(shown) if shown else None,
                sheet=out.sheet,
            )
        )
        return
    out.header_line = header.row.line
    out.skipped_lines.extend(r.line for r in before if r is not header.row)
    out.columns = {
        name: header.names[name]
        for name in ("student_code", "full_name", "family_name", "given_name", "parent_contact")
        if name in header.names
    }
    out.ignored_columns = header.ignored
    for index, text in header.duplicates:
        out.issues.append(
            RosterIssue(
                "duplicate_column",
                line=header.row.line,
                column=text,
                sheet=out.sheet,
                cell=header.row.cell_refs[index] if header.row.cell_refs else None,
            )
        )
    width = len(header.row.cells)
    while width and not header.row.cells[width - 1].strip():
        width -= 1
    seen_codes: dict[str, int] = {}
    students = 0
    for row in iterator:
        if row.line > MAX_SHEET_ROWS:
            out.issues.append(RosterIssue("too_many_rows", line=row.line, sheet=out.sheet))
            break
        if row.malformed:
            out.issues.append(RosterIssue("malformed_csv", line=row.line))
            continue
        if not any(cell.strip() for cell in row.cells):
            continue
        if any(_has_surrogate(cell) for cell in row.cells):
            out.issues.append(RosterIssue("not_utf8", line=row.line))
            continue
        students += 1
        if students > MAX_ROSTER_ROWS:
            out.issues.append(RosterIssue("too_many_rows", line=row.line, sheet=out.sheet))
            break
        _read_line(row, header, width, csv_lines, seen_codes, out)
    if any(_has_surrogate(cell) for cell in header.row.cells):
        out.issues.insert(0, RosterIssue("not_utf8", line=header.row.line))


def _cell(row: _Row, header: _Header, name: str) -> str:
    index = header.fields.get(name)
    if index is None or index >= len(row.cells):
        return ""
    return row.cells[index]


def _read_line(
    row: _Row,
    header: _Header,
    width: int,
    csv_lines: bool,
    seen_codes: dict[str, int],
    out: RosterFile,
) -> None:
    code_cell = _unescape(_cell(row, header, "student_code"))
    if "full_name" in header.fields:
        name_cell = _unescape(_cell(row, header, "full_name"))
    else:
        name_cell = " ".join(
            part.strip()
            for part in (_cell(row, header, "family_name"), _cell(row, header, "given_name"))
            if part.strip()
        )
    contact_cell = _unescape(_cell(row, header, "parent_contact"))
    if not (code_cell.strip() or name_cell.strip() or contact_cell.strip()):
        out.skipped_lines.append(row.line)  # a total, a signature, a note under the table
        return

    def ref(name: str) -> str | None:
        index = header.fields.get(name)
        if name == "full_name" and index is None:
            index = header.fields.get("family_name")
        if row.cell_refs is None or index is None or index >= len(row.cell_refs):
            return None
        return row.cell_refs[index]

    line = RosterLine(row.line, code_cell, name_cell, contact_cell, None)
    out.lines.append(line)

    def problem(reason: str, name: str | None, value: str | None, **params: str | int) -> None:
        line.reasons.append(reason)
        column = header.names.get(name or "") or (
            header.names.get("family_name") if name == "full_name" else None
        )
        out.issues.append(
            RosterIssue(
                reason,
                line=row.line,
                column=column,
                field=name,
                value=_shown(value) if value is not None else None,
                sheet=out.sheet,
                cell=ref(name) if name else None,
                params=tuple(params.items()),
            )
        )

    if csv_lines:
        cells = list(row.cells)
        while len(cells) > width and not cells[-1].strip():
            cells.pop()
        if len(cells) != width:
            problem("wrong_column_count", None, None, cells=len(cells), expected=width)
            return
    code = unicodedata.normalize("NFC", code_cell).strip().upper()
    if not code:
        problem("empty_code", "student_code", code_cell)
    elif _SCIENTIFIC.fullmatch(code):
        problem("code_as_number", "student_code", code_cell)
    elif len(code) > MAX_STUDENT_CODE_LENGTH:
        problem("code_too_long", "student_code", code_cell)
    elif not _CODE.fullmatch(code):
        problem("bad_code", "student_code", code_cell)
    elif code in seen_codes:
        problem("duplicate_code", "student_code", code_cell, first_line=seen_codes[code])
    else:
        seen_codes[code] = row.line
    name, name_reason = _roster_name(name_cell)
    if name_reason == "letters_replaced":
        problem(
            name_reason,
            "full_name",
            name_cell,
            encoding=ENCODING_NAMES.get(out.encoding or "", "Excel"),
        )
    elif name_reason is not None:
        problem(name_reason, "full_name", name_cell)
    contact, contact_reason = _contact(contact_cell)
    if contact_reason is not None:
        problem(contact_reason, "parent_contact", contact_cell)
    if not line.reasons and name is not None:
        line.row = RosterRow(code, name, contact, row.line)


def _roster_name(value: str) -> tuple[str | None, str | None]:
    """The clean name, or the reason it is refused."""
    name = unicodedata.normalize("NFC", value)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name):
        return None, "bad_name"
    name = " ".join(name.split())
    if not name:
        return None, "bad_name"
    if "?" in name or "\ufffd" in name:
        return None, "letters_replaced"  # no name has a question mark: a letter was lost
    if len(name) > MAX_NAME_LENGTH:
        return None, "name_too_long"
    if name.startswith(FORMULA_START):
        return None, "bad_name"
    if not any(unicodedata.category(char).startswith("L") for char in name):
        return None, "bad_name"
    return name, None


def _contact(value: str) -> tuple[str | None, str | None]:
    clean = unicodedata.normalize("NFC", value)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in clean):
        return None, "bad_contact"
    clean = " ".join(clean.split())
    if not clean:
        return None, None
    if len(clean) > MAX_CONTACT_LENGTH:
        return None, "contact_too_long"
    if clean.startswith(("=", "@")):
        return None, "bad_contact"
    return clean, None


def _unescape(cell: str) -> str:
    """Undo the export's protective quote (a ``'`` before ``= + - @``)."""
    stripped = cell.lstrip()
    if stripped[:1] == "'" and stripped[1:2] in FORMULA_START:
        return stripped[1:]
    return cell
