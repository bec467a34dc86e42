"""Files under cases/ that mypy must accept, with the types and errors their comments state.

``# R: <type>`` on a ``reveal_type`` line is (part of) the revealed type; ``# E: <text>`` is
an error mypy must report on that line. Any other error fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("case", sorted(CASES.glob("*.py")), ids=lambda p: p.name)
def test_mypy_agrees_with_the_comments(case: Path) -> None:
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--show-traceback",
            "--hide-error-context",
            "--no-error-summary",
            "--config-file=",
            str(case),
        ]
    )
    assert not stderr, stderr
    got: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        m = re.match(rf".*{re.escape(case.name)}:(\d+): (error|note): (.*)", line)
        if m:
            got.setdefault(int(m.group(1)), []).append(m.group(3))
    problems = []
    for number, source in enumerate(case.read_text().splitlines(), start=1):
        messages = got.pop(number, [])
        if m := re.search(r"# R: (.*)$", source):
            want = m.group(1).strip()
            if not any(msg.startswith("Revealed type is") and want in msg for msg in messages):
                problems.append(f"line {number}: want {want}, got {messages}")
        elif m := re.search(r"# E: (.*)$", source):
            if not any(m.group(1).strip() in msg for msg in messages):
                problems.append(f"line {number}: want error {m.group(1)!r}, got {messages}")
        elif messages:
            problems.append(f"line {number}: unexpected {messages}")
    problems += [f"line {n}: unexpected {msgs}" for n, msgs in got.items()]
    assert not problems, "\n".join(problems)
