"""The report's arithmetic on made-up measurements: medians over rounds, ratios to the floor
taken round by round, CPU that could not be measured shown as "-", and the targets' verdicts.
No process is started and nothing is timed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import report


def _data(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / f"events-n{n}"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"expected": {"rows": n}}))
    return folder


def _row(
    name: str,
    size: int,
    round_: int,
    seconds: float,
    cpu: float | None,
    peak: float = 100.0,
    server: float | None = None,
) -> dict[str, Any]:
    return {
        "method": name,
        "rows": size,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "cpu_seconds": cpu,
        "server_cpu_seconds": server,
        "verified": True,
        "detail": {"fingerprint": {"rows": size}},
        "size": size,
        "round": round_,
    }


FLOOR_DUCK = "floor duckdb read_json"
OURS_DUCK = "arbalest duckdb folder incremental"
FLOOR_PG = "floor postgresql COPY csv"
OURS_PG = "arbalest postgresql folder incremental"


def _rows(size: int, scale: float = 1.0) -> list[dict[str, Any]]:
    rows = []
    # floor 1, 1, 3 s and ours 2, 4, 3 s: ratios 0.5, 0.25, 1.0 by round, median 0.5 (the
    # ratio of the medians would be 1 / 3)
    for round_, (floor, ours) in enumerate([(1.0, 2.0), (1.0, 4.0), (3.0, 3.0)], start=1):
        rows.append(_row(FLOOR_DUCK, size, round_, floor * scale, floor * scale, peak=120))
        rows.append(
            _row(OURS_DUCK, size, round_, ours * scale, 2 * ours * scale, peak=100 + round_)
        )
        # PostgreSQL's server CPU could not be read: CPU seconds unknown, never guessed
        rows.append(_row(FLOOR_PG, size, round_, floor * scale, None))
        rows.append(_row(OURS_PG, size, round_, ours * scale, None))
    return rows


def _render(tmp_path: Path, rows: list[dict[str, Any]], sizes: list[int], rounds: int) -> str:
    runs = [report.SizeRun(n, _data(tmp_path, n), rounds, n == sizes[-1]) for n in sizes]
    return report.render(rows, runs, ["header"])


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_ratios_are_medians_of_round_by_round_ratios(tmp_path: Path) -> None:
    text = _render(tmp_path, _rows(1000), [1000], 3)
    cells = _line(text, f"| {OURS_DUCK} | 1,000 |").split(" | ")
    # rows, wall median, rows/s, CPU median, (no server), peak of the rounds, × floor, × CPU
    assert cells[1:9] == ["1,000", "3.00", "333", "6.00", "", "103", "0.50×", "0.25×"]
    by_round = _line(text.split("Round by round", 1)[1], f"| {OURS_DUCK} |")
    assert "| 2.00, 4.00, 3.00 | 4.00, 8.00, 6.00 | 0.50×, 0.25×, 1.00× |" in by_round


def test_unmeasured_cpu_is_a_dash_and_judges_nothing(tmp_path: Path) -> None:
    text = _render(tmp_path, _rows(1000), [1000], 5)
    cells = _line(text, f"| {OURS_PG} | 1,000 |").split(" | ")
    assert cells[4:6] == ["-", "-"]  # CPU s, of which PG server
    assert cells[8] == "-"  # × floor (CPU)
    target = _line(text, "- postgresql, folder store, incremental:")
    assert target.endswith("0.50× wall, - CPU not measured")


def test_fewer_rounds_than_the_target_needs_are_not_judged(tmp_path: Path) -> None:
    text = _render(tmp_path, _rows(1000), [1000], 3)
    target = _line(text, "- duckdb, folder store, incremental:")
    assert target.endswith("0.50× wall, 0.25× CPU not judged (3 rounds; the target needs 5)")


def test_growth_compares_time_per_row_with_the_smallest_size(tmp_path: Path) -> None:
    # ten times the rows in twenty times the time: twice the cost per row
    rows = _rows(1000) + _rows(10_000, scale=20.0)
    text = _render(tmp_path, rows, [1000, 10_000], 3)
    growth = text.split("### From N = 1,000 to N = 10,000", 1)[1]
    assert _line(growth, f"| {OURS_DUCK} | 1,000 |").endswith("| 1.00 | 1.00 |")
    assert _line(growth, f"| {OURS_DUCK} | 10,000 |").endswith("| 2.00 | 2.00 |")
    assert _line(growth, f"| {OURS_PG} | 10,000 |").endswith("| 2.00 | - |")
    peak = _line(text, "- duckdb, incremental: peak RSS")
    assert "103 MB at N = 1,000, 103 MB at N = 10,000 **met**" in peak


# -- Parquet and CSV: each against its own floor -----------------------------------------------


def _format_rows(size: int) -> list[dict[str, Any]]:
    """Two rounds of the DuckDB Parquet and CSV floors and loads, and of PostgreSQL's CSV
    floor with its Parquet and CSV loads (the JSON floors ran too, and must not be used)."""
    rows = []
    for round_ in (1, 2):
        rows += [
            _row(FLOOR_DUCK, size, round_, 100.0, 100.0),
            _row(FLOOR_PG, size, round_, 100.0, 100.0),
            _row("floor duckdb read_parquet", size, round_, 1.0, 1.0),
            # ours: half the floor's speed in wall time, a quarter in CPU
            _row("arbalest duckdb folder parquet incremental", size, round_, 2.0, 4.0, peak=300),
            _row("floor duckdb read_csv", size, round_, 2.0, 2.0),
            _row("arbalest duckdb folder csv incremental", size, round_, 8.0, 8.0),
            _row("floor postgresql COPY csv files", size, round_, 1.0, 1.0, server=0.5),
            _row("arbalest postgresql folder parquet incremental", size, round_, 1.0, 1.0),
            _row("arbalest postgresql folder csv incremental", size, round_, 4.0, 2.0),
        ]
    return rows


def test_each_format_is_compared_with_its_own_floor(tmp_path: Path) -> None:
    text = _render(tmp_path, _format_rows(1000), [1000], 2)

    def ratios(name: str) -> list[str]:
        return _line(text, f"| {name} | 1,000 |").split(" | ")[7:9]

    assert ratios("arbalest duckdb folder parquet incremental") == ["0.50×", "0.25×"]
    assert ratios("arbalest duckdb folder csv incremental") == ["0.25×", "0.25×"]
    # PostgreSQL reads no Parquet: its Parquet loads are held to the COPY of the CSV copies
    assert ratios("arbalest postgresql folder parquet incremental") == ["1.00×", "1.00×"]
    assert ratios("arbalest postgresql folder csv incremental") == ["0.25×", "0.50×"]


def test_format_targets_are_half_the_floor_and_name_it(tmp_path: Path) -> None:
    text = _render(tmp_path, _format_rows(1000), [1000], 2)
    parquet = _line(text, "- duckdb, folder store, parquet, incremental:")
    assert "≥ 0.5× floor duckdb read_parquet" in parquet
    assert "0.50× wall, 0.25× CPU **not met**; peak RSS 300 MB **not met**" in parquet
    pg = _line(text, "- postgresql, folder store, parquet, incremental:")
    assert "≥ 0.5× floor postgresql COPY csv files" in pg
    assert "1.00× wall, 1.00× CPU **met**; peak RSS 100 MB **met**" in pg
    # no replace load ran: no target line for it
    assert "parquet, replace" not in text
    assert "Parquet, CSV and JSON loads hold the same rows" in text


def test_format_loads_that_hold_other_rows_than_json_are_flagged(tmp_path: Path) -> None:
    rows = _format_rows(1000)
    rows.append(_row("arbalest duckdb folder incremental", 1000, 1, 1.0, 1.0))
    rows[3]["detail"] = {"fingerprint": {"rows": 999}}  # a Parquet load lost a row
    text = _render(tmp_path, rows, [1000], 2)
    line = _line(text, "- Parquet, CSV and JSON loads hold the same rows")
    assert line.endswith("N = 1,000 (**differ**): **not met**")


def test_postgresql_replace_is_also_shown_against_a_hand_written_replace(
    tmp_path: Path,
) -> None:
    replace, like = "arbalest postgresql folder replace", report.REPLACE_FLOORS["postgresql"]
    rows = []
    # the floor 1 s, the hand-written replace 2 s, ours 4 s (CPU: 1, 3, 4) in every round
    for round_ in range(1, 6):
        rows.append(_row(FLOOR_PG, 1000, round_, 1.0, 1.0))
        rows.append(_row(like, 1000, round_, 2.0, 3.0))
        rows.append(_row(replace, 1000, round_, 4.0, 4.0))
    text = _render(tmp_path, rows, [1000], 5)
    # the target is still judged against the load into an empty table
    target = "postgresql, folder store, replace: ≥ 0.75× the floor, wall and CPU"
    assert "0.25× wall, 0.25× CPU **not met**" in _line(text, f"- {target}")
    informative = _line(text, "- postgresql, folder store, replace against a hand-written")
    assert f"({like}, in one transaction; informative, not a target)" in informative
    assert informative.endswith(": 0.50× wall, 0.75× CPU")
