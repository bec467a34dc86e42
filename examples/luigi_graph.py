"""Two pipelines as a Luigi graph: load events, then summarise them.

    pip install 'arbalest[luigi]>=2'      # from a clone: pip install -e '.[luigi]'
    python examples/luigi_graph.py [FOLDER]

Luigi asks each task whether it is complete; PipelineTask answers from the journal, so a
second run finds both done, and a new object in the lake makes both run again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import luigi
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String
from arbalest.contrib.luigi import PipelineTask


class Visit(Schema):
    __tablename__ = "visits"

    id = String(36, primary_key=True)
    country = String(2)
    seconds = Integer()


class LoadVisits(PipelineTask):
    """New visit objects into the visits table."""

    folder: str = luigi.Parameter()

    def pipeline(self) -> Pipeline:
        root = Path(str(self.folder))
        return Pipeline(f"duckdb:///{root / 'warehouse.duckdb'}", store=root / "lake").copy(
            Visit, "visits"
        )


class CountryTotals(PipelineTask):
    """Seconds per country, rebuilt after each load."""

    folder: str = luigi.Parameter()

    def requires(self) -> LoadVisits:
        return LoadVisits(folder=self.folder)

    def pipeline(self) -> Pipeline:
        root = Path(str(self.folder))
        return Pipeline(f"duckdb:///{root / 'warehouse.duckdb'}").sql(
            "CREATE OR REPLACE TABLE country_totals AS "
            "SELECT country, sum(seconds) AS seconds FROM visits GROUP BY country"
        )

    def complete(self) -> bool:
        # done when it ran after the last load: its inputs must be complete, and so itself
        return bool(self.requires().complete()) and super().complete()


def write_visits(lake: Path, name: str, visits: list[dict[str, object]]) -> None:
    folder = lake / "visits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(v) + "\n" for v in visits))


def main(folder: str = "arbalest-luigi") -> bool:
    root = Path(folder)
    if not (root / "lake").exists():
        write_visits(
            root / "lake",
            "2026-11-25.json",
            [
                {"id": "v1", "country": "FR", "seconds": 30},
                {"id": "v2", "country": "DE", "seconds": 5},
            ],
        )
    built = luigi.build(  # type: ignore[no-untyped-call]  # luigi.build has no annotations
        [CountryTotals(folder=str(root))], local_scheduler=True
    )
    if not built:
        print("the graph failed: see Luigi's summary above")
        return False
    engine = sa.create_engine(f"duckdb:///{root / 'warehouse.duckdb'}")
    try:
        with engine.connect() as conn:
            totals = conn.execute(sa.text("SELECT * FROM country_totals ORDER BY 1")).all()
    finally:
        engine.dispose()
    print("seconds per country:", ", ".join(f"{c} {s}" for c, s in totals))
    return True


if __name__ == "__main__":
    main(*sys.argv[1:2])
