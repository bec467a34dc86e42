"""Configuration helpers kept from the original Arbalest."""

from __future__ import annotations

import os

__all__ = ["env"]


def env(name: str, default: str | None = None) -> str | None:
    """Return the environment variable ``name``, or ``default`` when it is not set.

    Example:
        >>> env("ARBALEST_SURELY_UNSET_VARIABLE", "fallback")
        'fallback'
    """
    return os.environ.get(name, default)
