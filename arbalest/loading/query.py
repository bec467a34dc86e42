"""The SQL text of the vectorised transform: the query that converts a batch's lines (one
parse per record, each column's conversion rule, the error columns, the drift report's keys)
and the queries around it. ``transform.Transform`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from arbalest import convert
from arbalest.convert import BAD_RECORD, MAX_RECORD_BYTES, NOT_NULL, sql_literal
from arbalest.loading.drift import ReadObjects
from arbalest.loading.reader import Chunk
from arbalest.schema._build import ColumnSpec
from arbalest.schema.jsonpath import JSONPath, duckdb_path

__all__ = ["ConversionSQL"]

_TIME_TYPES: Final = ("TIMESTAMP", "TIME")  # values that hold ":"


class ConversionSQL:
    """The transform's queries for a schema's columns under a set of COPY options (a base
    class: ``specs``, ``options`` and ``objects`` are the transform's)."""

    specs: list[ColumnSpec]
    options: convert.ConvertOptions
    objects: ReadObjects

    @property
    def column_types(self) -> list[str]:
        """The DuckDB types of the converted columns ``v1 ... vn``."""
        return [spec.rule.sql_type for spec in self.specs]

    def conversion_sql(self, source: str, slow: str, *, every_record: bool = False) -> str:
        """The query converting ``source`` (chunk, line, idx, l) rows; ``slow`` flags lines to
        skip. ``idx`` is the record's place among the records ending on its line.

        Output columns: chunk, line, idx, slow, k (the keys of the objects the schema reads
        into, for the drift report: NULL for a record that has no other key; ``every_record``:
        listed for every record), v1..vn (converted), err_col, err_code, err_value.
        """
        text_cols = [s for s in self.specs if not s.rule.takes_json]
        json_cols = [s for s in self.specs if s.rule.takes_json]
        parents: list[tuple[int, str, int]] = []  # (column index, parent path, array index)
        for i, spec in enumerate(self.specs):
            for k, step in enumerate(spec.path):
                if isinstance(step, int):
                    parents.append((i, duckdb_path(spec.path[:k]), step))

        def path_list(specs: Sequence[ColumnSpec]) -> str:
            return "[" + ", ".join(sql_literal(duckdb_path(s.path)) for s in specs) + "]"

        position = ["chunk", "line", "idx", "slow"]
        level1 = list(position)
        if text_cols:
            paths = path_list(text_cols)
            level1.append(f"CASE WHEN slow THEN NULL ELSE json_extract_string(l, {paths}) END AS x")
        if json_cols:
            level1.append(
                f"CASE WHEN slow THEN NULL ELSE json_extract(l, {path_list(json_cols)}) END AS j"
            )
        if parents:
            plist = "[" + ", ".join(sql_literal(p) for _, p, _ in parents) + "]"
            level1.append(f"CASE WHEN slow THEN NULL ELSE json_extract(l, {plist}) END AS p")
        level1.append("l")  # for the drift report's keys, below

        level2 = [*position, "l"]
        t = j = 0
        for i, spec in enumerate(self.specs, start=1):
            if spec.rule.takes_json:
                j += 1
                level2.append(f"j[{j}] AS s{i}")
            else:
                t += 1
                level2.append(f"x[{t}] AS s{i}")
        for k in range(len(parents)):
            level2.append(f"p[{k + 1}] AS p{k + 1}")

        names_s = [f"s{i}" for i in range(1, len(self.specs) + 1)]
        names_v = [f"v{i}" for i in range(1, len(self.specs) + 1)]
        names_p = [f"p{k}" for k in range(1, len(parents) + 1)]
        level3 = [*position, self._keys_sql(every_record), *names_s, *names_p]
        position.append("k")
        level3 += [
            f"{spec.rule.sql_value(f's{i}', self.options)} AS v{i}"
            for i, spec in enumerate(self.specs, start=1)
        ]

        level4 = [*position, *names_s, *names_v]

        def index_fails(k: int) -> str:
            """Whether the k-th parent is there but cannot take its index."""
            p, index = f"p{k}", parents[k - 1][2]
            return (
                f"{p} IS NOT NULL AND json_type({p}) <> 'NULL' AND "
                f"(json_type({p}) <> 'ARRAY' OR json_array_length({p}) <= {index})"
            )

        for i, spec in enumerate(self.specs, start=1):
            checks = [
                f"CASE WHEN {index_fails(k)} THEN {BAD_RECORD} END"
                for k, (column, _, _) in enumerate(parents, start=1)
                if column == i - 1
            ]
            checks.append(spec.rule.sql_error(f"s{i}", f"v{i}", self.options))
            if not spec.nullable:
                checks.append(f"CASE WHEN v{i} IS NULL THEN {NOT_NULL} END")
            level4.append(f"coalesce({', '.join(checks)}) AS e{i}")

        n = len(self.specs)
        first_error = " ".join(f"WHEN e{i} IS NOT NULL THEN {i}" for i in range(1, n + 1))
        level5 = [
            *position,
            *names_s,
            *names_v,
            *[f"e{i}" for i in range(1, n + 1)],
            *names_p,
            f"CASE WHEN slow THEN NULL {first_error} END AS err_col",
        ]
        raw_values = []
        for i in range(1, n + 1):
            raw = f"CAST(s{i} AS VARCHAR)"
            mine = [k for k, (c, _, _) in enumerate(parents, start=1) if c == i - 1]
            if mine:
                # an index that cannot be taken: show what it was applied to (the first such
                # along the path; a string as its characters, as every other value is shown)
                shown = ", ".join(
                    f"CASE WHEN {index_fails(k)} THEN CASE WHEN json_type(p{k}) = 'VARCHAR' "
                    f"THEN json_extract_string(p{k}, '$') ELSE CAST(p{k} AS VARCHAR) END END"
                    for k in mine
                )
                raw = f"CASE WHEN e{i} = {BAD_RECORD} THEN coalesce({shown}) ELSE {raw} END"
            raw_values.append(f"WHEN {i} THEN {raw}")
        errors = ", ".join(f"e{i}" for i in range(1, n + 1))
        level6 = [
            *position,
            *names_v,
            "err_col",
            f"CASE WHEN err_col IS NULL THEN NULL ELSE coalesce({errors}, NULL) END AS err_code",
            f"CASE err_col {' '.join(raw_values)} END AS err_value",
        ]
        level4 += names_p
        query = f"SELECT chunk, line, idx, l, {slow} AS slow FROM ({source}) WHERE l <> ''"
        for cols in (level1, level2, level3, level4, level5, level6):
            query = f"SELECT {', '.join(cols)} FROM ({query})"
        return query

    def _keys_sql(self, every_record: bool) -> str:
        """The column ``k``: the keys of every object the schema reads into (``json_keys``, a
        second parse of the record), for the records that may hold a key no column reads;
        NULL for the others (``every_record``: listed for every record).

        The cheap test: the ``:`` in the record's text, against those the schema accounts for.
        Why it is exact: every key in JSON text is a string followed by optional blanks and
        one ``:``; every other ``:`` lies inside a string. A column's extracted value is not
        NULL only when every key along its path is in the record, so the distinct key paths
        of the columns with a value (``child`` once for ``child.name`` and
        ``child.depth.level``) are distinct keys of the record, R of them. A time column
        whose path leads into no other column's value holds its own ``:`` (``10:00:00``):
        with no ``\\u`` escape in the record, the ``:`` of its extracted value are exactly
        those inside its value's text, X in all (spans apart, as no such path is a prefix of
        another or repeated). The ``:`` outside those values number at least the keys
        outside them, and those include the R. So ``count(:) == R + X`` leaves no room for a
        key outside the time values beyond the R: no object the schema reads into has a key
        no column reads (keys inside a value no column reads into are not reported). Anything
        else (a key no column reads, one written twice, a ``null`` value, which extracts as
        NULL, a ``:`` in other text, a ``\\u`` escape, an object inside a JSON column) only
        costs the parse. Cost: about 0.5 CPU-s per million
        330-byte records (the count and the escape test are a pass over the text each).
        """
        olist = "[" + ", ".join(sql_literal(duckdb_path(p)) for p in self.objects.paths) + "]"
        keys = f"json_keys(l, {olist})"
        if every_record:
            return f"CASE WHEN slow THEN NULL ELSE {keys} END AS k"
        present: dict[JSONPath, list[str]] = {}  # key path: the columns reading through it
        for i, spec in enumerate(self.specs, start=1):
            for k, step in enumerate(spec.path):
                if isinstance(step, str):
                    present.setdefault(spec.path[: k + 1], []).append(f"s{i} IS NOT NULL")
        terms = [f"({' OR '.join(c)})::INTEGER" for c in present.values()]
        paths = [spec.path for spec in self.specs]
        timed: dict[JSONPath, int] = {}  # time columns' paths: the first column reading it
        for i, spec in enumerate(self.specs, start=1):
            if (  # the record itself is read into: never its whole text
                spec.path
                and not spec.rule.takes_json
                and spec.rule.sql_type.startswith(_TIME_TYPES)
                and not any(q != spec.path and q[: len(spec.path)] == spec.path for q in paths)
            ):
                timed.setdefault(spec.path, i)
        terms += [
            f"coalesce(strlen(s{i}) - strlen(replace(s{i}, ':', '')), 0)" for i in timed.values()
        ]
        found = "strlen(l) - strlen(replace(l, ':', ''))"
        escaped = "contains(l, '\\u') OR " if timed else ""
        return (
            f"CASE WHEN slow THEN NULL WHEN {escaped}{found} <> {' + '.join(terms) or '0'} "
            f"THEN {keys} END AS k"
        )

    @staticmethod
    def _slow_flag(careful: bool) -> str:
        """Lines the fast path leaves to the exact reader.

        Optimistic: lines that do not start a record at their first character, and overlong
        ones; a malformed line then makes the query fail, and it runs again carefully, where
        every line that is not valid JSON goes to the exact reader as well.
        """
        flag = f"strlen(l) > {MAX_RECORD_BYTES} OR left(l, 1) NOT IN ('{{', '[')"
        return f"({flag} OR NOT json_valid(l))" if careful else f"({flag})"

    @staticmethod
    def _source(chunks: Sequence[Chunk]) -> str:
        values = ", ".join(f"({sql_literal(str(c.path))}, {c.seq}, {c.first_line})" for c in chunks)
        files = "[" + ", ".join(sql_literal(str(c.path)) for c in chunks) + "]"
        return (
            "SELECT m.chunk, unnest(generate_series(m.first_line, m.first_line + len(t.ls) - 1)) "
            "AS line, 0 AS idx, unnest(t.ls) AS l "
            "FROM (SELECT filename, string_split(content, chr(10)) AS ls "
            f"FROM read_text({files})) t "
            f"JOIN (VALUES {values}) m(path, chunk, first_line) ON m.path = t.filename"
        )

    def good_rows_sql(self, *, with_position: bool = False, source: str = "_arb_batch") -> str:
        """A query over ``_arb_batch`` (or ``source``) giving the good rows, in column
        order."""
        cols = [f"v{i}" for i in range(1, len(self.specs) + 1)]
        if with_position:  # as POSITION_COLUMNS: the merge orders by them
            cols += ["chunk", "line", "idx"]
        return f"SELECT {', '.join(cols)} FROM {source} WHERE err_code IS NULL"
