"""Class rosters: the students of a class, imported from the school's files and exported to CSV.

The export format, which the import also reads::

    student_code,full_name,parent_contact
    0123456789,Nguyễn Văn An,0912 345 678
    0123456790,Trần Thị Bích Ngọc,

Reading files is :mod:`classroom.roster_files`: Excel workbooks, CSV with ``,`` ``;`` or tab,
UTF-8, UTF-16, Windows-1258 and Windows-1252, Vietnamese or English headers. Import rules, and
why:

* **All or nothing.** Every problem is reported with its line, column, value and a reason code
  (:data:`ROW_REASONS`), and a file with any problem imports nothing: a half-imported class is
  worse than none, because nobody notices the missing students until a lesson.
* **Look before you import.** :meth:`RosterService.preview` says what an import would do —
  each row added, updated (renamed, new contact, back after a withdrawal) or unchanged, and
  who is not in the file — without writing anything.
* **Re-importing is safe.** Rows are matched by ``student_code``: new codes are added, changed
  names or contacts are updated, identical rows are left alone. With ``withdraw_missing`` the
  students absent from the file are marked withdrawn (never deleted: their attendance stays).
* **Names** are NFC-normalised with whitespace collapsed: a Vietnamese keyboard may type "ễ" as
  one code point or as "e" plus two combining marks, and the same student must not become two
  spellings.
* **Spreadsheet formulas.** A cell starting with ``= + - @`` is a formula to Excel (CSV
  injection). Names may not start with one; contacts may (``+84 …``), so the export prefixes
  such cells with ``'`` and the import removes that prefix again, keeping the round trip exact.
  (So a cell that really starts with ``'`` and then one of those characters loses the ``'``:
  it is what a spreadsheet means by it, too.)

Export is UTF-8 *with* a BOM and CRLF line ends, so Excel on Windows shows Vietnamese
correctly when the file is double-clicked.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from classroom.roster_files import (
    BOM,
    FORMULA_START,
    HEADER,
    MAX_CONTACT_LENGTH,
    MAX_ROSTER_BYTES,
    MAX_ROSTER_ROWS,
    MAX_STUDENT_CODE_LENGTH,
    ROW_REASONS,
    RosterFile,
    RosterRow,
    parse_roster,
    read_roster,
)

__all__ = [
    "BOM",
    "FORMULA_START",
    "HEADER",
    "MAX_CONTACT_LENGTH",
    "MAX_ROSTER_BYTES",
    "MAX_ROSTER_ROWS",
    "MAX_STUDENT_CODE_LENGTH",
    "ROW_REASONS",
    "ImportPlan",
    "ImportResult",
    "RosterEntry",
    "RosterFile",
    "RosterRow",
    "RosterService",
    "RosterStore",
    "csv_bytes",
    "csv_cell",
    "parse_roster",
    "plan_import",
    "read_roster",
    "render_roster",
]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class PlannedRow:
    """What an import would do with one valid row of the file."""

    row: RosterRow
    status: str  # "added", "updated" or "unchanged"
    changes: tuple[str, ...] = ()
    """For ``updated``: ``full_name``, ``parent_contact``, ``readmitted`` (was withdrawn)."""
    previous: RosterEntry | None = None


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """An import worked out against the class's current roster, nothing written."""

    rows: tuple[PlannedRow, ...]
    missing: tuple[RosterEntry, ...]
    """Active students who are not in the file: withdrawn with ``withdraw_missing``, else kept."""
    withdraw_missing: bool

    def result(self) -> ImportResult:
        """The counts :meth:`RosterStore.import_rows` would answer."""
        count = {status: 0 for status in ("added", "updated", "unchanged")}
        for planned in self.rows:
            count[planned.status] += 1
        withdrawn = len(self.missing) if self.withdraw_missing else 0
        return ImportResult(count["added"], count["updated"], count["unchanged"], withdrawn)


def plan_import(
    entries: Iterable[RosterEntry], rows: Sequence[RosterRow], *, withdraw_missing: bool
) -> ImportPlan:
    """The import semantics of :meth:`RosterStore.import_rows`, without the writing.
    ``entries`` are all of the class's entries, withdrawn ones included."""
    existing = {entry.student_code: entry for entry in entries}
    planned = []
    for row in rows:
        current = existing.get(row.student_code)
        if current is None:
            planned.append(PlannedRow(row, "added"))
            continue
        changes = tuple(
            change
            for change, differs in (
                ("full_name", current.full_name != row.full_name),
                ("parent_contact", current.parent_contact != row.parent_contact),
                ("readmitted", current.withdrawn_at is not None),
            )
            if differs
        )
        planned.append(PlannedRow(row, "updated" if changes else "unchanged", changes, current))
    in_file = {row.student_code for row in rows}
    missing = tuple(
        entry
        for code, entry in sorted(existing.items())
        if code not in in_file and entry.withdrawn_at is None
    )
    return ImportPlan(tuple(planned), missing, withdraw_missing)


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
        """Validate the whole file (CSV or ``.xlsx``), then apply it; ``bad_roster`` (nothing
        imported) if anything in it is wrong."""
        # Reading a workbook takes a fraction of a second of CPU: off the event loop, which
        # also carries the live lessons' signaling and media.
        rows = await asyncio.to_thread(parse_roster, bytes(data))
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

    async def preview(
        self, class_id: str, data: bytes, *, withdraw_missing: bool = False
    ) -> dict[str, Any]:
        """What :meth:`import_csv` would do with ``data``, as JSON, writing nothing: how the
        file was read, every data row with its problems or its planned change, every problem,
        and the students who are not in the file. ``ok`` is whether the import would run."""
        read = await asyncio.to_thread(read_roster, bytes(data))
        entries = await self._store.roster(class_id, include_withdrawn=True)
        plan = plan_import(entries, read.rows, withdraw_missing=withdraw_missing)
        by_line = {planned.row.line: planned for planned in plan.rows}
        rows = []
        for line in read.lines:
            shown = line.to_json()
            planned = by_line.get(line.line)
            if planned is None:
                shown["status"] = "error"
            else:
                shown["status"] = planned.status
                shown["changes"] = list(planned.changes)
                if planned.previous is not None and planned.changes:
                    shown["previous"] = {
                        "full_name": planned.previous.full_name,
                        "parent_contact": planned.previous.parent_contact,
                    }
            rows.append(shown)
        result = plan.result()
        return {
            "ok": read.ok,
            "file": read.describe_json(),
            "withdraw_missing": withdraw_missing,
            "summary": {
                **result.to_json(),
                "kept": 0 if withdraw_missing else len(plan.missing),
                "rows": len(read.lines),
                "errors": len(read.issues),
            },
            "rows": rows,
            "missing": [
                {
                    "student_code": entry.student_code,
                    "full_name": entry.full_name,
                    "action": "withdraw" if withdraw_missing else "keep",
                }
                for entry in plan.missing
            ],
            "errors": read.errors_json(),
        }

    async def entries(self, class_id: str, *, include_withdrawn: bool = False) -> list[RosterEntry]:
        return await self._store.roster(class_id, include_withdrawn=include_withdrawn)

    async def export_csv(self, class_id: str) -> bytes:
        """The class's current students as a file :meth:`import_csv` reads back unchanged."""
        return render_roster(await self._store.roster(class_id))


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
