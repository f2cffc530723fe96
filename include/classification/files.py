"""The file checks made before parsing: reading a bounded file, and what makes a file one Rails cannot load.

Each failure is a result with the reason (the strictest class), never an exception.
"""

from __future__ import annotations

import os
import re
import stat

from include.classification.classes import MigrationClass
from include.classification.rails import version_and_name
from include.classification.result import ClassificationResult

CONFLICT_MARKER = re.compile(rb"^(<<<<<<<( |$)|=======\s*$|>>>>>>>( |$))", re.MULTILINE)
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_bounded(path: str, limit: int) -> bytes:
    """At most `limit + 1` bytes of a file (one more than allowed tells an oversized file apart).

    A regular file is read in one call sized from fstat: `read(limit + 1)` would allocate (and map) a
    buffer of the whole limit for every small migration, which costs more than the read itself.
    """
    fd = os.open(path, READ_FLAGS)
    try:
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode) and status.st_size <= limit:
            data = os.read(fd, status.st_size + 1)
            if len(data) == status.st_size:
                return data  # the whole file, as fstat saw it (no second call just to meet EOF)
            parts, total = [data], len(data)
        else:
            parts, total = [], 0
        while total <= limit:  # oversized, growing, or not a regular file: read on to EOF or the limit
            chunk = os.read(fd, min(limit + 1 - total, 1 << 16))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def failed(path: str, reason: str) -> ClassificationResult:
    """The result for a file that cannot be analysed: `unknown`, with the reason."""
    version, name = version_and_name(path)
    return ClassificationResult(path, version, name, MigrationClass.UNKNOWN, "unknown", reasons=[reason])


def unloadable(data: bytes, max_bytes: int) -> str | None:
    """Why Rails could not load this file as a migration (or the engine will not read it); None when fine."""
    if len(data) > max_bytes:
        return f"file is over the {max_bytes}-byte limit: not analysed"
    if b"\x00" in data:
        return "binary file (NUL bytes): Rails cannot load it as a migration"
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8 text (byte {exc.start}): Rails cannot load it as a migration"
    if not data or data.isspace():
        return "empty file: Rails cannot load a migration from it"
    if b"<<<<<<<" in data or b">>>>>>>" in data or b"=======" in data:
        marker = CONFLICT_MARKER.search(data)
        if marker is not None:
            line = data[: marker.start()].count(b"\n") + 1
            return f"merge-conflict marker at line {line}: Rails cannot load the file"
    return None
