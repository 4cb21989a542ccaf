"""The browser client's pure logic, run under Node's own test runner (``node --test``).

The modules in ``web/static/js`` are ES modules served as they are (no build step), and the
tests in ``tests/web/js/*.test.js`` import them. Node reads a ``.js`` file as an ES module only
inside a package that says so, so each run copies the modules and the tests into a temporary
folder with ``{"type": "module"}`` in its ``package.json``: the files are the ones served, not
copies kept by hand.

Without Node.js this skips on a laptop, but fails under ``CI`` (.ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "web" / "static" / "js"
TESTS = Path(__file__).parent / "js"


@pytest.mark.parametrize("test_file", sorted(TESTS.glob("*.test.js")), ids=lambda p: p.name)
def test_client_logic(test_file: Path, tmp_path: Path) -> None:
    if shutil.which("node") is None:
        unavailable("Node.js is not installed: the client's logic is not tested")
    shutil.copytree(MODULES, tmp_path / "js")
    (tmp_path / "tests").mkdir()
    shutil.copy(test_file, tmp_path / "tests" / test_file.name)
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}), "utf-8")
    result = subprocess.run(
        ["node", "--test", f"tests/{test_file.name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout, result.stdout
