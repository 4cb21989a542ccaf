"""The server the benchmark starts runs the code of the benchmark's own checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.server import CHECKOUT, server_env

ROOT = Path(__file__).resolve().parents[2]


def test_server_imports_this_checkout_from_its_temporary_directory(tmp_path: Path) -> None:
    assert CHECKOUT == ROOT
    result = subprocess.run(
        [sys.executable, "-c", "import media, web; print(media.__file__); print(web.__file__)"],
        cwd=tmp_path,  # where LocalServer runs it
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    media_file, web_file = result.stdout.split()
    assert Path(media_file).resolve() == ROOT / "media" / "__init__.py"
    assert Path(web_file).resolve() == ROOT / "web" / "__init__.py"
