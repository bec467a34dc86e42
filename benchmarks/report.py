"""The report of a run: each load's medians over its rounds, its ratios to the floor, the
rounds themselves, how the figures grow with N, and the targets.

A result row is a child's measurement (``Measurement.as_dict()``) tagged with its ``size``
and ``round``, or a failure (``method``, ``error``, ``size``, ``round``).

The ratios to the floor are taken round by round and their median is reported: each
Arbalest load is divided by the floor run just before it, on a machine in the same state, so
a slow minute slows both sides of a ratio instead of one side of a ratio of medians.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import events

WAREHOUSES = ("postgresql", "duckdb")
FORMATS = ("json", "parquet", "csv")
#: Each (warehouse, source format)'s floor. PostgreSQL reads no Parquet: the floor of its
#: Parquet loads is the server's COPY of the same rows as CSV (see methods.postgres_csv_floor).
FLOORS = {
    ("postgresql", "json"): "floor postgresql COPY csv",
    ("duckdb", "json"): "floor duckdb read_json",
    ("postgresql", "parquet"): "floor postgresql COPY csv files",
    ("postgresql", "csv"): "floor postgresql COPY csv files",
    ("duckdb", "parquet"): "floor duckdb read_parquet",
    ("duckdb", "csv"): "floor duckdb read_csv",
}
#: A hand-written replace, where a warehouse's floor has one (informative: the targets are
#: judged against the floor above, a load into an empty table).
REPLACE_FLOORS = {"postgresql": "floor postgresql replace DELETE + COPY csv"}
TARGET_RATIO = 0.75  # of the floor's speed, wall and CPU
TARGET_FORMAT_RATIO = 0.5  # Parquet's and CSV's loads, of their own floor's speed
TARGET_ROUNDS = 5  # the floor targets are judged on medians of at least this many rounds
TARGET_PEAK_MB = 250
TARGET_DLT = 10
TARGET_S3 = 0.7  # of the folder store's speed
Row = dict[str, Any]


@dataclass(frozen=True)
class SizeRun:
    """One size of a run: its data set, its rounds, and whether it is ``-n`` (every method)."""

    size: int
    data: Path
    rounds: int
    main: bool


@dataclass
class Series:
    """One measured load (say ``arbalest duckdb folder incremental``) at one size, over its
    rounds (failed rounds are absent)."""

    name: str
    size: int
    runs: list[Row]

    @property
    def rows(self) -> int:
        return int(self.runs[0]["rows"])

    @property
    def wall(self) -> float:
        """Median wall seconds."""
        return statistics.median(float(r["seconds"]) for r in self.runs)

    @property
    def cpu(self) -> float | None:
        """Median CPU seconds; None if a round's could not be measured."""
        return _median([r["cpu_seconds"] for r in self.runs])

    @property
    def server_cpu(self) -> float | None:
        """Median CPU seconds of the PostgreSQL server's processes (part of ``cpu``)."""
        return _median([r["server_cpu_seconds"] for r in self.runs])

    @property
    def peak(self) -> float:
        """Peak RSS in MB, the largest of the rounds."""
        return max(float(r["peak_rss_mb"]) for r in self.runs)

    @property
    def rate(self) -> float | None:
        """Rows per second at the median wall time."""
        return self.rows / self.wall if self.rows and self.wall else None

    @property
    def warehouse(self) -> str | None:
        return next((w for w in WAREHOUSES if w in self.name.split()), None)

    @property
    def fmt(self) -> str:
        """The source format an Arbalest load reads (``"json"`` unless its name says)."""
        return next((f for f in FORMATS[1:] if f in self.name.split()), "json")

    @property
    def is_load(self) -> bool:
        """An Arbalest load of rows, compared with its warehouse's floor."""
        return self.name.startswith("arbalest ") and not self.name.endswith(" rerun")

    def ratios(self, floor: Series | None, key: str) -> list[float | None]:
        """Per round: this load's speed over the floor's in the same round, by wall time
        (``key="seconds"``) or CPU time (``key="cpu_seconds"``); None where either is
        missing."""
        if floor is None:
            return [None for _ in self.runs]
        floors = {r["round"]: r for r in floor.runs}
        out: list[float | None] = []
        for ours in self.runs:
            theirs = floors.get(ours["round"])
            if theirs is None or not ours[key] or not theirs[key] or not ours["rows"]:
                out.append(None)
                continue
            out.append((ours["rows"] / ours[key]) / (theirs["rows"] / theirs[key]))
        return out


def _median(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return statistics.median(float(v) for v in values if v is not None)


def _ratio_median(values: Sequence[float | None]) -> float | None:
    """The median of the rounds' ratios that could be taken."""
    taken = [v for v in values if v is not None]
    return statistics.median(taken) if taken else None


def rate(row: Row) -> str:
    """Rows per second of one child's measurement, for the progress lines."""
    if not row.get("rows") or not row.get("seconds"):
        return "-"
    return f"{row['rows'] / row['seconds']:,.0f}"


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _times(value: float | None) -> str:
    return _fmt(value, ".2f", "×")


def _listed(values: Sequence[float | None], show: Callable[[float | None], str]) -> str:
    return ", ".join(show(v) for v in values)


class Results:
    """The result rows grouped into series by size and name, in the order they ran."""

    def __init__(self, rows: list[Row], runs: list[SizeRun]) -> None:
        self.runs = runs
        self.failures = [r for r in rows if r.get("error")]
        self.series: dict[tuple[int, str], Series] = {}
        for row in rows:
            if row.get("error"):
                continue
            key = (row["size"], row["method"])
            self.series.setdefault(key, Series(row["method"], row["size"], [])).runs.append(row)

    @property
    def main(self) -> SizeRun:
        return next(run for run in self.runs if run.main)

    def at(self, size: int) -> list[Series]:
        return [s for (n, _), s in self.series.items() if n == size]

    def get(self, size: int, name: str) -> Series | None:
        return self.series.get((size, name))

    def floor(self, series: Series) -> Series | None:
        warehouse = series.warehouse
        return self.get(series.size, FLOORS[warehouse, series.fmt]) if warehouse else None

    def dlt(self, series: Series) -> Series | None:
        return self.get(series.size, f"dlt {series.warehouse}") if series.warehouse else None

    def wall_ratio(self, series: Series) -> float | None:
        return _ratio_median(series.ratios(self.floor(series), "seconds"))

    def cpu_ratio(self, series: Series) -> float | None:
        return _ratio_median(series.ratios(self.floor(series), "cpu_seconds"))

    def paired_rounds(self, series: Series) -> int:
        """Rounds with both a wall and a CPU ratio to the floor."""
        floor = self.floor(series)
        walls, cpus = series.ratios(floor, "seconds"), series.ratios(floor, "cpu_seconds")
        pairs = zip(walls, cpus, strict=True)
        return sum(1 for wall, cpu in pairs if wall is not None and cpu is not None)


def render(rows: list[Row], runs: list[SizeRun], header: list[str]) -> str:
    """The whole report, Markdown, for the results block of RESULTS.md."""
    results = Results(rows, runs)
    lines = [*header, "", *_method_note(results)]
    for run in runs:
        lines += ["", *_size_section(results, run)]
    if len(runs) > 1:
        lines += ["", *_growth(results)]
    lines += ["", "Targets:", ""]
    lines += [f"- {t}" for t in _targets(results)]
    if results.failures:
        lines += ["", "Failures:", ""]
        lines += [
            f"- {r['method']} at N = {r['size']:,}, round {r['round']}: {r['error']}"
            for r in results.failures
        ]
    return "\n".join(lines) + "\n"


def _method_note(results: Results) -> list[str]:
    rounds = ", ".join(f"{run.rounds} at N = {run.size:,}" for run in results.runs)
    return [
        f"Rounds: {rounds}. In each round every warehouse's floor runs, then Arbalest's loads "
        "into it, each in a child process of its own; dlt, planning and listing run once. "
        "Wall and CPU seconds are medians over the rounds, peak RSS the largest. "
        "× floor (wall) is the median over rounds of the round's ratio (Arbalest's rows/s "
        "over the floor's rows/s in the same round); × floor (CPU) the same with rows per CPU "
        "second. "
        "CPU seconds: the child's own (user + system, every thread) plus, for PostgreSQL "
        "loads, every `postgres` server process's over the same span (from /proc). "
        "Parquet and CSV loads are compared with their own format's floor: DuckDB's "
        "`read_parquet` / `read_csv` of the same objects; PostgreSQL's `COPY ... CSV` of the "
        "CSV objects for both (PostgreSQL reads no Parquet)."
    ]


def _size_section(results: Results, run: SizeRun) -> list[str]:
    expected = events.expected(run.data)
    lines = [
        f"### N = {run.size:,}: {run.rounds} round{'s' if run.rounds > 1 else ''}",
        "",
        f"Data: {run.data.name}, {expected['rows']:,} events in {len(events.parts(run.data))} "
        "objects.",
        "",
        "| load | rows | wall s | rows/s | CPU s | of which PG server | peak RSS MB "
        "| × floor (wall) | × floor (CPU) | × dlt | checked |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for series in results.at(run.size):
        load = series.is_load
        dlt = results.dlt(series)
        server = _fmt(series.server_cpu) if series.warehouse == "postgresql" else ""
        lines.append(
            f"| {series.name} | {series.rows:,} | {series.wall:.2f} | {_fmt(series.rate, ',.0f')} "
            f"| {_fmt(series.cpu)} | {server} "
            f"| {series.peak:.0f} "
            f"| {_times(results.wall_ratio(series)) if load else ''} "
            f"| {_times(results.cpu_ratio(series)) if load else ''} "
            f"| {_times(_over(series.rate, dlt.rate if dlt else None)) if load else ''} "
            f"| {_checked(series)} |"
        )
    for failure in results.failures:
        if failure["size"] == run.size:
            lines.append(
                f"| {failure['method']} (round {failure['round']}) | failed: "
                f"{failure['error']} | | | | | | | | | |"
            )
    rounded = [s for s in results.at(run.size) if len(s.runs) > 1]
    if rounded:
        lines += [
            "",
            "Round by round (round 1 first):",
            "",
            "| load | wall s | CPU s | × floor (wall) | × floor (CPU) |",
            "|---|---|---|---|---|",
        ]
        for series in rounded:
            floor = results.floor(series) if series.is_load else None
            walls = [float(r["seconds"]) for r in series.runs]
            cpus = [r["cpu_seconds"] for r in series.runs]
            lines.append(
                f"| {series.name} | {_listed(walls, _fmt)} | {_listed(cpus, _fmt)} "
                f"| {_listed(series.ratios(floor, 'seconds'), _times) if floor else ''} "
                f"| {_listed(series.ratios(floor, 'cpu_seconds'), _times) if floor else ''} |"
            )
    return lines


def _over(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _checked(series: Series) -> str:
    verdicts = {r.get("verified") for r in series.runs}
    if False in verdicts:
        bad = [str(r["round"]) for r in series.runs if r.get("verified") is False]
        text = f"**NO** (round {', '.join(bad)})"
    else:
        text = "yes" if True in verdicts else "-"
    details = {
        json.dumps({k: v for k, v in r.get("detail", {}).items() if k != "fingerprint"})
        for r in series.runs
    }
    details.discard("{}")
    return text + "".join(f" {d}" for d in sorted(details))


def _growth(results: Results) -> list[str]:
    """How time per row, rows/s and peak RSS move from the smallest size to the largest."""
    sizes = [run.size for run in results.runs]
    smallest = sizes[0]
    names = [
        s.name for s in results.at(smallest) if s.rows and (s.is_load or s.name in FLOORS.values())
    ]
    lines = [
        f"### From N = {smallest:,} to N = {sizes[-1]:,}",
        "",
        "Per row, at the median wall and CPU times; ÷ smallest N is the time per row over "
        f"that at N = {smallest:,} (flat cost per row: 1.00).",
        "",
        "| load | N | rows/s | wall µs/row | CPU µs/row | peak RSS MB "
        "| wall µs/row ÷ smallest N | CPU µs/row ÷ smallest N |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        first = results.get(smallest, name)
        assert first is not None
        for size in sizes:
            series = results.get(size, name)
            if series is None:
                continue
            wall, cpu = series.wall / series.rows * 1e6, _per_row(series.cpu, series.rows)
            lines.append(
                f"| {name} | {size:,} | {_fmt(series.rate, ',.0f')} | {wall:.2f} | {_fmt(cpu)} "
                f"| {series.peak:.0f} | {wall / (first.wall / first.rows * 1e6):.2f} "
                f"| {_fmt(_over(cpu, _per_row(first.cpu, first.rows)))} |"
            )
    return lines


def _per_row(seconds: float | None, rows: int) -> float | None:
    return None if seconds is None or not rows else seconds / rows * 1e6


def _verdict(ok: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[ok]


def _targets(results: Results) -> list[str]:
    main = results.main
    out = []
    for warehouse in WAREHOUSES:
        for mode in ("incremental", "replace"):
            series = results.get(main.size, f"arbalest {warehouse} folder {mode}")
            wall = results.wall_ratio(series) if series else None
            cpu = results.cpu_ratio(series) if series else None
            ok = None if wall is None or cpu is None else min(wall, cpu) >= TARGET_RATIO
            verdict = _verdict(ok)
            # rounds where both ratios could be taken (a failed round gives none)
            rounds = results.paired_rounds(series) if series else 0
            if ok is not None and rounds < TARGET_ROUNDS:
                verdict = f"not judged ({rounds} rounds; the target needs {TARGET_ROUNDS})"
            out.append(
                f"{warehouse}, folder store, {mode}: ≥ {TARGET_RATIO}× the floor, wall and CPU "
                f"(medians of ≥ {TARGET_ROUNDS} interleaved rounds, N = {main.size:,}): "
                f"{_times(wall)} wall, {_times(cpu)} CPU {verdict}"
            )
            like = results.get(main.size, REPLACE_FLOORS.get(warehouse, ""))
            if mode == "replace" and series and like:
                wall = _ratio_median(series.ratios(like, "seconds"))
                cpu = _ratio_median(series.ratios(like, "cpu_seconds"))
                out.append(
                    f"{warehouse}, folder store, replace against a hand-written replace "
                    f"({like.name}, in one transaction; informative, not a target): "
                    f"{_times(wall)} wall, {_times(cpu)} CPU"
                )
    out += _format_targets(results)
    out += _peak_targets(results)
    for warehouse in WAREHOUSES:
        folder = results.get(main.size, f"arbalest {warehouse} folder incremental")
        dlt = results.get(main.size, f"dlt {warehouse}")
        ratio = _over(folder.rate if folder else None, dlt.rate if dlt else None)
        out.append(
            f"{warehouse}: ≥ {TARGET_DLT}× dlt (median rows/s over dlt's one run): "
            f"{_times(ratio)} {_verdict(None if ratio is None else ratio >= TARGET_DLT)}"
        )
    for warehouse in WAREHOUSES:
        folder = results.get(main.size, f"arbalest {warehouse} folder incremental")
        s3 = results.get(main.size, f"arbalest {warehouse} s3 incremental")
        ratio = _over(s3.rate if s3 else None, folder.rate if folder else None)
        out.append(
            f"{warehouse}: S3 (moto) ≥ {TARGET_S3}× the folder store (median rows/s): "
            f"{_times(ratio)} {_verdict(None if ratio is None else ratio >= TARGET_S3)}"
        )
    out.append(_fingerprints(results))
    format_prints = _format_fingerprints(results)
    if format_prints:
        out.append(format_prints)
    for series in results.at(main.size):
        run = series.runs[0]
        if series.name.startswith("plan "):
            out.append(
                f"{series.name}: {series.wall:.2f} s < 5 s {_verdict(series.wall < 5)}"
                f"{'' if run['verified'] else ' (**wrong plan**)'}"
            )
        if series.name.startswith("s3 listing"):
            detail = run["detail"]
            out.append(
                f"{series.name}: {series.wall:.2f} s (moto's server is most of it); the listing "
                f"kept whole is {detail['listing_held_mb']} MB of Python heap, the pages on "
                f"the way add {detail['pages_in_flight_mb']} MB at most "
                f"{_verdict(_paged(detail))} (pages are not all held: under a tenth of the "
                "listing)"
            )
    return out


def _format_targets(results: Results) -> list[str]:
    """Parquet's and CSV's folder loads against their own floors, where they ran."""
    main = results.main
    out = []
    for warehouse in WAREHOUSES:
        for fmt in FORMATS[1:]:
            for mode in ("incremental", "replace"):
                series = results.get(main.size, f"arbalest {warehouse} folder {fmt} {mode}")
                if series is None:
                    continue
                wall, cpu = results.wall_ratio(series), results.cpu_ratio(series)
                ok = None if wall is None or cpu is None else min(wall, cpu) >= TARGET_FORMAT_RATIO
                peak = series.peak
                out.append(
                    f"{warehouse}, folder store, {fmt}, {mode}: ≥ {TARGET_FORMAT_RATIO}× "
                    f"{FLOORS[warehouse, fmt]}, wall and CPU ({len(series.runs)} rounds, "
                    f"N = {main.size:,}): {_times(wall)} wall, {_times(cpu)} CPU "
                    f"{_verdict(ok)}; peak RSS {peak:.0f} MB "
                    f"{_verdict(peak < TARGET_PEAK_MB)} (< {TARGET_PEAK_MB} MB)"
                )
    return out


def _format_fingerprints(results: Results) -> str | None:
    """Whether every round of the Parquet and CSV loads holds the rows the JSON loads
    hold, per size (None: no such load ran)."""
    agree = []
    for run in results.runs:
        prints = {
            json.dumps(r["detail"]["fingerprint"], sort_keys=True)
            for warehouse in WAREHOUSES
            for fmt in FORMATS
            if (
                s := results.get(
                    run.size,
                    f"arbalest {warehouse} folder{'' if fmt == 'json' else ' ' + fmt} incremental",
                )
            )
            for r in s.runs
        }
        formats = [
            fmt
            for fmt in FORMATS[1:]
            for w in WAREHOUSES
            if results.get(run.size, f"arbalest {w} folder {fmt} incremental")
        ]
        if formats:
            agree.append((run.size, len(prints) == 1))
    if not agree:
        return None
    sizes = ", ".join(f"N = {size:,}{'' if ok else ' (**differ**)'}" for size, ok in agree)
    return (
        "Parquet, CSV and JSON loads hold the same rows (fingerprint, every round, both "
        f"warehouses): {sizes}: {_verdict(all(ok for _, ok in agree))}"
    )


def _peak_targets(results: Results) -> list[str]:
    """Peak RSS under the target at every size, per warehouse and mode (every store)."""
    out = []
    for warehouse in WAREHOUSES:
        for mode in ("incremental", "replace"):
            peaks = []
            for run in results.runs:
                loads = [
                    s
                    for store in ("folder", "s3")
                    if (s := results.get(run.size, f"arbalest {warehouse} {store} {mode}"))
                ]
                if loads:
                    peaks.append((run.size, max(s.peak for s in loads)))
            measured = ", ".join(f"{peak:.0f} MB at N = {size:,}" for size, peak in peaks)
            ok = all(peak < TARGET_PEAK_MB for _, peak in peaks) if peaks else None
            out.append(
                f"{warehouse}, {mode}: peak RSS < {TARGET_PEAK_MB} MB at every size (largest "
                f"of the rounds and stores): {measured or '-'} {_verdict(ok)}"
            )
    return out


def _fingerprints(results: Results) -> str:
    """Whether every round of both warehouses' folder loads holds the same rows, per size."""
    agree = []
    for run in results.runs:
        prints = {
            json.dumps(r["detail"]["fingerprint"], sort_keys=True)
            for warehouse in WAREHOUSES
            if (s := results.get(run.size, f"arbalest {warehouse} folder incremental"))
            for r in s.runs
        }
        both = all(results.get(run.size, f"arbalest {w} folder incremental") for w in WAREHOUSES)
        if both:
            agree.append((run.size, len(prints) == 1))
    sizes = ", ".join(f"N = {size:,}{'' if ok else ' (**differ**)'}" for size, ok in agree)
    ok = all(same for _, same in agree) if agree else None
    return (
        "DuckDB and PostgreSQL loads hold the same rows (fingerprint, every round)"
        f"{': ' + sizes if sizes else ''}: {_verdict(ok)}"
    )


def _paged(detail: dict[str, float]) -> bool:
    return detail["pages_in_flight_mb"] < 0.1 * detail["listing_held_mb"]
