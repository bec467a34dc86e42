"""Scratch folders for a load's chunk and batch files.

A load deletes its folders when it ends, however it ends, unless its process is killed. The
folders are named after the process (``arbalest-load-<pid>-...``), so that a later load on
the same machine can remove those a killed process left behind: a folder is removed only
when its process is gone and nothing has been written in it for an hour.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Final

__all__ = ["STALE_AFTER", "make", "sweep"]

#: Seconds without a change after which a dead process's folder is removed.
STALE_AFTER: Final = 3600.0
_NAME: Final = re.compile(r"arbalest-(?:load|transform|drift)-(\d+)-[^/]+")


def make(kind: str) -> Path:
    """A new scratch folder of this process, in the system's temporary folder."""
    return Path(tempfile.mkdtemp(prefix=f"arbalest-{kind}-{os.getpid()}-"))


def sweep(root: Path | None = None, *, stale_after: float = STALE_AFTER) -> list[Path]:
    """Remove the scratch folders that killed processes left in ``root`` (default: the
    system's temporary folder); return them. Never raises."""
    root = Path(tempfile.gettempdir()) if root is None else root
    try:
        names = [entry.name for entry in os.scandir(root)]
    except OSError:
        return []
    uid = os.getuid() if hasattr(os, "getuid") else None
    now = time.time()
    removed = []
    for name in names:
        match = _NAME.fullmatch(name)
        if match is None:
            continue
        path = root / name
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
            continue
        if now - info.st_mtime < stale_after or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's, or cannot tell: keep it
    return True
