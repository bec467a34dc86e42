"""Each integration without its package: an error naming the extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest

from arbalest import MissingDependencyError


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("luigi", "luigi", "luigi"),
        ("dagster", "dagster", "dagster"),
        ("airflow", "airflow", "airflow"),
    ],
)
def test_an_integration_without_its_package_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str, extra: str
) -> None:
    # as if it were not installed: the package and any of its modules already imported
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"arbalest.contrib.{module}", raising=False)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'arbalest\[{extra}\]>=2'"):
        importlib.import_module(f"arbalest.contrib.{module}")
