"""Reading the sample as the loaders read: compression, pretty-printed and malformed
records, the metadata folder, spread over the objects, and clear errors."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest

import arbalest
from arbalest.errors import ConfigurationError
from arbalest.inference.sample import read_sample, spread
from arbalest.stores import LocalStore


def lines(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    (tmp_path / "events").mkdir()
    return tmp_path


def test_spread_takes_first_and_last() -> None:
    assert spread(3, 10) == [0, 1, 2]
    assert spread(100, 5) == [0, 25, 50, 74, 99]
    assert spread(7, 1) == [0]


def test_records_are_read_as_the_loaders_read_them(lake: Path) -> None:
    (lake / "events" / "a.json.gz").write_bytes(gzip.compress(lines({"a": 1})))
    (lake / "events" / "b.json.bz2").write_bytes(bz2.compress(lines({"a": 2})))
    pretty = json.dumps({"a": 3, "o": {"k": [1, 2]}}, indent=2) + '{"a": 4}{"a": 5}\n'
    (lake / "events" / "c.json").write_bytes(b"\xef\xbb\xbf" + pretty.encode())
    (lake / "events" / "d.json").write_bytes(b'{"a": 6}\nnot json\n{"a": \xff}\n{"a": 7}\n')
    (lake / "events" / "empty.json").write_bytes(b"")
    (lake / "_arbalest").mkdir()
    (lake / "_arbalest" / "manifest.json").write_bytes(lines({"entries": []}))
    sample = read_sample(LocalStore(lake), "events", 100)
    assert [r["a"] for r in sample.records] == [1, 2, 3, 4, 5, 6, 7]
    assert sample.malformed == 2
    assert sample.listed == 4
    whole = read_sample(LocalStore(lake), "", 100)
    assert "_arbalest/manifest.json" not in whole.objects


def test_the_sample_spreads_over_the_objects(lake: Path) -> None:
    for part in range(4):
        (lake / "events" / f"p{part}.json").write_bytes(lines(*({"p": part} for _ in range(10))))
    sample = read_sample(LocalStore(lake), "events", 8)
    assert [r["p"] for r in sample.records] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_the_header_counts_records_objects_and_malformed(lake: Path) -> None:
    (lake / "events" / "a.json").write_bytes(b'{"a": 1}\n{"a": \n')
    text = arbalest.infer(lake, "events")
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert "from 1 record of 1 object (of 1)" in header
    assert "1 record(s) of the sample are not JSON" in header


def test_a_missing_source_names_the_nearest(lake: Path) -> None:
    (lake / "events" / "a.json").write_bytes(lines({"a": 1}))
    with pytest.raises(ConfigurationError, match="did you mean 'events/'"):
        arbalest.infer(lake, "evnts")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample": 0}, "sample=0"),
        ({"name": "class"}, "name='class'"),
        ({"name": "String"}, "name='String'"),
        ({"name": "a b"}, "name='a b'"),
    ],
)
def test_bad_arguments_are_configuration_errors(
    lake: Path, kwargs: dict[str, object], message: str
) -> None:
    (lake / "events" / "a.json").write_bytes(lines({"a": 1}))
    with pytest.raises(ConfigurationError, match=message):
        arbalest.infer(lake, "events", **kwargs)  # type: ignore[arg-type]


def test_a_source_outside_the_store_is_refused(lake: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"'\.\.' segment"):
        arbalest.infer(lake / "events", "../events")


def test_records_without_keys_give_nothing_to_infer(lake: Path) -> None:
    (lake / "events" / "a.json").write_bytes(lines({}, [1]))
    with pytest.raises(ConfigurationError, match="nothing to infer"):
        arbalest.infer(lake, "events")
