"""The exact slow-path record scanner: where records start and end, and what is rejected."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import arbalest
from arbalest import Pipeline
from arbalest.convert import BAD_RECORD, MAX_RECORD_BYTES
from arbalest.loading import reader, records
from arbalest.loading.records import Carry, Malformed, Record, ScanResult, scan, strict_loads


def scan_all(lines: list[str], first_line: int = 1, **kwargs: Any) -> ScanResult:
    """Scan with every line a start (what the fast path gives when it takes nothing)."""
    return scan(lines, first_line, range(first_line, first_line + len(lines)), **kwargs)


def scan_in_chunks(lines: list[str], cuts: list[int], starts: list[int]) -> list[ScanResult]:
    """Scan ``lines`` (numbered from 1) as chunks cut before the given indexes, with carry."""
    bounds = [0, *cuts, len(lines)]
    results = []
    carry = None
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        chunk_starts = [n for n in starts if lo < n <= hi]
        result = scan(lines[lo:hi], lo + 1, chunk_starts, carry=carry, last=k == len(bounds) - 2)
        carry = result.carry
        results.append(result)
    return results


def whole_json_record(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict | list)
    except ValueError:
        return False


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """The record limit lowered to 100 bytes, so overlong records are cheap to build."""
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 100)
    return 100


# --- records: one per line, several per line, spanning lines -------------------------------


def test_each_line_of_newline_delimited_json_is_one_record_on_its_line() -> None:
    lines = ['{"a": 1}', '{"b": [1, 2]}', '[{"c": null}]']
    result = scan_all(lines, first_line=7)
    assert result.records == [
        Record(7, '{"a": 1}'),
        Record(8, '{"b": [1, 2]}'),
        Record(9, '[{"c": null}]'),
    ]
    assert result.malformed == []
    assert result.consumed == {7, 8, 9}
    assert result.carry is None


def test_several_records_on_one_line_all_end_on_that_line() -> None:
    result = scan_all(['{"a":1}{"b":2} [3]\t{"c":{}}  '])
    assert result.records == [
        Record(1, '{"a":1}'),
        Record(1, '{"b":2}'),
        Record(1, "[3]"),
        Record(1, '{"c":{}}'),
    ]
    assert result.malformed == []
    assert result.consumed == {1}


def test_a_record_spanning_lines_ends_on_the_line_of_its_closing_brace() -> None:
    lines = ["{", '  "a": [', "    1,", "    2", "  ]", "}"]
    result = scan_all(lines, first_line=10)
    assert result.records == [Record(15, "\n".join(lines))]
    assert result.malformed == []
    assert result.consumed == set(range(10, 16))


def test_a_record_that_ends_mid_line_lets_the_next_start_on_the_same_line() -> None:
    result = scan_all(['{"a":', '1} {"b":', "2}"])
    assert result.records == [Record(2, '{"a":\n1}'), Record(3, '{"b":\n2}')]
    assert result.malformed == []
    assert result.consumed == {1, 2, 3}


def test_record_text_leaves_out_the_whitespace_around_it() -> None:
    result = scan_all(['  \t{"a": 1}\r', "\t[", "]  "])
    assert result.records == [Record(1, '{"a": 1}'), Record(3, "[\n]")]


def test_braces_and_quotes_inside_strings_do_not_count() -> None:
    lines = ['{"a": "}{][", "b": "say \\"}\\"", "c": "back\\\\"}', '{"d": "\\\\\\"{"}']
    result = scan_all(lines)
    assert result.records == [Record(1, lines[0]), Record(2, lines[1])]
    assert [json.loads(r.text) for r in result.records] == [
        {"a": "}{][", "b": 'say "}"', "c": "back\\"},
        {"d": '\\"{'},
    ]


def test_the_scanner_does_not_judge_whether_a_record_is_valid_json() -> None:
    # Validity is for the fast path's JSON reader; the scanner only finds where records end.
    result = scan_all(['{"a": 1,, }', "[1 2]"])
    assert result.records == [Record(1, '{"a": 1,, }'), Record(2, "[1 2]")]
    assert result.malformed == []


def test_blank_lines_that_are_starts_are_consumed_and_give_nothing() -> None:
    result = scan_all(["", "   ", "\t\r"], first_line=3)
    assert result.records == []
    assert result.malformed == []
    assert result.consumed == {3, 4, 5}


def test_no_lines_and_no_starts_give_an_empty_result() -> None:
    assert scan([], 1, []) == ScanResult()


# --- which lines are read ----------------------------------------------------------------


def test_lines_that_are_not_starts_are_left_to_the_fast_path() -> None:
    lines = ['{"a":1}', '{"b":', "2}", '{"c":3}']
    result = scan(lines, 1, [2, 3])
    assert result.records == [Record(3, '{"b":\n2}')]
    assert result.consumed == {2, 3}


def test_a_start_inside_a_record_already_read_is_skipped() -> None:
    lines = ["[", "1,", "2", "]"]
    result = scan(lines, 1, [1, 2, 3, 4])
    assert result.records == [Record(4, "[\n1,\n2\n]")]
    assert result.consumed == {1, 2, 3, 4}


def test_a_record_takes_over_lines_the_fast_path_could_read_by_themselves() -> None:
    # Line 2 is a whole JSON array, so not a start; the open object swallows it and says so.
    lines = ['{"a":', "[1, 2]", "}"]
    result = scan(lines, 1, [1, 3])
    assert result.records == [Record(3, '{"a":\n[1, 2]\n}')]
    assert result.consumed == {1, 2, 3}


# --- malformed stretches ---------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["1", "-1.5e3", "true", "null", "nul", '"text"', '"x" {"a": 1}', '7 {"a": 1}', "abc"],
)
def test_a_top_level_scalar_is_rejected_to_the_end_of_its_line(line: str) -> None:
    result = scan_all([line, '{"ok": 1}'])
    assert result.malformed == [Malformed(1, line, "Record is not a JSON object or array")]
    assert result.records == [Record(2, '{"ok": 1}')]
    assert result.consumed == {1, 2}


def test_a_scalar_after_a_record_rejects_the_rest_of_the_line_only() -> None:
    result = scan_all(['{"a": 1} 2 {"b": 2}'])
    assert result.records == [Record(1, '{"a": 1}')]
    assert result.malformed == [Malformed(1, '2 {"b": 2}', "Record is not a JSON object or array")]


@pytest.mark.parametrize("char", ["}", "]", ",", ":"])
def test_a_stray_structural_character_is_rejected_to_the_end_of_its_line(char: str) -> None:
    result = scan_all([f'{{"a": 1}}  {char} {{"b": 2}}', '{"c": 3}'])
    assert result.records == [Record(1, '{"a": 1}'), Record(2, '{"c": 3}')]
    assert result.malformed == [Malformed(1, f'{char} {{"b": 2}}', f"Unexpected {char!r}")]


def test_commas_between_records_on_one_line_reject_what_follows_the_first() -> None:
    result = scan_all(['{"a":1}, {"b":2}'])
    assert result.records == [Record(1, '{"a":1}')]
    assert result.malformed == [Malformed(1, ', {"b":2}', "Unexpected ','")]


def test_an_unterminated_top_level_string_is_rejected() -> None:
    result = scan_all(['  "abc {a: 1}', "[]"])
    assert result.malformed == [Malformed(1, '"abc {a: 1}', "Unterminated string")]
    assert result.records == [Record(2, "[]")]


def test_a_string_broken_by_a_line_end_rejects_to_the_end_of_that_line() -> None:
    lines = ["{", '"a": "one', 'two"}', '{"b": 2}']
    result = scan(lines, 1, [1, 3])
    assert result.malformed == [
        Malformed(2, '{\n"a": "one', "String broken by a line end"),
        Malformed(3, 'two"}', "Record is not a JSON object or array"),
    ]
    assert result.records == []
    assert result.consumed == {1, 2, 3}  # line 4 stays with the fast path


def test_reading_resumes_on_the_line_after_a_malformed_stretch() -> None:
    lines = ['{"a": "x', '{"b":', "2}"]
    result = scan(lines, 1, [1, 2])
    assert result.malformed == [Malformed(1, '{"a": "x', "String broken by a line end")]
    assert result.records == [Record(3, '{"b":\n2}')]


def test_malformed_records_carry_the_invalid_record_code() -> None:
    (bad,) = scan_all(["42"]).malformed
    assert bad.code == BAD_RECORD == 1216


def test_the_text_of_a_malformed_stretch_is_clipped_to_1024_characters() -> None:
    line = "x" * 5000
    (bad,) = scan_all([line]).malformed
    assert bad.text == "x" * 1024
    assert bad.line == 1


# --- a line is a record by itself only when no record is open before it -------------------


@pytest.mark.parametrize(
    "value",
    [
        {"a": [{}]},  # indent=0 puts "{}" alone on a line
        {"a": {"x": 1}, "b": [[], {}]},
        [{}, {"y": {"z": [[1], {}]}}],
    ],
)
def test_a_nested_value_alone_on_a_line_stays_in_its_record(value: Any) -> None:
    lines = json.dumps(value, indent=0).split("\n")
    fast = [n for n, line in enumerate(lines, 1) if whole_json_record(line)]
    assert fast  # lines the fast path would take by themselves
    starts = [n for n in range(1, len(lines) + 1) if n not in fast]
    result = scan(lines, 1, starts)
    assert result.records == [Record(len(lines), "\n".join(lines))]
    assert result.malformed == []
    assert result.consumed == set(range(1, len(lines) + 1))


def test_an_array_of_one_line_objects_each_on_its_own_line_is_one_record() -> None:
    lines = ['{"a": [', '{"x": 1},', '{"y": 2}', "]}", '{"b": 3}']
    result = scan(lines, 1, [1, 2, 4])
    assert result.records == [Record(4, "\n".join(lines[:4]))]
    assert result.malformed == []
    assert result.consumed == {1, 2, 3, 4}  # line 5 is the fast path's record


def test_a_truncated_record_is_rejected_up_to_the_next_line_that_could_start_one() -> None:
    lines = ['{"a": 1, "b":', '{"c": 3}', '{"d":', "4}"]
    result = scan(lines, 1, [1, 3, 4])
    assert result.malformed == [
        Malformed(1, '{"a": 1, "b":', "Record is not complete (truncated?)")
    ]
    assert result.records == [Record(4, '{"d":\n4}')]
    assert result.consumed == {1, 3, 4}  # line 2 is the fast path's record


def test_one_truncated_line_of_ndjson_does_not_swallow_the_records_after_it() -> None:
    lines = ['{"a": 1', *[json.dumps({"n": n}) for n in range(5)]]
    result = scan(lines, 1, [1])
    assert result.malformed == [Malformed(1, '{"a": 1', "Record is not complete (truncated?)")]
    assert result.records == []
    assert result.consumed == {1}  # the others stay the fast path's


def test_after_a_truncated_record_reading_resumes_at_the_next_line_that_could_start_one() -> None:
    lines = ["[", "1,", '{"c": 3}\r']
    result = scan_all(lines)
    assert result.malformed == [Malformed(2, "[\n1,", "Record is not complete (truncated?)")]
    assert result.records == [Record(3, '{"c": 3}')]
    assert result.consumed == {1, 2, 3}


def test_an_indented_line_does_not_count_as_one_that_could_start_a_record() -> None:
    # (as in a pretty-printed record, whose nested values are indented)
    lines = ["[", "1,", '  {"c": 3}']
    result = scan_all(lines)
    assert result.malformed == [
        Malformed(3, '[\n1,\n  {"c": 3}', "Unexpected end of data in a record")
    ]
    assert result.records == []


def test_a_record_found_bad_before_the_next_line_that_could_start_one_says_where() -> None:
    lines = ['{"a": 1,,', '"b": [', '{"c": 3}', "]}", '{"d": 4}']
    result = scan(lines, 7, [7, 8, 10])
    assert result.malformed == [
        Malformed(
            8,
            '{"a": 1,,\n"b": [',
            "Invalid JSON: Expecting property name enclosed in double quotes (line 7, column 9)",
        ),
        Malformed(10, "]}", "Unexpected ']'"),
    ]
    assert result.records == []  # lines 9 and 11 are the fast path's records
    assert result.consumed == {7, 8, 10}


def test_an_open_record_that_goes_wrong_later_resumes_at_the_first_line_that_could_start_one() -> (
    None
):
    lines = ['{"a":', '{"c": 3} {"d": 4}', "}"]
    result = scan(lines, 1, [1, 2, 3])
    assert result.malformed == [
        Malformed(1, '{"a":', "Record is not complete (truncated?)"),
        Malformed(3, "}", "Unexpected '}'"),
    ]
    assert result.records == [Record(2, '{"c": 3}'), Record(2, '{"d": 4}')]


def test_a_record_that_closes_bad_resumes_at_the_first_line_that_could_start_one() -> None:
    # the truncated record's brackets are closed by the record after it
    lines = ['{"a": {"b": 1', '{"c": 2}}', '{"d": 3}']
    result = scan(lines, 1, [1, 2])
    assert result.malformed == [
        Malformed(1, '{"a": {"b": 1', "Record is not complete (truncated?)"),
        Malformed(2, "}", "Unexpected '}'"),
    ]
    assert result.records == [Record(2, '{"c": 2}')]


@pytest.mark.parametrize(
    "inner",
    [
        "[1, 2]",  # an array by itself does not interrupt
        '{"c": 3}',  # nor does an object
        '{"c": NaN}',  # (not strict JSON: DuckDB reads it)
        '{"c": -inf, "d": [1, 2,],}',  # trailing commas, as DuckDB reads them
        '{"c": 3},',
        '"c": {"d": 4}',  # not valid JSON, but no line after the start could start a record
    ],
)
def test_a_line_inside_an_open_record_continues_it(inner: str) -> None:
    lines = ['{"a":', inner, "}"]
    result = scan(lines, 1, [1])
    assert result.records == [Record(3, "\n".join(lines))]
    assert result.malformed == []


# --- an open record at the end of a chunk ------------------------------------------------


def test_a_record_open_at_the_end_of_the_last_chunk_is_rejected() -> None:
    lines = ['{"a": 1} {"b":', '  "c": [1,']
    result = scan_all(lines, first_line=5, last=True)
    assert result.records == [Record(5, '{"a": 1}')]
    assert result.malformed == [
        Malformed(6, '{"b":\n  "c": [1,', "Unexpected end of data in a record")
    ]
    assert result.carry is None
    assert result.consumed == {5, 6}


def test_a_record_open_at_the_end_of_a_chunk_is_carried_from_where_it_starts() -> None:
    lines = ['{"a": 1} {"b":', '  "c": [1,']
    result = scan_all(lines, first_line=5, last=False)
    assert result.records == [Record(5, '{"a": 1}')]
    assert result.malformed == []
    assert result.carry == Carry(5, ('{"b":', '  "c": [1,'))
    assert result.consumed == {5, 6}


def test_a_carried_record_ends_in_the_next_chunk_on_its_own_line_number() -> None:
    first = scan(['{"a": 1} {"b":', '  "c": [1,'], 5, [5, 6], last=False)
    second = scan(["2]}", '{"d": 4}', "[", "]"], 7, [7, 9, 10], carry=first.carry)
    assert second.records == [Record(7, '{"b":\n  "c": [1,\n2]}'), Record(10, "[\n]")]
    assert second.malformed == []
    assert second.consumed == {7, 9, 10}  # carried lines belong to the first chunk
    assert second.carry is None


def test_a_record_can_be_carried_through_several_chunks() -> None:
    carry = scan(["{"], 1, [1], last=False).carry
    assert carry == Carry(1, ("{",))
    middle = scan(['"a":', "1,"], 2, [2, 3], carry=carry, last=False)
    assert middle.records == []
    assert middle.consumed == {2, 3}
    assert middle.carry == Carry(1, ("{", '"a":', "1,"))
    last = scan(['"b": 2}'], 4, [4], carry=middle.carry)
    assert last.records == [Record(4, '{\n"a":\n1,\n"b": 2}')]
    assert last.consumed == {4}


def test_a_chunk_without_lines_keeps_the_carry_as_it_is() -> None:
    carry = Carry(3, ("[", "1,"))
    result = scan([], 5, [], carry=carry, last=False)
    assert result.carry == carry
    assert result.records == []
    assert result.malformed == []
    assert result.consumed == set()


def test_a_carry_still_open_at_the_end_of_the_last_chunk_is_rejected() -> None:
    result = scan(["2,"], 3, [3], carry=Carry(1, ("[", "1,")), last=True)
    assert result.malformed == [Malformed(3, "[\n1,\n2,", "Unexpected end of data in a record")]
    assert result.records == []
    assert result.consumed == {3}


def test_a_carry_that_never_closes_resumes_at_a_line_of_the_next_chunk() -> None:
    # The record is rejected on the last line of the previous chunk, where it was open.
    result = scan(['{"x": 1} {', '{"y":', "2}"], 3, [3, 4, 5], carry=Carry(1, ("[", "1,")))
    assert result.malformed[0] == Malformed(2, "[\n1,", "Record is not complete (truncated?)")
    assert result.records[0] == Record(3, '{"x": 1}')
    assert result.records[-1] == Record(5, '{"y":\n2}')
    assert {4, 5} <= result.consumed


def test_a_carry_found_bad_resumes_inside_the_lines_it_carried() -> None:
    # Lines of the previous chunk, taken over by the carried record there, are read here.
    first = scan(['{"a": [', '{"b": 2}'], 1, [1], last=False)
    assert first.carry == Carry(1, ('{"a": [', '{"b": 2}'))
    assert first.consumed == {1, 2}
    second = scan(['{"c": 3}', '{"d":', "4}"], 3, [4, 5], carry=first.carry)
    assert second.malformed == [Malformed(1, '{"a": [', "Record is not complete (truncated?)")]
    assert second.records == [Record(2, '{"b": 2}'), Record(5, '{"d":\n4}')]
    assert second.consumed == {4, 5}  # line 3 is the fast path's record


# --- the 4 MB limit ----------------------------------------------------------------------


def record_of_size(size: int, char: str = "x") -> str:
    """A one-line JSON object of exactly ``size`` UTF-8 bytes."""
    return '{"a":"' + char * ((size - 8) // len(char.encode())) + '"}'


def test_a_record_of_exactly_4_mb_is_kept_and_one_byte_more_is_rejected() -> None:
    exact, over = record_of_size(MAX_RECORD_BYTES), record_of_size(MAX_RECORD_BYTES + 1)
    assert len(exact.encode()) == MAX_RECORD_BYTES
    assert len(over.encode()) == MAX_RECORD_BYTES + 1
    result = scan_all([exact, over, "{}"])
    assert [r.line for r in result.records] == [1, 3]
    assert len(result.records[0].text) == MAX_RECORD_BYTES
    assert [(m.line, m.reason, len(m.text)) for m in result.malformed] == [
        (2, "Record is larger than 4 MB", 1024)
    ]


def test_the_limit_counts_utf8_bytes_not_characters(small_limit: int) -> None:
    fits = record_of_size(small_limit, "é")  # 100 bytes, 54 characters
    over = '{"a":"' + "é" * 47 + '"}'  # 102 bytes, 55 characters
    result = scan_all([fits, over])
    assert result.records == [Record(1, fits)]
    assert result.malformed == [Malformed(2, over, "Record is larger than 4 MB")]


def test_a_multiline_record_over_the_limit_is_one_reject_on_the_line_it_ends_on(
    small_limit: int,
) -> None:
    body = [f'"k{i}": "{"v" * 20}",' for i in range(10)]  # 29 bytes a line
    lines = ["{", *body, '"end": [0]}', '{"b":', "1}"]
    assert len("\n".join(lines[:4])) == 91
    result = scan(lines, 1, [1, 13, 14])
    # "{" and three body lines are 91 bytes; the fourth body line takes it past 100, and
    # the record ends on line 12 (REDSHIFT_COPY.md: the last line of the failing record)
    (bad,) = result.malformed
    assert (bad.line, bad.reason) == (12, "Record is larger than 4 MB, from line 1")
    assert bad.text == "\n".join(lines[:5])  # its start, as far as it was read whole
    assert result.records == [Record(14, '{"b":\n1}')]
    assert result.consumed == set(range(1, 15))


def test_a_record_over_the_limit_is_skipped_across_chunks_and_rejected_once(
    small_limit: int,
) -> None:
    body = [f'"k{i}": ["{"v" * 20}"],' for i in range(6)]
    first = scan(["{", *body], 1, [1], last=False)
    assert (first.records, first.malformed) == ([], [])
    assert first.carry is not None
    assert first.carry.skip_depth == 1
    assert first.consumed == set(range(1, 8))
    # the next chunk: more of it, its end, and then a record on the same line
    middle = scan(
        ['"x": {"y": [', "1]}", '"z": 2} {"b": 1}', '{"c": 2}'],
        8,
        [8, 10],
        carry=first.carry,
        last=True,
    )
    (bad,) = middle.malformed
    assert (bad.line, bad.reason) == (10, "Record is larger than 4 MB, from line 1")
    assert bad.text.startswith('{\n"k0": ["vvv')
    assert middle.records == [Record(10, '{"b": 1}')]
    assert {8, 9, 10} <= middle.consumed


def test_a_record_over_the_limit_cut_short_by_a_whole_record_ends_before_it(
    small_limit: int,
) -> None:
    body = [f'"k{i}": "{"v" * 20}",' for i in range(6)]
    result = scan(["{", *body, '{"b": 1}'], 1, [1, 8])
    (bad,) = result.malformed
    assert (bad.line, bad.reason) == (
        7,
        "Record is larger than 4 MB and not complete (truncated?), from line 1",
    )
    assert result.records == [Record(8, '{"b": 1}')]


def test_a_record_over_the_limit_open_at_the_end_is_rejected_on_the_last_line(
    small_limit: int,
) -> None:
    body = [f'"k{i}": "{"v" * 20}",' for i in range(6)]
    result = scan(["{", *body], 1, [1], last=True)
    (bad,) = result.malformed
    assert (bad.line, bad.reason) == (
        7,
        "Record is larger than 4 MB and still open at the end of the object, from line 1",
    )
    assert result.carry is None


def test_a_multiline_record_of_exactly_the_limit_is_kept(small_limit: int) -> None:
    lines = ['{"a":', '"' + "x" * 91 + '"}']
    assert len("\n".join(lines).encode()) == small_limit
    assert scan_all(lines).records == [Record(2, "\n".join(lines))]
    longer = ['{"a":', '"' + "x" * 92 + '"}']
    assert scan_all(longer).malformed == [
        Malformed(2, "\n".join(longer), "Record is larger than 4 MB")
    ]


def test_a_line_over_the_limit_is_rejected_whole_like_an_overlong_record(
    small_limit: int,
) -> None:
    # The reader blanks such lines; the scanner rejects them the same way if one arrives.
    line = " ".join(['{"a": 1}'] * 12)  # 107 bytes of small records
    result = scan_all([line, '{"b": 2}'])
    assert result.malformed == [Malformed(1, line, "Record is larger than 4 MB")]
    assert result.records == [Record(2, '{"b": 2}')]


def test_a_small_record_after_a_large_one_on_the_same_line_is_not_over_the_limit(
    small_limit: int,
) -> None:
    big = record_of_size(90)
    lines = [big + ' {"b":', '"yyyyyyyyyy",', '"c": 1}']  # line 1 is 96 bytes
    result = scan_all(lines)
    # the second record is 27 bytes
    assert result.records == [Record(1, big), Record(3, '{"b":\n"yyyyyyyyyy",\n"c": 1}')]
    assert result.malformed == []


# --- strict_loads ------------------------------------------------------------------------


def test_strict_loads_reads_plain_json() -> None:
    assert strict_loads('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize(
    "text", ["NaN", '{"a": Infinity}', "[-Infinity]", '{"a": "tab\there"}', '"new\nline"']
)
def test_strict_loads_refuses_what_json_does_not_allow(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError or our ValueError
        strict_loads(text)


# --- properties --------------------------------------------------------------------------

# Strings mix the characters that matter to the scanner with any others.
_strings = st.text(st.sampled_from('{}[]":,\\ \t\n\rx') | st.characters(), max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _strings
)


def _nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        _scalars | st.lists(children, max_size=3) | st.dictionaries(_strings, children, max_size=3)
    )


_values = _nested(_nested(_scalars))  # three levels deep (st.recursive is much slower)
_objects = st.dictionaries(_strings, _values, max_size=4)
_first_lines = st.integers(min_value=1, max_value=10**9)


@settings(max_examples=50)  # building JSON documents is the slow part
@given(st.lists(_objects, max_size=8), _first_lines, st.booleans())
def test_newline_delimited_objects_are_each_found_once_on_their_line(
    objects: list[dict[str, Any]], first_line: int, ascii_only: bool
) -> None:
    lines = [json.dumps(o, ensure_ascii=ascii_only) for o in objects]
    result = scan_all(lines, first_line)
    assert result.records == [Record(first_line + i, line) for i, line in enumerate(lines)]
    assert [json.loads(r.text) for r in result.records] == objects
    assert result.malformed == []
    assert result.consumed == set(range(first_line, first_line + len(lines)))
    assert result.carry is None


def pretty_lines(objects: list[dict[str, Any]], indents: list[int | None]) -> list[str]:
    texts = [
        json.dumps(o, indent=i, ensure_ascii=False) for o, i in zip(objects, indents, strict=True)
    ]
    return "\n".join(texts).split("\n")


def closing_lines(objects: list[dict[str, Any]], indents: list[int | None]) -> list[int]:
    ends, line = [], 0
    for o, i in zip(objects, indents, strict=True):
        line += json.dumps(o, indent=i, ensure_ascii=False).count("\n") + 1
        ends.append(line)
    return ends


_indents = st.sampled_from([None, 0, 1, 2, 4])


@st.composite
def pretty_documents(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int | None]]:
    objects = draw(st.lists(_objects, max_size=6))
    indents = [draw(_indents) for _ in objects]
    return objects, indents


@settings(max_examples=50)  # building JSON documents is the slow part
@given(pretty_documents(), _first_lines)
def test_pretty_printed_objects_are_each_found_once_on_their_closing_line(
    document: tuple[list[dict[str, Any]], list[int | None]], first_line: int
) -> None:
    objects, indents = document
    lines = pretty_lines(objects, indents)
    result = scan_all(lines, first_line)
    texts = [
        json.dumps(o, indent=i, ensure_ascii=False) for o, i in zip(objects, indents, strict=True)
    ]
    ends = [first_line - 1 + n for n in closing_lines(objects, indents)]
    assert result.records == [Record(n, t) for n, t in zip(ends, texts, strict=True)]
    assert [json.loads(r.text) for r in result.records] == objects
    assert result.malformed == []
    assert result.consumed == set(range(first_line, first_line + len(lines)))


@settings(max_examples=50)  # building JSON documents is the slow part
@given(pretty_documents())
def test_pretty_printed_objects_with_fast_path_starts_give_the_rest(
    document: tuple[list[dict[str, Any]], list[int | None]],
) -> None:
    # The fast path takes every line that is a JSON object or array by itself; the scanner
    # gets the others, and between them every record is found exactly once.
    objects, indents = document
    lines = pretty_lines(objects, indents)
    # (inner lines that are whole arrays are taken back by the scanner: it consumes them)
    fast = {n for n, line in enumerate(lines, 1) if whole_json_record(line)}
    starts = [n for n in range(1, len(lines) + 1) if n not in fast]
    result = scan(lines, 1, starts)
    ends = closing_lines(objects, indents)
    left_to_fast_path = fast - result.consumed
    assert sorted([r.line for r in result.records] + list(left_to_fast_path)) == ends
    assert result.consumed | fast == set(range(1, len(lines) + 1))
    assert result.malformed == []


_line_text = st.text(st.sampled_from('{}[]":, \t\r\\ab1') | st.characters(), max_size=30)


@given(st.lists(_line_text, max_size=20), st.data(), st.booleans())
def test_any_text_is_scanned_without_error_and_every_start_is_consumed(
    lines: list[str], data: st.DataObject, last: bool
) -> None:
    numbers = list(range(1, len(lines) + 1))
    starts = sorted(data.draw(st.sets(st.sampled_from(numbers))) if numbers else set())
    result = scan(lines, 1, starts, last=last)
    assert set(starts) <= result.consumed
    assert result.consumed <= set(numbers)
    assert {r.line for r in result.records} <= result.consumed
    assert {m.line for m in result.malformed} <= result.consumed
    for r in result.records:  # brackets are counted, not matched: validity is DuckDB's call
        assert r.text[0] in "{["
        assert r.text[-1] in "}]"
        assert r.text.count("\n") < len(lines)
    assert [r.line for r in result.records] == sorted(r.line for r in result.records)
    assert all(m.code == BAD_RECORD and len(m.text) <= 1024 for m in result.malformed)
    if last:
        assert result.carry is None
    elif result.carry is not None:
        carried = result.carry.lines
        assert result.carry.start_line + len(carried) - 1 == len(lines)
        assert lines[-1].endswith(carried[-1]) if len(carried) == 1 else lines[-1] == carried[-1]
        assert carried[0][0] in "{["
        assert result.carry.start_line in result.consumed


@st.composite
def split_points(draw: st.DrawFn, length: int) -> list[int]:
    return sorted(draw(st.lists(st.integers(0, length), max_size=3)))


@settings(max_examples=50)  # building JSON documents is the slow part
@given(pretty_documents(), st.data())
def test_pretty_printed_objects_split_into_chunks_give_the_same_records(
    document: tuple[list[dict[str, Any]], list[int | None]], data: st.DataObject
) -> None:
    lines = pretty_lines(*document)
    starts = list(range(1, len(lines) + 1))
    whole = scan(lines, 1, starts)
    parts = scan_in_chunks(lines, data.draw(split_points(len(lines))), starts)
    assert [r for part in parts for r in part.records] == whole.records
    assert [m for part in parts for m in part.malformed] == whole.malformed == []
    assert set().union(*(p.consumed for p in parts)) == whole.consumed


@given(st.lists(_line_text, max_size=20), st.data())
def test_any_text_split_into_chunks_gives_the_same_result_as_at_once(
    lines: list[str], data: st.DataObject
) -> None:
    numbers = list(range(1, len(lines) + 1))
    starts = sorted(data.draw(st.sets(st.sampled_from(numbers))) if numbers else set())
    cuts = data.draw(split_points(len(lines)))
    whole = scan(lines, 1, starts)
    parts = scan_in_chunks(lines, cuts, starts)
    assert [r for part in parts for r in part.records] == whole.records
    assert [m for part in parts for m in part.malformed] == whole.malformed
    assert set().union(*(p.consumed for p in parts)) == whole.consumed
    # each chunk takes over only its own lines
    bounds = [0, *cuts, len(lines)]
    for part, (lo, hi) in zip(parts, itertools.pairwise(bounds), strict=True):
        assert part.consumed <= set(range(lo + 1, hi + 1))


def test_one_object_split_between_two_chunks_gives_the_same_record_as_at_once() -> None:
    lines = json.dumps({"a": [1, {"b": "x"}], "c": None}, indent=2).split("\n")
    whole = scan_all(lines)
    for cut in range(len(lines) + 1):
        first = scan(lines[:cut], 1, range(1, cut + 1), last=False)
        second = scan(
            lines[cut:], cut + 1, range(cut + 1, len(lines) + 1), carry=first.carry, last=True
        )
        assert (
            first.records + second.records
            == whole.records
            == [Record(len(lines), "\n".join(lines))]
        )
        assert first.malformed == second.malformed == []
        assert first.consumed | second.consumed == whole.consumed
        assert first.consumed.isdisjoint(second.consumed)


# --- the scanner's caller ----------------------------------------------------------------


def test_records_open_across_chunk_cuts_keep_the_records_after_them(
    tmp_path: Path, base: type[arbalest.Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunk files end with a line end; scanning them as text.split("\\n") once added an empty
    # line that was carried with an open record, numbering the next chunk's lines one too
    # high, so the record after a carried one was silently dropped.
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        n = arbalest.Integer()

    monkeypatch.setattr(reader, "CHUNK_BYTES", 16)  # the seam the conformance suite uses
    monkeypatch.setattr(reader, "IN_PLACE_BYTES", 16)
    parts = []
    for k in range(10):
        parts.append(json.dumps({"n": 2 * k, "pad": "x" * k}, indent=2))
        parts.append(json.dumps({"n": 2 * k + 1}))
    lake = tmp_path / "lake"
    (lake / "events").mkdir(parents=True)
    (lake / "events" / "a.json").write_text("\n".join(parts) + "\n")
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    try:
        result = Pipeline(engine, store=lake).copy(Event, "events").run()
        with engine.connect() as conn:
            loaded = [n for (n,) in conn.execute(sa.text("SELECT n FROM events ORDER BY n"))]
    finally:
        engine.dispose()
    assert result.steps[0].rejects == []
    assert loaded == list(range(20))


def test_a_record_over_the_limit_with_a_broken_string_ends_on_that_line(
    small_limit: int,
) -> None:
    body = [f'"k{i}": "{"v" * 20}",' for i in range(6)]
    result = scan(['{"a": 1}', "{", *body, '"s": "cut', '"t": 1}', '{"b": 2}'], 1, [2, 10])
    # as for any record, reading resumes on the next line, whose rest is rejected apart
    bad, rest = result.malformed
    assert (rest.line, rest.text) == (10, '"t": 1}')
    assert (bad.line, bad.reason) == (
        9,
        "Record is larger than 4 MB and has a string broken by a line end, from line 2",
    )
    assert bad.text.startswith('{\n"k0": "vvv')


def test_a_record_closing_on_a_line_that_could_start_one_is_not_judged_by_what_follows() -> None:
    # the line is checked whole when the record reaches it: a record after it on that line
    # is not part of the one that closes
    lines = ['{"a":', '{"b": 1}} {"c": 2}', "[", '{"d": 3}], [4]']
    result = scan_all(lines)
    assert result.records == [
        Record(2, '{"a":\n{"b": 1}}'),
        Record(2, '{"c": 2}'),
        Record(4, '[\n{"d": 3}]'),
    ]
    assert result.malformed == [Malformed(4, ", [4]", "Unexpected ','")]


# --- where a record goes wrong: never where DuckDB's reader reads on ---------------------

_DUCKDB_READS = [
    '{"a": 1,}',
    '{"a": [1, 2,\n],\n}',
    '{"a": NaN, "b": -Infinity, "c": nan, "d": -inf, "e": INF, "f": InFiNiTy, "g": -NaN}',
    '{"a": 1e400, "b": -0, "c": [[], {}, [{}]]}',
]


@pytest.mark.parametrize("text", _DUCKDB_READS)
def test_what_duckdb_reads_is_never_found_bad_nor_any_start_of_it(text: str) -> None:
    assert duckdb.connect().execute("SELECT json_valid(?)", [text]).fetchone() == (True,)
    assert records._json_error(text) is None
    for cut in range(1, len(text)):
        if text[cut - 1] in "\n{[,:":  # (as the scanner checks: at line ends)
            assert records._json_error(text[:cut]) is None, text[:cut]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1,, "b": 2}', "Expecting property name enclosed in double quotes"),
        ('{"a": +inf}', "Expecting value"),
        ('{"a": infinit}', "Expecting value"),
        ('{"a": 1}}', None),  # a whole value: what follows is not judged here
        ('{"a": 1\n{"b": 2}', "Expecting ',' delimiter"),
        ("[1\n2]", "Expecting ',' delimiter"),
    ],
)
def test_where_a_record_goes_wrong_is_found(text: str, message: str | None) -> None:
    error = records._json_error(text)
    assert (error and error.msg) == message


@settings(max_examples=50)
@given(st.lists(_objects, min_size=1, max_size=3), _indents)
def test_no_start_of_valid_json_is_found_bad(objects: list[dict[str, Any]], indent: Any) -> None:
    text = json.dumps(objects, indent=indent)
    lines = text.split("\n")
    for end in range(1, len(lines) + 1):
        assert records._json_error("\n".join(lines[:end])) is None
