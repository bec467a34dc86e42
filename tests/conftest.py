"""Markers by folder, and fixtures every test folder can use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import arbalest

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.iam"]

_FOLDER_MARKERS = {
    "integration": ("integration",),
    "conformance": ("integration",),
    "examples": ("integration",),
    "benchmarks": ("integration",),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            folder = Path(item.fspath).relative_to(root).parts[0]
        except ValueError:
            continue
        for marker in _FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)


@pytest.fixture
def base() -> type[arbalest.Schema]:
    """A fresh abstract schema base with its own MetaData, so tests never share tables."""

    class Base(arbalest.Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    return Base
