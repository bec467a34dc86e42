"""Installing by name gets this project: the version is newer than the original's, written
in one place, and every install hint asks for it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

import arbalest
from arbalest.cli import main
from arbalest.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = Version("1.6.2")  # the original Arbalest's newest release on the package index


def test_the_version_is_a_final_release_newer_than_the_original() -> None:
    version = Version(arbalest.__version__)
    # pip passes over pre-releases (2.0.0.dev0) when a final 1.6.2 exists, unless --pre
    assert not version.is_prerelease
    assert version > ORIGINAL
    assert version.major == 2


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "arbalest.__version__"}
    written = re.findall(
        r'^__version__ = "([^"]+)"$',
        (ROOT / "arbalest" / "__init__.py").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert written == [arbalest.__version__]


def test_the_command_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"arbalest, version {arbalest.__version__}\n"


def test_the_installed_command_prints_the_package_version() -> None:
    script = Path(sys.executable).with_name("arbalest")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout == f"arbalest, version {arbalest.__version__}\n"


def test_a_missing_extra_names_a_requirement_that_gets_this_project() -> None:
    message = str(MissingDependencyError("luigi", "luigi"))
    assert "pip install 'arbalest[luigi]>=2'" in message


# `pip install ... arbalest...` naming the project on the index (not `-e .` in a clone)
_HINT = re.compile(r"pip install\s+[^\n`]*?['\"]?(arbalest(?:\[[^\]]*\])?[^\s'\"`]*)")


def _hint_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for folder in ("arbalest", "examples"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_every_install_hint_asks_for_this_project() -> None:
    found = []
    for path in _hint_files():
        for match in _HINT.finditer(path.read_text(encoding="utf-8")):
            requirement = match.group(1)
            found.append(requirement)
            assert re.search(r">=\s*2\b", requirement), (
                f"{path.relative_to(ROOT)}: {match.group(0)!r} may install the original 1.x"
            )
    assert found  # the pattern sees the hints (README, contrib, examples, errors)
