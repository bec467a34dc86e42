"""Quick start: declare a schema and print its DDL for each warehouse and its JSONPaths."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import BigInt, Boolean, Decimal, Integer, Nested, Schema, String, TimestampTZ


class Event(Schema):
    __tablename__ = "events"
    __table_args__ = {"redshift_distkey": "id", "redshift_sortkey": ("created_at",)}

    id = String(36, primary_key=True)
    some_number = BigInt(key="someNumber")
    amount = Decimal(12, 2)
    created_at = TimestampTZ(key="createdAt")

    class child(Nested):
        some_boolean = Boolean(key="someBoolean")

        class depth(Nested):
            level = Integer()


def main() -> None:
    for dialect in ("redshift", "postgresql", "duckdb"):
        engine = sa.create_mock_engine(f"{dialect}://", executor=lambda *a, **k: None)
        ddl = str(CreateTable(Event.__table__).compile(dialect=engine.dialect)).strip()
        print(f"-- {dialect}\n{ddl};\n")
    print(json.dumps(Event.__jsonpaths__, indent=2))
    event = Event.from_json(
        {
            "id": "e-1",
            "someNumber": "42",
            "amount": 20.259,
            "createdAt": "2019-02-11T05:09:12Z",
            "child": {"someBoolean": "yes", "depth": {"level": 3}},
        }
    )
    print(event)


if __name__ == "__main__":
    main()
