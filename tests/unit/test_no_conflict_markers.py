"""No file of the project holds a merge's conflict markers.

Inside a docstring or a Markdown page they break nothing a test runs, so they would
otherwise stay: one did, in the command line's docstring and docs/cli.md.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("arbalest", "tests", "docs", "examples", "benchmarks", ".ci", "scripts")
MARKER = re.compile(r"^(<{7} |={7}$|>{7} )", re.MULTILINE)


def test_no_file_holds_conflict_markers() -> None:
    files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml")]
    for folder in FOLDERS:
        files += [
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    found = []
    for path in files:
        if path.suffix in {".so", ".pyc", ".parquet", ".gz", ".zst", ".bz2", ".png", ".duckdb"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        found += [
            f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            for m in MARKER.finditer(text)
        ]
    assert not found, f"conflict markers at {', '.join(found)}"
