"""Type checkers see columns on the class and values on instances."""

import datetime as dt
import decimal

from arbalest import Boolean, Decimal, Integer, Nested, Schema, String, Timestamp


class Event(Schema):
    id = String(36, primary_key=True)
    some_number = Integer(key="someNumber")
    amount = Decimal(12, 2)
    created_at = Timestamp()

    class child(Nested):
        some_boolean = Boolean()


event = Event.from_json({"id": "x"})
reveal_type(Event.some_number)  # R: "sqlalchemy.sql.schema.Column[int]"
reveal_type(event.some_number)  # R: "int | None"
reveal_type(event.amount)  # R: "decimal.Decimal | None"
reveal_type(event.created_at)  # R: "datetime.datetime | None"
reveal_type(Event.child.some_boolean)  # R: "sqlalchemy.sql.schema.Column[bool]"
reveal_type(Event.from_json({}))  # R: schema_types.Event"

number: int = event.some_number  # E: Incompatible types in assignment
text: str | None = event.some_number  # E: Incompatible types in assignment
ok_amount: decimal.Decimal | None = event.amount
ok_time: dt.datetime | None = event.created_at
