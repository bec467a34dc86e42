"""Run by the crash tests in a subprocess: load every folder of a lake, one step each.

    python load_lake.py WAREHOUSE_URL LAKE MODE FOLDER...
    python load_lake.py --redshift SIDE_URL WAREHOUSE_URL LAKE MODE FOLDER...

With --redshift, WAREHOUSE_URL is a Redshift-dialect URL on PostgreSQL whose COPY the
stand-in of tests/fixtures/redshift.py does (its system tables already exist), and LAKE an
s3:// URL.

Prints one line per object loaded ("loaded <key>") and per step finished ("step <label>"),
flushed, so that the parent can kill it at a chosen point.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from arbalest import Pipeline
from arbalest.pipeline.result import StepResult
from arbalest.stores.base import ObjectInfo
from tests.fixtures.schemas import Record


class Printer:
    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        print(f"start {label} {objects}", flush=True)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        print(f"loaded {info.key}", flush=True)

    def step_finished(self, result: StepResult) -> None:
        print(f"step {result.label}", flush=True)


def main() -> None:
    args = sys.argv[1:]
    warehouse: sa.Engine | str
    if args[0] == "--redshift":
        from tests.fixtures.redshift import install_stand_in

        side_url, url, lake, mode, *folders = args[1:]
        warehouse = sa.create_engine(url, hide_parameters=True)
        install_stand_in(
            warehouse, sa.create_engine(side_url, isolation_level="AUTOCOMMIT"), create=False
        )
    else:
        warehouse, lake, mode, *folders = args
    pipeline = Pipeline(warehouse, store=lake)
    for folder in folders:
        pipeline = pipeline.copy(Record, folder, mode=mode)
    print("running", flush=True)
    pipeline.run(progress=Printer())
    print("done", flush=True)


if __name__ == "__main__":
    main()
