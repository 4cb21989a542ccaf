"""Write the roster files of this folder, as schools' programs save them.

    python -m tests.classroom.rosters.make_fixtures

The files are kept in the repository so that the tests read real bytes, not bytes built by the
same code they test; this script says how each one was made. Windows-1258 is written the way
Windows writes it: a precomposed letter where the code page has one, else the base letter and
a combining tone mark.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import openpyxl
from openpyxl.styles import Font

HERE = Path(__file__).parent
TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")

CLASS_7A = [
    ("HS001", "Nguyễn Văn An", "0912 345 678"),
    ("HS002", "Trần Thị Bích Ngọc", ""),
    ("HS003", "Lê Hoàng Đức", "me.duc@example.vn"),
    ("HS004", "Phạm Thị Thu Hằng", "Mẹ: 0987 654 321; bố: 0903 111 222"),
    ("HS005", "Võ Nguyễn Quỳnh Như", ""),
    ("HS006", "Đặng Quốc Bảo", "+84 935 000 111"),
]


def cp1258(text: str) -> bytes:
    """``text`` in Windows-1258 as Windows converts it (Python's codec only maps code points)."""
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", char)
        tone = "".join(c for c in parts if c in TONES)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
        out += (base + tone).encode("cp1258")
    return bytes(out)


def excel_csv(rows: list[list[str]], delimiter: str) -> str:
    """CSV as Excel writes it: CRLF, a cell quoted only when it holds the separator, a quote
    or a line break."""

    def cell(value: str) -> str:
        if any(c in value for c in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(delimiter.join(cell(v) for v in row) + "\r\n" for row in rows)


def vietnamese_table() -> list[list[str]]:
    header = ["STT", "Mã HS", "Họ và tên", "Ngày sinh", "SĐT phụ huynh"]
    body = [
        [str(n), code, name, f"0{n}/09/2013", contact]
        for n, (code, name, contact) in enumerate(CLASS_7A, 1)
    ]
    return [header, *body]


def workbook() -> bytes:
    """A class list as school offices lay it out: an instructions sheet first, then the
    class's sheet with a merged title, a blank row, the header, numeric codes, a phone number
    kept with its leading zero by a number format, and a total under the table."""
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Hướng dẫn"
    notes["A1"] = "Nhập danh sách học sinh ở trang “Lớp 7A”."
    sheet = book.create_sheet("Lớp 7A")
    sheet["A1"] = "TRƯỜNG THCS NGUYỄN DU"
    sheet.merge_cells("A1:E1")
    sheet["A2"] = "DANH SÁCH HỌC SINH LỚP 7A — NĂM HỌC 2025-2026"
    sheet["A2"].font = Font(bold=True)
    sheet.merge_cells("A2:E2")
    sheet.append([])
    sheet.append(["STT", "Mã học sinh", "Họ và tên", "Giới tính", "Số điện thoại"])
    students = [
        (1001, "Nguyễn Văn An", "Nam", 912345678),
        (1002.0, "Trần Thị Bích Ngọc", "Nữ", None),
        (1003, unicodedata.normalize("NFD", "Lê Hoàng Đức"), "Nam", "me.duc@example.vn"),
        (1004, "Phạm   Thị Thu Hằng ", "Nữ", 987654321),
    ]
    for number, (code, name, gender, phone) in enumerate(students, 1):
        sheet.append([number, code, name, gender, phone])
        if isinstance(phone, int):
            sheet.cell(row=sheet.max_row, column=5).number_format = "0000000000"
    sheet.append([])
    sheet.append(["Tổng số: 4 học sinh"])
    sheet.merge_cells(f"A{sheet.max_row}:C{sheet.max_row}")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def workbook_with_errors() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "7B"
    sheet.append(["Mã HS", "Họ", "Tên"])
    sheet.append(["HS101", "Nguyễn Văn", "An"])
    sheet.append(["HS102", "Nguy?n Th?", "Bình"])
    sheet.append(["HS101", "Trần", "Cường"])
    sheet.append([1.23456789012e17, "Lê", "Dũng"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def fixtures() -> dict[str, bytes]:
    table = vietnamese_table()
    lost = [["Mã HS", "Họ và tên"], *([code, name] for code, name, _ in CLASS_7A[:3])]
    return {
        # Excel (Vietnamese regional settings) → Save As → "CSV UTF-8 (Comma delimited)".
        "excel-semicolon-utf8-bom.csv": b"\xef\xbb\xbf" + excel_csv(table, ";").encode("utf-8"),
        # Excel on Vietnamese Windows → Save As → "CSV (Comma delimited)": the ANSI code page.
        "windows-1258.csv": cp1258(excel_csv(table, ",")),
        # Excel on Western Windows → "CSV (Comma delimited)": letters outside 1252 become ?.
        "windows-1252-lost-letters.csv": excel_csv(lost, ",").encode("cp1252", "replace"),
        # Excel → Save As → "Unicode Text": UTF-16 LE with a BOM, tab-separated.
        "excel-unicode-text.txt": "\ufeff".encode("utf-16-le")
        + excel_csv(table, "\t").encode("utf-16-le"),
        "class-7a.xlsx": workbook(),
        "class-7b-errors.xlsx": workbook_with_errors(),
    }


def main() -> None:
    for name, data in fixtures().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
