"""Markers by folder, and fixtures every test folder can use."""

from __future__ import annotations

import types
from collections.abc import Callable
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
def make_event(base: type[arbalest.Schema]) -> Callable[..., Any]:
    """Makes a schema ``Event`` on ``base``, like ``event``'s, with changes: each of
    ``fields`` (``id``, ``n``, ``__tablename__``...) replaces the one of that name, and the
    others follow ``n``, in order."""

    def make(**fields: Any) -> Any:
        namespace = {
            "__module__": __name__,
            "__tablename__": "events",
            "id": arbalest.String(36, primary_key=True),
            "n": arbalest.Integer(),
        }
        return types.new_class("Event", (base,), exec_body=lambda ns: ns.update(namespace | fields))

    return make


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    """The schema most tests load: ``events`` (``id`` VARCHAR(36) primary key, ``n`` INTEGER)."""
    return make_event()
