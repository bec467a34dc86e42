"""``arbalest infer``: the class on stdout, read-only, and usage errors as exit code 2."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from arbalest.cli import main


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    (tmp_path / "lake" / "events").mkdir(parents=True)
    records = [{"id": str(i), "createdAt": f"2024-01-01T00:00:{i:02d}Z"} for i in range(30)]
    (tmp_path / "lake" / "events" / "a.json").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    return tmp_path / "lake"


def files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def test_infer_prints_the_class_and_writes_nothing(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(lake)
    assert main(["infer", str(lake / "events")]) == 0
    out = capsys.readouterr().out
    ast.parse(out)
    assert "class Events(Schema):" in out
    assert 'created_at = TimestampTZ(key="createdAt")  # null 0%' in out
    assert files(lake) == before


def test_store_sample_and_name(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "events", "--store", str(lake), "--sample", "5", "--name", "Ev"]) == 0
    out = capsys.readouterr().out
    assert "class Ev(Schema):" in out
    assert '__tablename__ = "ev"' in out
    assert "from 5 records of 1 object" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evnts", "--store", "{lake}"], "did you mean 'events/'?"),
        (["{lake}/events", "--name", "not a name"], "name='not a name'"),
        (["{lake}/nowhere"], "does not exist"),
    ],
)
def test_usage_errors_exit_2(
    lake: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["infer", *(a.format(lake=lake) for a in args)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_a_sample_of_zero_is_bad_usage(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", str(lake), "--sample", "0"]) == 2
    assert "--sample" in capsys.readouterr().err
