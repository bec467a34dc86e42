# The C extension's signature (arbalest/loading/_fastlane.c); see arbalest/loading/fastlane.py.

def convert(
    data: bytes,
    first_line: int,
    columns: list[tuple[tuple[bytes, ...], int, int, int, bool]],
) -> tuple[int, bytes, list[tuple[bytes, bytes, bytes | None]], bytes, bytes, bytes]: ...
