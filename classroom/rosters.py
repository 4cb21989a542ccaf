"""Class rosters: the students of a class, imported from and exported to CSV.

The file is what a school office already has in a spreadsheet::

    student_code,full_name,parent_contact
    0123456789,Nguyễn Văn An,0912 345 678
    0123456790,Trần Thị Bích Ngọc,

Import rules, and why:

* **UTF-8, with or without a BOM** (Excel writes one, most other tools do not), CRLF or LF.
  Names are NFC-normalised: a Vietnamese keyboard may type "ễ" as one code point or as "e"
  plus two combining marks, and the same student must not become two spellings.
* **All or nothing.** Every bad line is reported with its line number and a reason code
  (:data:`ROW_REASONS`), and a file with any error imports nothing: a half-imported class is
  worse than none, because nobody notices the missing students until a lesson.
* **Re-importing is safe.** Rows are matched by ``student_code``: new codes are added, changed
  names or contacts are updated, identical rows are left alone. With ``withdraw_missing`` the
  students absent from the file are marked withdrawn (never deleted: their attendance stays).
* **Explicit limits**: :data:`MAX_ROSTER_BYTES`, :data:`MAX_ROSTER_ROWS`, code and contact
  lengths; names follow :func:`classroom.lessons.normalise_name` (1–64 characters).
* **Spreadsheet formulas.** A cell starting with ``= + - @`` is a formula to Excel (CSV
  injection). Names may not start with one; contacts may (``+84 …``), so the export prefixes
  such cells with ``'`` and the import removes that prefix again, keeping the round trip exact.
  (So a cell that really starts with ``'`` and then one of those characters loses the ``'``:
  it is what a spreadsheet means by it, too.)

Export is UTF-8 *with* a BOM and CRLF line ends, so Excel on Windows shows Vietnamese
correctly when the file is double-clicked.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from classroom.errors import ClassroomError
from classroom.lessons import normalise_name

log = logging.getLogger(__name__)

MAX_ROSTER_BYTES: Final = 1024 * 1024
MAX_ROSTER_ROWS: Final = 2000
MAX_STUDENT_CODE_LENGTH: Final = 32
MAX_CONTACT_LENGTH: Final = 200
HEADER: Final = ("student_code", "full_name", "parent_contact")
BOM: Final = b"\xef\xbb\xbf"

ROW_REASONS: Final = (
    "too_big",  # the whole file (line None) is over MAX_ROSTER_BYTES
    "bad_header",  # the first row is not exactly the three column names
    "malformed_csv",  # broken quoting
    "not_utf8",  # the line has bytes that are not UTF-8
    "wrong_column_count",  # not three columns
    "empty_code",
    "bad_code",  # not 1-32 of A-Z 0-9 . _ -
    "duplicate_code",  # a code already seen on an earlier line
    "bad_name",  # empty, too long, control characters, no letter, starts like a formula
    "bad_contact",  # too long, control characters, starts with = or @
    "too_many_rows",  # MAX_ROSTER_ROWS reached: this line and the rest are not read
)
"""The reason codes of a ``bad_roster`` error, one per problem found on a line."""

FORMULA_START: Final = ("=", "+", "-", "@")
_CODE: Final = re.compile(rf"[A-Z0-9._-]{{1,{MAX_STUDENT_CODE_LENGTH}}}")


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One valid student line of an imported file (``line`` is where it started)."""

    student_code: str
    full_name: str
    parent_contact: str | None
    line: int


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """A student of a class. ``withdrawn_at`` is set when they left the class."""

    id: str
    class_id: str
    student_code: str
    full_name: str
    parent_contact: str | None
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    withdrawn: int

    def to_json(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "withdrawn": self.withdrawn,
        }


class RosterStore(Protocol):
    """Durable roster entries. Every write is committed before the method returns."""

    async def roster(self, class_id: str, *, include_withdrawn: bool = False) -> list[RosterEntry]:
        """Entries of a class ordered by student code."""
        ...

    async def import_rows(
        self,
        class_id: str,
        rows: Sequence[RosterRow],
        now: datetime,
        *,
        withdraw_missing: bool,
    ) -> ImportResult:
        """Apply validated rows in one transaction (see the module docstring)."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class RosterService:
    """Importing and exporting class rosters. The caller has checked that the class exists
    and that the user may change it."""

    def __init__(self, store: RosterStore, *, clock: Callable[[], datetime] = _now) -> None:
        self._store = store
        self._clock = clock

    async def import_csv(
        self, class_id: str, data: bytes, *, withdraw_missing: bool = False
    ) -> ImportResult:
        """Validate the whole file, then apply it; ``bad_roster`` (nothing imported) if any
        line is bad."""
        rows = parse_roster(data)
        result = await self._store.import_rows(
            class_id, rows, self._clock(), withdraw_missing=withdraw_missing
        )
        log.info(
            "roster of class %s imported: %d added, %d updated, %d unchanged, %d withdrawn",
            class_id,
            result.added,
            result.updated,
            result.unchanged,
            result.withdrawn,
        )
        return result

    async def entries(self, class_id: str, *, include_withdrawn: bool = False) -> list[RosterEntry]:
        return await self._store.roster(class_id, include_withdrawn=include_withdrawn)

    async def export_csv(self, class_id: str) -> bytes:
        """The class's current students as a file :meth:`import_csv` reads back unchanged."""
        return render_roster(await self._store.roster(class_id))


# --- parsing ------------------------------------------------------------------------------------


def parse_roster(data: bytes) -> list[RosterRow]:
    """The student rows of a roster file, or ``bad_roster`` listing every bad line.

    Pure: no I/O, so the parser can be fuzzed on its own. Line numbers are physical lines of
    the file, 1-based, where the row starts. Blank lines (and rows of empty cells, which
    spreadsheets leave behind) are skipped.
    """
    if not isinstance(data, bytes | bytearray):
        raise TypeError("a roster file is bytes")
    if len(data) > MAX_ROSTER_BYTES:
        raise ClassroomError.bad_roster([{"line": None, "reason": "too_big"}])
    raw = bytes(data)
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    # surrogateescape keeps going past bad bytes, which come back as lone surrogates: the
    # line that has them is reported, and every other line is still checked.
    text = raw.decode("utf-8", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    errors: list[dict[str, Any]] = []
    rows: list[RosterRow] = []
    seen_codes: set[str] = set()
    header_seen = False
    row_count = 0
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            errors.append({"line": line, "reason": "malformed_csv"})
            continue
        if all(not cell.strip() for cell in cells):
            continue
        if any(_has_surrogate(cell) for cell in cells):
            errors.append({"line": line, "reason": "not_utf8"})
            header_seen = True
            continue
        if not header_seen:
            header_seen = True
            if tuple(cell.strip().lower() for cell in cells) != HEADER:
                errors.append({"line": line, "reason": "bad_header"})
            continue
        row_count += 1
        if row_count > MAX_ROSTER_ROWS:
            errors.append({"line": line, "reason": "too_many_rows"})
            break
        row, reasons = _parse_row(cells, line, seen_codes)
        errors.extend({"line": line, "reason": reason} for reason in reasons)
        if row is not None:
            rows.append(row)
    if not header_seen:
        errors.append({"line": 1, "reason": "bad_header"})
    if errors:
        raise ClassroomError.bad_roster(errors)
    return rows


def _parse_row(
    cells: list[str], line: int, seen_codes: set[str]
) -> tuple[RosterRow | None, list[str]]:
    # Spreadsheets often leave empty cells after the last column; those are not columns.
    while len(cells) > len(HEADER) and not cells[-1].strip():
        cells = cells[:-1]
    if len(cells) != len(HEADER):
        return None, ["wrong_column_count"]
    reasons: list[str] = []
    code = _unescape(cells[0]).strip().upper()
    if not code:
        reasons.append("empty_code")
    elif not _CODE.fullmatch(code):
        reasons.append("bad_code")
    elif code in seen_codes:
        reasons.append("duplicate_code")
    else:
        seen_codes.add(code)
    name = _roster_name(_unescape(cells[1]))
    if name is None:
        reasons.append("bad_name")
    contact, contact_ok = _contact(_unescape(cells[2]))
    if not contact_ok:
        reasons.append("bad_contact")
    if reasons or name is None:
        return None, reasons
    return RosterRow(code, name, contact, line), []


def _roster_name(value: str) -> str | None:
    try:
        name = normalise_name(value)
    except ClassroomError:
        return None
    if name.startswith(FORMULA_START):
        return None
    if not any(unicodedata.category(char).startswith("L") for char in name):
        return None
    return name


def _contact(value: str) -> tuple[str | None, bool]:
    clean = unicodedata.normalize("NFC", value)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in clean):
        return None, False
    clean = " ".join(clean.split())
    if not clean:
        return None, True
    if len(clean) > MAX_CONTACT_LENGTH or clean.startswith(("=", "@")):
        return None, False
    return clean, True


def _unescape(cell: str) -> str:
    """Undo :func:`csv_cell`'s protective quote."""
    stripped = cell.lstrip()
    if stripped[:1] == "'" and stripped[1:2] in FORMULA_START:
        return stripped[1:]
    return cell


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


# --- export -------------------------------------------------------------------------------------


def csv_cell(value: object) -> str:
    """A value as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with BOM and CRLF, every cell through :func:`csv_cell`."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return BOM + buffer.getvalue().encode("utf-8")


def render_roster(entries: Iterable[RosterEntry | RosterRow]) -> bytes:
    """A roster file in the import format (UTF-8 with BOM, CRLF)."""
    return csv_bytes(
        HEADER,
        ((entry.student_code, entry.full_name, entry.parent_contact or "") for entry in entries),
    )
