"""PipelineTask: Luigi's local scheduler runs a dependency graph; complete() is the journal's."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import luigi
import pytest
import sqlalchemy as sa

from arbalest import (
    ConfigurationError,
    Pipeline,
    SortedSources,
    String,
    Timestamp,
)
from arbalest.contrib.luigi import PipelineTask
from tests.fixtures.lakes import put
from tests.fixtures.schemas import Visit, fresh_base


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


def nightly() -> Pipeline:
    """An importable factory: its task is identified by its import path."""
    return Pipeline("duckdb:///:memory:").sql("SELECT 1")


def hourly() -> Pipeline:
    return Pipeline("duckdb:///:memory:").sql("SELECT 2")


HERE = __name__


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
    put(tmp_path / "lake", "visits/a.json", [{"id": "a", "n": 1}, {"id": "b", "n": 2}])
    task = Summarise(root=str(tmp_path))
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert ran == ["Load", "Summarise"]
    assert total(tmp_path) == 3
    assert Load(root=str(tmp_path)).complete()
    ran.clear()
    assert luigi.build([Summarise(root=str(tmp_path))], local_scheduler=True)
    assert ran == []
    put(tmp_path / "lake", "visits/b.json", [{"id": "c", "n": 4}])
    assert not Load(root=str(tmp_path)).complete()
    assert luigi.build([Summarise(root=str(tmp_path))], local_scheduler=True)
    assert ran == ["Load", "Summarise"]
    assert total(tmp_path) == 7


def test_a_pipeline_given_as_a_parameter(tmp_path: Path) -> None:
    put(tmp_path / "lake", "visits/a.json", [{"id": "a", "n": 1}])

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


def test_distinct_factories_are_distinct_tasks() -> None:
    one, two = PipelineTask(pipeline_factory=nightly), PipelineTask(pipeline_factory=hourly)
    assert one.task_id != two.task_id
    assert PipelineTask(pipeline_factory=nightly).task_id == one.task_id
    assert one.to_str_params(only_significant=True) == {"pipeline_factory": f"{HERE}:nightly"}


def test_distinct_pipelines_and_lambdas_are_distinct_tasks(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()

    def build(source: str) -> Pipeline:
        return Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path / "lake").copy(
            Visit, source
        )

    ids = {
        PipelineTask(pipeline_factory=build("a")).task_id,
        PipelineTask(pipeline_factory=build("b")).task_id,
        PipelineTask(pipeline_factory=lambda: build("c")).task_id,
        PipelineTask(pipeline_factory=lambda: build("d")).task_id,
    }
    assert len(ids) == 4
    # the same pipeline, built again, is the same task
    assert PipelineTask(pipeline_factory=build("a")).task_id in ids
    assert PipelineTask(pipeline_factory=lambda: build("a")).task_id in ids


def test_each_task_has_its_own_completion_marker(tmp_path: Path) -> None:
    put(tmp_path / "lake", "visits/a.json", [{"id": "a", "n": 1}])
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    loads = PipelineTask(
        pipeline_factory=Pipeline(warehouse, store=tmp_path / "lake").copy(Visit, "visits")
    )
    totals = PipelineTask(
        pipeline_factory=Pipeline(warehouse).sql("CREATE TABLE total AS SELECT 1 AS n")
    )
    assert luigi.build([loads], local_scheduler=True)
    assert loads.complete()
    assert not totals.complete()


IDENTITY = """
import sys
sys.path.insert(0, {root!r})
from arbalest import Pipeline
from arbalest.contrib.luigi import PipelineTask
from {module} import nightly
print(PipelineTask(pipeline_factory=nightly).task_id)
named = Pipeline("duckdb:///:memory:", name="n").sql("SELECT 1")
print(PipelineTask(pipeline_factory=named).task_id)
"""


def test_task_ids_are_the_same_in_another_process() -> None:
    root = str(Path(__file__).resolve().parents[2])
    script = IDENTITY.format(root=root, module=HERE)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    ).stdout.split()
    here = Pipeline("duckdb:///:memory:", name="n").sql("SELECT 1")
    assert out == [
        PipelineTask(pipeline_factory=nightly).task_id,
        PipelineTask(pipeline_factory=here).task_id,
    ]


def test_an_import_path_is_a_factory() -> None:
    task = PipelineTask.from_str_params({"pipeline_factory": f"{HERE}:nightly"})
    assert task.task_id == PipelineTask(pipeline_factory=nightly).task_id
    assert [step.label for step in task.pipeline().steps] == ["sql: SELECT 1"]
    with pytest.raises(ConfigurationError, match="module:name"):
        PipelineTask(pipeline_factory="no_such_module_here:build").pipeline()


def test_a_replace_step_is_done_while_its_source_is_as_it_loaded_it(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    put(lake, "visits/a.json", [{"id": "a", "n": 1}])
    put(lake, "visits/b.json", [{"id": "b", "n": 2}])
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    task = PipelineTask(
        pipeline_factory=Pipeline(warehouse, store=lake).copy(Visit, "visits", mode="replace")
    )
    assert not task.complete()  # never run
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    put(lake, "visits/c.json", [{"id": "c", "n": 3}])  # a new object
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    (lake / "visits" / "c.json").unlink()  # an object gone
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    put(lake, "visits/a.json", [{"id": "a", "n": 10}, {"id": "z", "n": 0}])  # an object rewritten
    assert not task.complete()


class Hit(fresh_base()):  # type: ignore[misc]
    __tablename__ = "hits"
    id = String(10)
    t = Timestamp()


def test_a_time_series_is_done_until_a_new_partition_lands(tmp_path: Path) -> None:
    lake = tmp_path / "lake"

    def day(name: str, hit: str) -> None:
        (lake / "hits" / name).mkdir(parents=True)
        (lake / "hits" / name / "part.json").write_text(json.dumps({"id": hit, "t": name}))

    day("2014-11-03", "a")
    warehouse = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    sources = SortedSources(lake, "hits", warehouse=warehouse)
    task = PipelineTask(
        pipeline_factory=Pipeline(warehouse).time_series(Hit, sources, series_column="t")
    )
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    day("2014-11-04", "b")
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    warehouse.dispose()


def test_a_scripts_own_factory_is_told_apart_by_its_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every script is ``__main__``: ``__main__:build`` would be the same id in two."""
    main = types.ModuleType("__main__")

    def build() -> Pipeline:
        return Pipeline("duckdb:///:memory:").sql("SELECT 3")

    build.__module__, build.__qualname__ = "__main__", "build"
    main.build = build  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    identity = PipelineTask(pipeline_factory=build).to_str_params()["pipeline_factory"]
    assert identity.startswith("@")
    assert identity == PipelineTask(pipeline_factory=build()).to_str_params()["pipeline_factory"]
