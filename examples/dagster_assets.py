"""A pipeline's tables as Dagster assets: visits and pages, with a freshness check.

    pip install 'arbalest[dagster]>=2'    # from a clone: pip install -e '.[dagster]'
    python examples/dagster_assets.py [FOLDER]        # materialise them here, in process

In a code location of your own, ``defs = definitions(Path("/data/site"))``.

Each materialisation carries the run's figures (rows loaded and rejected, objects, seconds);
the freshness check reads the journal's last load, so it fails when no new object has been
loaded for an hour, however often Dagster runs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from pathlib import Path

import dagster

from arbalest import Integer, Pipeline, Schema, String
from arbalest.contrib.dagster import pipeline_assets


class Visit(Schema):
    """One visit to the site."""

    __tablename__ = "visits"

    id = String(36, primary_key=True)
    country = String(2)
    seconds = Integer()


class Page(Schema):
    """The site's pages."""

    __tablename__ = "pages"

    path = String(200, primary_key=True)
    title = String(200)


def write(lake: Path, folder: str, records: list[dict[str, object]]) -> None:
    (lake / folder).mkdir(parents=True, exist_ok=True)
    (lake / folder / "2026-11-25.json").write_text("".join(json.dumps(r) + "\n" for r in records))


def site(folder: Path) -> Pipeline:
    if not (folder / "lake").exists():
        write(
            folder / "lake",
            "visits",
            [
                {"id": "v1", "country": "FR", "seconds": 30},
                {"id": "v2", "country": "DE", "seconds": 5},
            ],
        )
        write(folder / "lake", "pages", [{"path": "/", "title": "Home"}])
    return (
        Pipeline(f"duckdb:///{folder / 'warehouse.duckdb'}", store=folder / "lake", name="site")
        .copy(Visit, "visits")
        .copy(Page, "pages", mode="replace")
    )


def assets_and_checks(
    folder: Path,
) -> tuple[dagster.AssetsDefinition, list[dagster.AssetChecksDefinition]]:
    """The pipeline's tables as assets, and a check that each had a load in the last hour."""
    assets = pipeline_assets(site(folder), group_name="site")
    with warnings.catch_warnings():  # Dagster prefers its daemon's FreshnessPolicy now
        warnings.simplefilter("ignore", dagster.SupersessionWarning)
        checks = dagster.build_last_update_freshness_checks(
            assets=[assets], lower_bound_delta=dt.timedelta(hours=1)
        )
    return assets, list(checks)


def definitions(folder: Path) -> dagster.Definitions:
    assets, checks = assets_and_checks(folder)
    return dagster.Definitions(assets=[assets], asset_checks=checks)


def main(folder: str = "arbalest-dagster") -> bool:
    assets, checks = assets_and_checks(Path(folder).resolve())
    with dagster.DagsterInstance.ephemeral() as instance:
        result = dagster.materialize([assets, *checks], instance=instance)
        for event in result.get_asset_materialization_events():
            meta = event.step_materialization_data.materialization.metadata
            name = event.asset_key.to_user_string() if event.asset_key else "?"
            print(
                f"{name}: {meta['rows_loaded'].value} rows loaded, "
                f"{meta['rows_rejected'].value} rejected, {meta['journal_objects'].value} "
                "objects in the journal"
            )
        for evaluation in result.get_asset_check_evaluations():
            status = "fresh" if evaluation.passed else "overdue"
            print(f"{evaluation.asset_key.to_user_string()}: {status}")
    return result.success


if __name__ == "__main__":
    sys.exit(0 if main(*sys.argv[1:2]) else 1)
