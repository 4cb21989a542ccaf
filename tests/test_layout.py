"""The arrows between the packages hold: web → signaling → {classroom, media}, and classroom
and media never import each other (docs/layout.md).

Read from the source (every ``import`` and ``from … import`` of every module, also those
inside functions or under ``TYPE_CHECKING``), so an arrow that points the wrong way fails here
before anyone has to untangle it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("web", "signaling", "classroom", "media")

#: What each package must never import (its own name aside, anything else is allowed).
FORBIDDEN: dict[str, frozenset[str]] = {
    "web": frozenset(),
    "signaling": frozenset({"web", "starlette", "sqlalchemy"}),
    "classroom": frozenset({"web", "signaling", "media", "aiortc", "aioice", "starlette"}),
    "media": frozenset({"web", "signaling", "classroom", "starlette", "sqlalchemy"}),
}
#: Modules of ``classroom`` that are the live lesson's rules: plain code, no I/O at all.
SANS_IO = ("classroom/live.py", "classroom/moderation.py", "classroom/chat.py")
IO_MODULES = frozenset({"asyncio", "socket", "sqlalchemy", "redis", "aiosqlite", "asyncpg"})


def imported(path: Path) -> set[str]:
    """The top-level package of every absolute import in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    return sorted(
        p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_no_arrow_points_the_wrong_way(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported(path) & FORBIDDEN[package])
        for path in modules(package)
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_signaling_reaches_media_through_its_port_only() -> None:
    """Signaling drives the SFU through ``media.port`` (plain data, async), never a
    transport, router or the service behind the port."""
    reached: dict[str, list[str]] = {}
    for path in modules("signaling"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("media")
        ] + [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.startswith("media")
        ]
        wrong = [n for n in names if n != "media.port"]
        if wrong:
            reached[str(path.relative_to(ROOT))] = wrong
    assert reached == {}


def test_the_check_sees_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from media.service import MediaService\n"
        "def f():\n    import signaling.session\n"
        "from . import sibling\n"
    )
    assert imported(module) == {"typing", "media", "signaling"}


@pytest.mark.parametrize("module", SANS_IO)
def test_the_lessons_rules_do_no_io(module: str) -> None:
    path = ROOT / module
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not imported(path) & IO_MODULES
    awaiting = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith)
    ]
    assert awaiting == []
