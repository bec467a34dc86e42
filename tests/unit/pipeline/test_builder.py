"""The Pipeline builder: immutable, and every step checked when it is added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    ConfigurationError,
    Credentials,
    Integer,
    Pipeline,
    Schema,
    StoreError,
    String,
    UnknownBackendError,
)
from arbalest.pipeline.steps import CopyStep, SQLStep


@pytest.fixture
def keyless(base: type[Schema]) -> Any:
    class Keyless(base):  # type: ignore[misc, valid-type]
        n = Integer()

    return Keyless


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path)


def test_each_method_returns_a_new_pipeline(pipeline: Pipeline, event: Any) -> None:
    one = pipeline.copy(event, source="events")
    two = one.sql("SELECT 1")
    assert pipeline.steps == ()
    assert len(one.steps) == 1
    assert len(two.steps) == 2
    assert isinstance(two.steps[0], CopyStep)
    assert isinstance(two.steps[1], SQLStep)
    # a shared prefix can be extended twice without interference
    three = one.copy(event, source="other", mode="replace")
    assert [s.label for s in three.steps] == [
        "copy events (incremental)",
        "copy events (replace)",
    ]


def test_copy_defaults_and_labels(pipeline: Pipeline, event: Any) -> None:
    (step,) = pipeline.copy(event, "events").steps
    assert isinstance(step, CopyStep)
    assert (step.mode, step.max_errors, step.truncate_columns, step.compression) == (
        "incremental",
        0,
        False,
        None,
    )
    assert step.time_format == "auto"
    assert step.label == "copy events (incremental)"
    assert step.target == "events"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("events", "events/"),
        ("events/", "events/"),
        ("a/b/", "a/b/"),
        ("a/b..c", "a/b..c/"),
        ("", ""),
    ],
)
def test_source_is_a_folder(pipeline: Pipeline, event: Any, given: str, stored: str) -> None:
    (step,) = pipeline.copy(event, given).steps
    assert isinstance(step, CopyStep)
    assert step.source == stored


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("..", "has a '..' segment"),
        ("../other", "has a '..' segment"),
        ("events/../../other", "has a '..' segment"),
        ("events/..", "has a '..' segment"),
        ("..\\other", "has a '..' segment"),
        ("/", "is an absolute path"),
        ("/etc", "is an absolute path"),
        ("/home/me/lake/events/", "is an absolute path"),
        ("C:\\lake\\events", "is an absolute path"),
        ("\\\\server\\share", "is an absolute path"),
    ],
)
def test_a_source_that_leaves_the_store_is_refused_when_the_step_is_added(
    pipeline: Pipeline, event: Any, source: str, reason: str
) -> None:
    with pytest.raises(ConfigurationError, match="source=") as caught:
        pipeline.copy(event, source)
    assert reason in str(caught.value)
    assert "stays inside it" in str(caught.value)
    with pytest.raises(ConfigurationError, match="source="):
        pipeline.bulk_copy(event, source)


@pytest.mark.parametrize(
    ("source", "reason", "suggested"),
    [
        ("./events", "has a '.' segment", "events"),
        ("events/./2024", "has a '.' segment", "events/2024"),
        ("events//2024", "has an empty segment", "events/2024"),
        ("x/../events", "has a '..' segment", "events"),
    ],
)
def test_a_source_a_folder_would_read_as_another_spelling_is_refused(
    pipeline: Pipeline, event: Any, source: str, reason: str, suggested: str
) -> None:
    """``./events`` lists the keys ``events/...``, which the journal (read by the source
    prefix) would not find: every run would load them again."""
    with pytest.raises(ConfigurationError, match="source=") as caught:
        pipeline.copy(event, source)
    assert reason in str(caught.value)
    assert f"such as {suggested!r}" in str(caught.value)


def test_the_metadata_folder_cannot_leave_the_store(tmp_path: Path) -> None:
    for metadata in ("../meta/", "/meta", "a/../../meta"):
        with pytest.raises(ConfigurationError, match="metadata="):
            Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path, metadata=metadata)


def test_sorted_sources_that_leave_the_store_are_refused(tmp_path: Path, event: Any) -> None:
    from arbalest import SortedSources

    (tmp_path / "lake").mkdir()
    pipeline = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path / "lake")
    sources = SortedSources(pipeline.store, "../elsewhere")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"'\.\.' segment"):
        pipeline.time_series(event, sources, series_column="n")


def test_seed_names_for_modes(pipeline: Pipeline, event: Any) -> None:
    steps = pipeline.bulk_copy(event, "a").manifest_copy(event, "b").steps
    assert [s.mode for s in steps if isinstance(s, CopyStep)] == ["replace", "incremental"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "upsert"}, "mode='upsert' is not one of replace, incremental, merge"),
        ({"max_errors": -1}, "max_errors="),
        ({"max_errors": 1.5}, "max_errors="),
        ({"max_errors": True}, "max_errors="),
        ({"truncate_columns": "yes"}, "truncate_columns="),
        ({"compression": "lzop"}, "compression='lzop'"),
        ({"time_format": "MON DD"}, "time_format"),
        ({"time_format": 3}, "time_format="),
    ],
)
def test_bad_copy_options_fail_at_once(
    pipeline: Pipeline, event: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        pipeline.copy(event, "events", **kwargs)


def test_a_schema_class_is_required(pipeline: Pipeline, base: type[Schema], event: Any) -> None:
    with pytest.raises(ConfigurationError, match="takes a Schema class"):
        pipeline.copy(event(), "events")
    with pytest.raises(ConfigurationError, match="takes a Schema class"):
        pipeline.copy("events", "events")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="abstract"):
        pipeline.copy(base, "events")
    with pytest.raises(ConfigurationError, match="source="):
        pipeline.copy(event, 3)  # type: ignore[arg-type]


def test_merge_needs_a_primary_key(pipeline: Pipeline, keyless: Any, event: Any) -> None:
    with pytest.raises(ConfigurationError, match="primary key"):
        pipeline.copy(keyless, "k", mode="merge")
    assert pipeline.copy(event, "e", mode="merge").steps


def test_copy_needs_a_store(tmp_path: Path, event: Any) -> None:
    with pytest.raises(ConfigurationError, match="needs a store"):
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}").copy(event, "events")


def test_source_inside_the_metadata_folder_is_refused(pipeline: Pipeline, event: Any) -> None:
    with pytest.raises(ConfigurationError, match="metadata folder"):
        pipeline.copy(event, "_arbalest/manifests")


def test_missing_store_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path / "nope")


def test_unknown_warehouse_dialect() -> None:
    with pytest.raises(UnknownBackendError, match="sqlite") as info:
        Pipeline("sqlite://")
    assert {"duckdb", "postgresql", "redshift"} <= set(info.value.known)


def test_bad_constructor_arguments(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with pytest.raises(ConfigurationError, match="lock_timeout"):
        Pipeline(url, lock_timeout=-1)
    with pytest.raises(ConfigurationError, match="metadata="):
        Pipeline(url, metadata="/")
    with pytest.raises(ConfigurationError, match="warehouse="):
        Pipeline(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="credentials="):
        Pipeline(url, credentials={"aws_access_key_id": "A"})
    with pytest.raises(ConfigurationError, match="URL"):
        Pipeline("not a url")


@pytest.mark.parametrize("name", ["", 42, b"nightly"])
def test_a_name_is_a_non_empty_string(tmp_path: Path, name: Any) -> None:
    with pytest.raises(ConfigurationError, match="name="):
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", name=name)


def test_the_name_is_kept_by_every_new_pipeline(pipeline: Pipeline, tmp_path: Path) -> None:
    named = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path, name="nightly")
    assert named.name == "nightly"
    assert named.sql("SELECT 1").using(store=tmp_path).name == "nightly"
    assert "nightly" in repr(named)
    assert pipeline.name is None


def test_an_engine_or_a_url(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert Pipeline(engine).engine is engine
    assert Pipeline(f"duckdb:///{tmp_path / 'x.duckdb'}").backend.name == "duckdb"
    assert Pipeline("postgresql+psycopg2://u:secret@localhost/db").backend.name == "postgresql"


def test_repr_hides_passwords_and_credentials(tmp_path: Path) -> None:
    pipeline = Pipeline(
        "postgresql+psycopg2://user:hunter2@localhost/db",
        credentials=Credentials("AKIAEXAMPLE", "s3cr3tkey", "tok3n"),
    )
    text = repr(pipeline) + repr(pipeline.credentials) + str(pipeline.credentials)
    for secret in ("hunter2", "s3cr3tkey", "tok3n"):
        assert secret not in text


def test_sql_statements_and_parameters(pipeline: Pipeline) -> None:
    (step,) = pipeline.sql(
        "DELETE FROM daily WHERE day >= :since",
        ("INSERT INTO t VALUES (%s, %s)", (1, "x")),
        ("UPDATE t SET a = :a", {"a": 2}),
        sa.text("SELECT 1"),
        since="2020-01-01",
    ).steps
    assert isinstance(step, SQLStep)
    params = [p for _, p in step.statements]
    assert params == [{"since": "2020-01-01"}, {"p0": 1, "p1": "x"}, {"a": 2}, {}]
    assert str(step.statements[1][0]) == "INSERT INTO t VALUES (:p0, :p1)"
    assert step.label == "sql: DELETE FROM daily WHERE day >= :since"


def test_sql_step_checks(pipeline: Pipeline) -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        pipeline.sql()
    with pytest.raises(ConfigurationError, match="no value for parameter"):
        pipeline.sql("SELECT :missing")
    with pytest.raises(ConfigurationError, match="placeholder"):
        pipeline.sql(("SELECT %s, %s", (1,)))
    with pytest.raises(ConfigurationError, match="SQL statement is"):
        pipeline.sql(42)  # type: ignore[arg-type]


def test_a_single_positional_value_and_escaped_percent(pipeline: Pipeline) -> None:
    (step,) = pipeline.sql(("SELECT %s || '%%'", 1)).steps
    assert isinstance(step, SQLStep)
    statement, params = step.statements[0]
    assert str(statement) == "SELECT :p0 || '%'"
    assert params == {"p0": 1}


# -- identifier lengths: each warehouse's limit, checked when a step is added --------------

WAREHOUSES = {
    # dialect: (URL, store, the limit its Capabilities declare)
    "duckdb": ("duckdb:///{tmp}/w.duckdb", "{tmp}", 127),
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/test", "{tmp}", 63),
    "redshift": ("redshift+psycopg2://loader@cluster.example:5439/dev", "s3://lake/data", 127),
}


def warehouse_pipeline(dialect: str, tmp_path: Path) -> Pipeline:
    url, store, _ = WAREHOUSES[dialect]
    return Pipeline(url.format(tmp=tmp_path), store=store.format(tmp=tmp_path))


def schema_named(base: type[Schema], table: str, column: str = "id") -> Any:
    metaclass: Any = type(base)
    return metaclass("Named", (base,), {"__tablename__": table, column: String(10)})


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_a_table_name_longer_than_the_warehouse_allows_is_refused(
    base: type[Schema], tmp_path: Path, dialect: str
) -> None:
    limit = WAREHOUSES[dialect][2]
    pipeline = warehouse_pipeline(dialect, tmp_path)
    assert pipeline.backend.capabilities.max_identifier_bytes == limit
    assert pipeline.copy(schema_named(base, "t" * limit), "events").steps
    name = "t" * (limit + 1)
    with pytest.raises(ConfigurationError) as info:
        pipeline.copy(schema_named(base, name), "events")
    message = str(info.value)
    assert f"table name {name!r} is {limit + 1} bytes" in message
    assert f"{dialect} allows at most {limit}" in message
    assert "__tablename__" in message


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_a_column_name_longer_than_the_warehouse_allows_is_refused(
    base: type[Schema], tmp_path: Path, dialect: str
) -> None:
    limit = WAREHOUSES[dialect][2]
    pipeline = warehouse_pipeline(dialect, tmp_path)
    # bytes, not characters: "é" is two bytes in UTF-8
    fits = "é" * (limit // 2)
    assert pipeline.copy(schema_named(base, "fits", fits), "events").steps
    if limit >= 127:
        return  # schemas cut column names to 127 bytes already (Redshift's limit)
    name = "é" * (limit // 2 + 1)
    with pytest.raises(ConfigurationError) as info:
        pipeline.copy(schema_named(base, "events", name), "events")
    message = str(info.value)
    assert f"column name {name!r} of table 'events' is {len(name.encode())} bytes" in message
    assert f"{dialect} allows at most {limit}" in message
    assert "name=" in message


def test_moving_steps_to_another_warehouse_checks_its_limit(
    base: type[Schema], tmp_path: Path
) -> None:
    long_column = "c" * 64
    pipeline = warehouse_pipeline("duckdb", tmp_path).copy(
        schema_named(base, "events", long_column), "events"
    )
    with pytest.raises(ConfigurationError, match=f"column name '{long_column}'"):
        pipeline.using(warehouse=WAREHOUSES["postgresql"][0])


class _Partitions:
    """A partition source whose partitions lead out of the store (as a buggy one could)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.cursor = "outside"

    def partitions(self) -> list[str]:
        return ["../outside"]

    def sort_key(self, partition: str) -> Any:
        return partition

    def value_of(self, partition: str) -> Any:
        return 0


def test_plan_never_lists_an_object_outside_the_store(tmp_path: Path, event: Any) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"id": "x"}\n')
    pipeline = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path / "lake")
    assert pipeline.store is not None
    series = pipeline.time_series(event, _Partitions(pipeline.store), series_column="n")
    with pytest.raises(StoreError, match="outside the store folder"):
        series.plan()
    pipeline.engine.dispose()


def test_an_s3_source_may_have_empty_segments(tmp_path: Path, event: Any) -> None:
    """S3 keys are names: ``events//2024/`` is a prefix of its own there."""
    from arbalest.stores.s3 import S3Store

    store = S3Store("s3://lake/raw", client=object())
    pipeline = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=store)
    (step,) = pipeline.copy(event, "events//2024").steps
    assert isinstance(step, CopyStep)
    assert step.source == "events//2024/"
