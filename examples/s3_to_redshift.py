"""Load JSON events from S3 into Redshift, with an IAM role.

    ARBALEST_REDSHIFT_URL=redshift+psycopg2://loader@my-cluster:5439/analytics \\
    ARBALEST_BUCKET=my-lake \\
    ARBALEST_IAM_ROLE=arn:aws:iam::123456789012:role/RedshiftLoader \\
    python examples/s3_to_redshift.py

The cluster assumes the role to read the objects, the manifest and the JSONPaths file that
Arbalest uploads under s3://my-lake/raw/_arbalest/. Set ARBALEST_REGION when the bucket is in
another region than the cluster.
"""

from __future__ import annotations

import sqlalchemy as sa

from arbalest import BigInt, Boolean, Decimal, Pipeline, RunResult, Schema, String, TimestampTZ
from arbalest.configuration import env


class Order(Schema):
    """An order as the shop writes it to S3."""

    __tablename__ = "orders"
    __table_args__ = {"redshift_distkey": "customer_id", "redshift_sortkey": ("created_at",)}

    id = String(36, primary_key=True)
    customer_id = BigInt(key="customerId")
    total = Decimal(12, 2)
    created_at = TimestampTZ(key="createdAt", encode="az64")
    paid = Boolean()


def build(
    warehouse: sa.Engine | str, bucket: str, role: str, region: str | None = None
) -> Pipeline:
    """New orders, loaded once each, then a daily revenue table rebuilt from them."""
    return (
        Pipeline(warehouse, store=f"s3://{bucket}/raw", iam_role=role, region=region)
        .copy(Order, source="orders", mode="incremental", max_errors=100)
        .sql(
            "CREATE TABLE IF NOT EXISTS daily_revenue (day DATE, revenue DECIMAL(14, 2))",
            "DELETE FROM daily_revenue WHERE day >= :since",
            "INSERT INTO daily_revenue SELECT CAST(created_at AS DATE), sum(total) "
            "FROM orders WHERE paid AND CAST(created_at AS DATE) >= :since GROUP BY 1",
            since="2026-01-01",
        )
    )


def main() -> RunResult:
    pipeline = build(
        str(env("ARBALEST_REDSHIFT_URL")),
        str(env("ARBALEST_BUCKET")),
        str(env("ARBALEST_IAM_ROLE")),
        env("ARBALEST_REGION"),
    )
    result = pipeline.run()
    print(result)
    return result


if __name__ == "__main__":
    main()
