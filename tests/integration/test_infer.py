"""``arbalest.infer``: the class it writes, executed, loads its sample with zero rejects.

Proved on the benchmark generator's events and on a GitHub-archive-like sample (nested
objects, arrays, keys that come and go or are not Python names, mixed kinds, timestamps with
and without a zone, integers beyond 64 bits, decimals) on DuckDB and PostgreSQL, from a
folder and from S3, and on random records (Hypothesis) on DuckDB.
"""

from __future__ import annotations

import decimal
import json
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import arbalest
from arbalest import Pipeline, Schema
from benchmarks import events
from tests.fixtures import github


class Loaded:
    """Executes inferred classes; their tables leave ``arbalest.metadata`` afterwards."""

    def __init__(self) -> None:
        self.tables: list[sa.Table] = []

    def __call__(self, text: str) -> type[Schema]:
        namespace: dict[str, Any] = {}
        exec(compile(text, "<inferred>", "exec"), namespace)
        found = [
            v
            for v in namespace.values()
            if isinstance(v, type) and issubclass(v, Schema) and v is not Schema
        ]
        assert len(found) == 1
        self.tables.append(found[0].__table__)
        return found[0]

    def close(self) -> None:
        for table in self.tables:
            arbalest.metadata.remove(table)


@pytest.fixture
def schema_of() -> Iterator[Loaded]:
    """Turns inferred text into its class (removed from the shared MetaData afterwards)."""
    loaded = Loaded()
    yield loaded
    loaded.close()


def load(warehouse: sa.Engine | str, store: str, source: str, schema: type[Schema]) -> int:
    """Load every object under ``source``; return the rows (a reject fails the step)."""
    result = Pipeline(warehouse, store=store).copy(schema, source=source, mode="replace").run()
    assert result.rows_rejected == 0
    return result.rows_loaded


def test_benchmark_events_load_with_zero_rejects(
    warehouse: sa.Engine, tmp_path: Path, schema_of: Loaded
) -> None:
    events.generate(tmp_path / "made", 600, files=3)
    lake = tmp_path / "lake"
    (lake / "events").mkdir(parents=True)
    for part in events.parts(tmp_path / "made"):
        shutil.copy(part, lake / "events" / part.name)
    text = arbalest.infer(str(lake), "events", sample=600)
    schema = schema_of(text)
    assert load(warehouse, str(lake), "events", schema) == 600
    types = {c.name: str(c.type) for c in schema.__table__.columns}
    assert types["amount"] == "NUMERIC(18, 2)"
    assert types["created_at"] == "DATETIME"  # TIMESTAMPTZ: DateTime(timezone=True)
    assert schema.__table__.c.created_at.type.timezone is True  # type: ignore[attr-defined]
    assert types["child_depth_level"] == "INTEGER"
    expected = events.expected(tmp_path / "made")
    with warehouse.connect() as conn:
        total = conn.execute(sa.text("SELECT sum(some_number), count(optional_code) FROM events"))
        assert tuple(total.one()) == (
            expected["sum_some_number"],
            expected["optional_code_present"],
        )


def test_github_like_sample_loads_with_zero_rejects(
    warehouse: sa.Engine, tmp_path: Path, schema_of: Loaded
) -> None:
    records = github.write(tmp_path / "lake" / "gh", 300)
    text = arbalest.infer(str(tmp_path / "lake"), "gh", sample=1000, name="GithubEvent")
    schema = schema_of(text)
    assert load(warehouse, str(tmp_path / "lake"), "gh", schema) == 300
    assert schema.__tablename__ == "github_event"
    with warehouse.connect() as conn:
        # text, not a typed select: duckdb-engine says it has no native DECIMAL, so
        # SQLAlchemy would read NUMERIC(38, 0) through a float (2**70 + 1 -> 2**70)
        rows = conn.execute(
            sa.text(
                "SELECT huge, price, score_card_x_y, score_card_f_2fa, user_id_2 "
                "FROM github_event ORDER BY user_id"
            )
        ).all()
    assert [r.huge for r in rows] == [r["huge"] for r in records]
    assert [r.price for r in rows] == [decimal.Decimal(str(r["price"])) for r in records]
    assert [r.score_card_x_y for r in rows] == [
        decimal.Decimal(str(r["Score Card"]["x.y"])) for r in records
    ]
    assert [r.score_card_f_2fa for r in rows] == [r["Score Card"]["2fa"] for r in records]
    assert [r.user_id_2 for r in rows] == [r["user_id"] for r in records]


@pytest.mark.s3
def test_infer_reads_s3_and_the_class_loads_from_it(
    s3_bucket: str, tmp_path: Path, schema_of: Loaded
) -> None:
    github.write(tmp_path / "gh", 90)
    store = arbalest.Pipeline("duckdb://", store=f"s3://{s3_bucket}/raw").store
    assert store is not None
    for path in sorted((tmp_path / "gh").iterdir()):
        store.put(f"gh/{path.name}", path.read_bytes())
    text = arbalest.infer(f"s3://{s3_bucket}/raw", "gh/", sample=500)
    assert f"s3://{s3_bucket}/raw/gh/" in text
    schema = schema_of(text)
    assert load(f"duckdb:///{tmp_path / 'w.duckdb'}", f"s3://{s3_bucket}/raw", "gh", schema) == 90


# -- random records ------------------------------------------------------------------------

_KEYS = st.text(
    alphabet=string.ascii_letters[:6] + "ABé_-. $'\"\\[]0129",
    min_size=0,
    max_size=6,
)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    [
        "2024-01-01",
        "2024-02-29T10:00:00Z",
        "2024-01-01 10:00:00+02:00",
        "1999-12-31 23:59:59.123456",
        "01/02/2024",
        "2024-13-45",
        "20240101",
        "",
        "true",
        "12",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-100, max_value=100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False).map(float)
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=8,
)
_RECORDS = st.lists(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5), min_size=1, max_size=8)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(records=_RECORDS)
def test_random_records_load_with_zero_rejects(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lake = Path(folder)
        (lake / "src").mkdir()
        text = "".join(json.dumps(r) + "\n" for r in records)
        (lake / "src" / "part.json").write_text(text, encoding="utf-8")
        if all(k == "" for r in records for k in r):  # no key a JSONPath can name
            with pytest.raises(arbalest.ConfigurationError, match="nothing to infer"):
                arbalest.infer(str(lake), "src", sample=100)
            return
        inferred = arbalest.infer(str(lake), "src", sample=100)
        loaded = Loaded()
        try:
            schema = loaded(inferred)
            rows = load(f"duckdb:///{lake / 'w.duckdb'}", str(lake), "src", schema)
        finally:
            loaded.close()
        assert rows == len(records)
