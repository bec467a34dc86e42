"""PipelineTask: Luigi's local scheduler runs a dependency graph; complete() is the journal's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import luigi
import pytest
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String
from arbalest.contrib.luigi import PipelineTask


class Base(Schema):
    __abstract__ = True
    metadata = sa.MetaData()


class Visit(Base):
    __tablename__ = "visits"
    id = String(10, primary_key=True)
    n = Integer()


def put(lake: Path, name: str, records: list[dict[str, Any]]) -> None:
    (lake / "visits").mkdir(parents=True, exist_ok=True)
    (lake / "visits" / name).write_text("".join(json.dumps(r) + "\n" for r in records))


class Load(PipelineTask):
    root: str = luigi.Parameter()

    def pipeline(self) -> Pipeline:
        root = Path(str(self.root))
        return Pipeline(f"duckdb:///{root / 'w.duckdb'}", store=root / "lake").copy(Visit, "visits")


class Summarise(PipelineTask):
    root: str = luigi.Parameter()

    def requires(self) -> Load:
        return Load(root=self.root)

    def pipeline(self) -> Pipeline:
        return Pipeline(f"duckdb:///{Path(str(self.root)) / 'w.duckdb'}").sql(
            "CREATE OR REPLACE TABLE total AS SELECT sum(n) AS n FROM visits"
        )

    def complete(self) -> bool:
        return bool(self.requires().complete()) and super().complete()


@pytest.fixture
def ran() -> Any:
    names: list[str] = []

    def record(task: Any) -> None:
        names.append(type(task).__name__)

    luigi.Task.event_handler(luigi.Event.SUCCESS)(record)
    yield names
    luigi.Task._event_callbacks[luigi.Task][luigi.Event.SUCCESS].discard(record)


def total(root: Path) -> int:
    engine = sa.create_engine(f"duckdb:///{root / 'w.duckdb'}")
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT n FROM total")).scalar_one()
    engine.dispose()
    return int(value)


def test_a_two_task_graph_with_the_local_scheduler(tmp_path: Path, ran: list[str]) -> None:
    put(tmp_path / "lake", "a.json", [{"id": "a", "n": 1}, {"id": "b", "n": 2}])
    task = Summarise(root=str(tmp_path))
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert ran == ["Load", "Summarise"]
    assert total(tmp_path) == 3
    assert Load(root=str(tmp_path)).complete()
    ran.clear()
    assert luigi.build([Summarise(root=str(tmp_path))], local_scheduler=True)
    assert ran == []
    put(tmp_path / "lake", "b.json", [{"id": "c", "n": 4}])
    assert not Load(root=str(tmp_path)).complete()
    assert luigi.build([Summarise(root=str(tmp_path))], local_scheduler=True)
    assert ran == ["Load", "Summarise"]
    assert total(tmp_path) == 7


def test_a_pipeline_given_as_a_parameter(tmp_path: Path) -> None:
    put(tmp_path / "lake", "a.json", [{"id": "a", "n": 1}])

    def build() -> Pipeline:
        return Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path / "lake").copy(
            Visit, "visits"
        )

    task = PipelineTask(pipeline_factory=build)
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    with pytest.raises(NotImplementedError, match="override pipeline"):
        PipelineTask().pipeline()
    with pytest.raises(TypeError, match="not a Pipeline"):
        PipelineTask(pipeline_factory=lambda: 42).pipeline()


def test_the_docstring_names_the_parameter_luigi_knows() -> None:
    doc = PipelineTask.__doc__ or ""
    names = [name for name, _ in PipelineTask.get_params()]
    assert names == ["pipeline_factory"]
    assert "``pipeline_factory=``" in doc
    assert "``pipeline=``" not in doc  # pipeline is the method to override, not a parameter
