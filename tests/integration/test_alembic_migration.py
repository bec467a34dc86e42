"""The Alembic route, for real, on PostgreSQL: a class grows a field, ``alembic revision
--autogenerate`` writes the migration (through an env.py that points at the schema's
MetaData, as docs/changes.md shows), ``alembic upgrade head`` runs it, and Arbalest then
loads the new field with ``evolve=False``: the table matches the class."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from arbalest import Pipeline, TableMismatchError
from tests.fixtures.modules import module as module_text

pytestmark = pytest.mark.postgres

#: The fields ``Event`` gains (after ``id`` and ``n``).
GROWN = """
referrer = String(100, key="ref")
note = String(200)
"""

# The env.py of docs/changes.md, reduced to what a test runs (online migrations only)
ENV = """
from alembic import context
from sqlalchemy import create_engine

import {module} as schemas

target_metadata = schemas.Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    # Arbalest's own tables are in no MetaData of yours: never drop them
    return not (type_ == "table" and name.startswith("_arbalest_"))


engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder importable as a package root, and the name of its schemas module."""
    module = f"schemas_{uuid.uuid4().hex[:8]}"
    sys.path.insert(0, str(tmp_path))
    yield tmp_path, module
    sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)


def write_schemas(root: Path, module: str, *, grown: bool) -> Any:
    (root / f"{module}.py").write_text(module_text(fields=GROWN if grown else ""))
    sys.modules.pop(module, None)
    importlib.invalidate_caches()
    return importlib.import_module(module)


def alembic_config(root: Path, module: str, url: str) -> Config:
    scripts = root / "migrations"
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(scripts))
    # a URL in an ini file is %-interpolated
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.init(config, str(scripts))
    (scripts / "env.py").write_text(textwrap.dedent(ENV.format(module=module)))
    return config


def test_a_grown_class_migrates_with_alembic_then_loads_without_evolve(
    postgres_url: str, project: tuple[Path, str], tmp_path: Path
) -> None:
    root, module = project
    lake = tmp_path / "lake"
    (lake / "events").mkdir(parents=True)
    (lake / "events" / "a.json").write_text(json.dumps({"id": "a", "n": 1}) + "\n")
    engine = sa.create_engine(postgres_url)
    try:
        v1 = write_schemas(root, module, grown=False)
        Pipeline(engine, store=lake).copy(v1.Event, "events").run()

        v2 = write_schemas(root, module, grown=True)
        (lake / "events" / "b.json").write_text(
            json.dumps({"id": "b", "n": 2, "ref": "web", "note": "hello"}) + "\n"
        )
        with pytest.raises(TableMismatchError):  # the table does not have the new fields yet
            Pipeline(engine, store=lake).copy(v2.Event, "events").run()

        config = alembic_config(root, module, postgres_url)
        command.revision(config, message="add referrer and note", autogenerate=True)
        (migration,) = (root / "migrations" / "versions").glob("*.py")
        code = migration.read_text()
        assert "op.add_column('events', sa.Column('referrer', sa.String(length=100)" in code
        assert "op.add_column('events', sa.Column('note', sa.String(length=200)" in code
        assert "drop_table" not in code  # the journal is left alone
        command.upgrade(config, "head")

        result = Pipeline(engine, store=lake).copy(v2.Event, "events").run()
        assert result.rows_loaded == 1
        with engine.connect() as conn:
            loaded = conn.execute(sa.text("SELECT id, referrer, note FROM events ORDER BY id"))
            assert [tuple(r) for r in loaded] == [("a", None, None), ("b", "web", "hello")]
        # and Alembic sees nothing left to do
        command.revision(config, message="nothing", autogenerate=True)
        newest = max(
            (root / "migrations" / "versions").glob("*.py"), key=lambda p: p.stat().st_mtime
        )
        assert "op.add_column" not in newest.read_text()
        assert "pass" in newest.read_text()
    finally:
        engine.dispose()
