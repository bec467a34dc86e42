"""Markers by folder, and fixtures every test folder can use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import arbalest
from tests.fixtures.schemas import fresh_base

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.iam",
    "tests.fixtures.cli",
    "tests.fixtures.redshift_data",
]

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
    return fresh_base()


@pytest.fixture
def event(base: type[arbalest.Schema]) -> Any:
    """The schema most tests load: ``events`` (``id`` VARCHAR(36) primary key, ``n`` INTEGER)."""

    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = arbalest.String(36, primary_key=True)
        n = arbalest.Integer()

    return Event
