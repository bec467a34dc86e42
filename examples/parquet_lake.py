"""A Parquet lake loaded into DuckDB, and the same pipeline pointed at Redshift.

    python examples/parquet_lake.py [FOLDER]

Writes three days of orders as Parquet (one object per day, as Spark or pandas would write
them: int64 ids, a decimal total, UTC timestamps, a struct and a list) under
FOLDER/lake/orders/ (default ./arbalest-parquet-demo), loads them into
FOLDER/warehouse.duckdb, and rebuilds a daily revenue table with a SQL step. Run it twice:
the second run loads nothing. The fields name Parquet columns by ``key=``; a column whose
type does not fit its field stops the step, naming both (see docs/loading.md).

The same ``build()`` loads the lake from S3 into Redshift, where COPY reads the objects:

    pipeline = build(
        "redshift+psycopg2://loader@my-cluster:5439/analytics",
        "s3://my-lake/raw",
        iam_role="arn:aws:iam::123456789012:role/RedshiftLoader",
    )

On Redshift a struct or a list loads whole, into a ``Super`` field, as ``shipping`` and
``items`` do here (a ``Nested`` class can read a struct's fields on DuckDB and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from arbalest import (
    BigInt,
    Boolean,
    Decimal,
    Pipeline,
    RunResult,
    Schema,
    String,
    Super,
    TimestampTZ,
)

DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]


class Order(Schema):
    """An order, as the shop's Parquet export holds it."""

    __tablename__ = "parquet_orders"
    __table_args__ = {"redshift_distkey": "customer_id", "redshift_sortkey": ("created_at",)}

    id = BigInt(primary_key=True, key="order_id")  # Parquet INT64
    customer_id = BigInt(key="customerId")
    total = Decimal(12, 2)  # Parquet DECIMAL(9, 2): widened without loss
    created_at = TimestampTZ(key="createdAt")  # Parquet TIMESTAMP(us, UTC)
    paid = Boolean()
    coupon = String(16)  # a column some days lack: NULL there
    shipping = Super()  # a struct, kept whole as JSON
    items = Super()  # a list of structs


def write_lake(root: Path) -> Path:
    """One Parquet object per day under ``root/lake/orders``; return the lake's folder."""
    lake = root / "lake"
    folder = lake / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    for number, day in enumerate(DAYS):
        ids = [number * 100 + i for i in range(1, 5)]
        columns: dict[str, Any] = {
            "order_id": pa.array(ids, pa.int64()),
            "customerId": pa.array([7, 8, 7, 9], pa.int64()),
            "total": pa.array(
                [D("19.99"), D("5.00"), D("120.50"), D("42.00")], pa.decimal128(9, 2)
            ),
            "createdAt": pa.array(
                [dt.datetime(day.year, day.month, day.day, 9 + i, tzinfo=dt.UTC) for i in range(4)],
                pa.timestamp("us", tz="UTC"),
            ),
            "paid": [True, True, False, True],
            "shipping": [{"city": "Lyon", "express": i % 2 == 0} for i in range(4)],
            "items": [[{"sku": f"sku-{i}", "qty": i + 1}] for i in range(4)],
        }
        if number:  # the first day's export had no coupon column yet
            columns["coupon"] = ["SPRING", None, None, "VIP"]
        path = folder / f"{day.isoformat()}.parquet"
        if not path.exists():  # written once: a second run finds nothing new
            pq.write_table(pa.table(columns), path)
    return lake


def build(warehouse: sa.Engine | str, store: str | Path, **kw: Any) -> Pipeline:
    """New Parquet orders, loaded once each, then the daily revenue rebuilt from them."""
    return (
        Pipeline(warehouse, store=store, **kw)
        .copy(Order, source="orders", mode="incremental")  # format: by the .parquet suffix
        .sql(
            "CREATE TABLE IF NOT EXISTS parquet_revenue (day DATE, revenue DECIMAL(14, 2))",
            "DELETE FROM parquet_revenue",
            "INSERT INTO parquet_revenue SELECT CAST(created_at AS DATE), sum(total) "
            "FROM parquet_orders WHERE paid GROUP BY 1",
        )
    )


def main(folder: str = "arbalest-parquet-demo") -> RunResult:
    root = Path(folder)
    lake = write_lake(root)
    with build(f"duckdb:///{root / 'warehouse.duckdb'}", lake) as pipeline:
        result = pipeline.run()
    print(result)
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
