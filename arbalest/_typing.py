"""Type aliases shared across the package."""

from __future__ import annotations

import os
from typing import Literal, TypeAlias, Union

__all__ = ["CopyMode", "JSONObject", "JSONValue", "StrPath"]

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
JSONObject: TypeAlias = dict[str, JSONValue]
StrPath: TypeAlias = Union[str, "os.PathLike[str]"]
CopyMode: TypeAlias = Literal["replace", "incremental", "merge"]
