"""The API reference and the architecture page stay true to the code.

Every public name has an entry in the reference (docs/reference/, rendered from the
docstrings by mkdocstrings); every guide page that names a public class links it there; the
layers on docs/architecture.md are the import contract in pyproject.toml; and each package's
``__init__`` docstring names every module it holds. ``mkdocs build --strict`` (in
scripts/check) fails on a link whose target the reference does not have.
"""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

import pytest

import arbalest

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
GUIDES = sorted(DOCS.glob("*.md"))
REFERENCE = sorted((DOCS / "reference").glob("*.md"))

#: Public classes (and ``infer``) by the name people write, with their reference identifier.
PUBLIC: dict[str, str] = {
    name: f"arbalest.{name}"
    for name in arbalest.__all__
    if inspect.isclass(getattr(arbalest, name)) or name == "infer"
}
PUBLIC |= {
    "S3Store": "arbalest.stores.s3.S3Store",
    "ObjectStore": "arbalest.stores.ObjectStore",
    "PipelineTask": "arbalest.contrib.luigi.PipelineTask",
    "S3CopyPipeline": "arbalest.redshift.S3CopyPipeline",
}
FENCE = re.compile(r"^\s*```")
CODE_SPAN = re.compile(r"`([A-Za-z_]\w*)(?:[.(][^`]*)?`")


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced blocks."""
    lines, inside = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            lines.append(line)
    return lines


def named_classes(page: Path) -> set[str]:
    """The public names the page's prose writes as code (``Pipeline``, ``Pipeline.copy``)."""
    text = "\n".join(prose(page))  # a code span may go on over a line end
    return {match[1] for match in CODE_SPAN.finditer(text) if match[1] in PUBLIC}


def links_to(text: str, identifier: str) -> bool:
    """Whether the Markdown links ``identifier``, or one of its members, through autorefs."""
    return re.search(rf"\]\[{re.escape(identifier)}(?:\.\w+)*\]", text) is not None


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: p.name)
def test_every_page_links_the_public_classes_it_names(page: Path) -> None:
    text = page.read_text()
    unlinked = sorted(n for n in named_classes(page) if not links_to(text, PUBLIC[n]))
    assert not unlinked, (
        f"{page.name} names {', '.join(unlinked)} without linking the API reference: write "
        f"the first mention as [`{unlinked[0]}`][{PUBLIC[unlinked[0]]}]"
    )


def test_the_link_check_sees_an_unlinked_name(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run a [`Pipeline`][arbalest.Pipeline.run] to get a `RunResult(\n...)`.\n\n"
        "```python\nSchema\n```\n"
    )
    text = page.read_text()
    assert named_classes(page) == {"Pipeline", "RunResult"}
    assert links_to(text, "arbalest.Pipeline")
    assert not links_to(text, "arbalest.RunResult")


def test_the_reference_documents_every_public_name() -> None:
    documented = {
        line.removeprefix("::: ").strip()
        for page in REFERENCE
        for line in page.read_text().splitlines()
        if line.startswith("::: ")
    }
    public = {f"arbalest.{name}" for name in arbalest.__all__ if name != "__version__"}
    missing = sorted(public - documented)
    assert not missing, f"no ::: entry in docs/reference/ for {', '.join(missing)}"
    assert set(PUBLIC.values()) <= documented


def contract_layers() -> list[list[str]]:
    """The layers of pyproject.toml's import-linter contract, top first, each a list of
    packages (parentheses, which mark a layer optional, left out)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [[name.strip().strip("()") for name in layer.split("|")] for layer in contract["layers"]]


def page_layers() -> list[list[str]]:
    """The packages of each row of the layer table on docs/architecture.md, top first."""
    rows = [line for line in prose(DOCS / "architecture.md") if re.match(r"\|\s*[0-9]+\s*\|", line)]
    return [re.findall(r"`(arbalest[\w.]*)`", row.split("|")[2]) for row in rows]


def test_the_architecture_page_shows_the_import_contract() -> None:
    assert page_layers() == contract_layers()


def packages() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "arbalest").rglob("__init__.py"))


@pytest.mark.parametrize("package", packages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_package_docstring_names_its_modules(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    held = [p.stem for p in package.glob("*.py") if p.name != "__init__.py"]
    held += [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    missing = sorted(name for name in held if f"``{name}``" not in docstring)
    assert not missing, (
        f"the docstring of {package.relative_to(ROOT)}/__init__.py does not say what "
        f"{', '.join(missing)} hold(s): name each module as ``name`` with a few words"
    )
