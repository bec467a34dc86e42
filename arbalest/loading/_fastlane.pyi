# The C extension's signature (its module unit: arbalest/loading/_fastlane.c; the others:
# _fastlane.h); see arbalest/loading/fastlane.py.

def convert(
    data: bytes,
    first_line: int,
    columns: list[tuple[tuple[bytes, ...], int, int, int, bool]],
) -> tuple[
    int, bytes, list[tuple[bytes, bytes, bytes | None]], bytes, bytes, bytes, bytes, bytes
]: ...
def copy_rows(
    rows: int,
    columns: list[tuple[int, int, int, object | None, object, object | None]],
) -> bytes: ...
