"""JSON lines, one way: every JSONL file taxcheck reads or writes goes through here.

Run files, suite files, the JSONL datasets the importers read and the batch files sent to
and fetched from providers are all one JSON value a line. They are read and written with the
``jsonlines`` library (its ``Reader`` numbers the lines it parses and says which one is
bad; its ``Writer`` writes and flushes one record a call), under rules kept here:

* **Writing**: compact JSON (``,`` and ``:`` with no spaces), UTF-8 with non-ASCII as is,
  ``\\n`` after each record. A lone surrogate (JSON allows ``"\\ud800"``, so a suite may hold
  one) is written as the escape ``\\udXXX``, which reads back as the same string, instead of
  failing to encode. ``RecordWriter`` hands the operating system one ``write`` per record,
  so a kill mid-run tears at most the record being written.
* **Reading**: every line is numbered as it is in the file, blank lines skipped; the caller
  is told per line what it holds or why not (``Line``), and decides what a problem is (a
  suite lists every one; a run file forgives a torn last line). A line is never longer
  than the caller's cap, which is checked before the line is parsed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import jsonlines


def dumps(record: Any) -> str:
    """One record as a compact JSON line (without its newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def encode(record: Any) -> bytes:
    """``dumps`` as UTF-8; lone surrogates survive as ``\\udXXX`` escapes instead of crashing."""
    return dumps(record).encode("utf-8", errors="backslashreplace")


class _OneWrite(io.RawIOBase):
    """What ``jsonlines.Writer`` writes for one record (the line, then its newline), handed to
    the file descriptor in a single ``os.write`` when the writer flushes."""

    def __init__(self, fd: int):
        self._fd = fd
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self._pending += data
        return len(data)

    def flush(self) -> None:
        view = memoryview(bytes(self._pending))
        self._pending.clear()
        while view:
            view = view[os.write(self._fd, view):]


class RecordWriter:
    """Appends records to an open binary file, one flushed write each (run files)."""

    def __init__(self, fh: IO[bytes], dumps: Callable[[Any], bytes] = encode):
        fh.flush()
        self._writer = jsonlines.Writer(_OneWrite(fh.fileno()), dumps=dumps, flush=True)

    def write(self, record: Any) -> None:
        self._writer.write(record)


def write_lines(fh: IO[str], records: Iterable[Any], dumps: Callable[[Any], str] = dumps) -> int:
    """Write records to a text file, one a line; returns how many (suite files, batch inputs)."""
    writer = jsonlines.Writer(fh, dumps=dumps)
    count = 0
    for record in records:
        writer.write(record)
        count += 1
    return count


def lines_of(text: str) -> list[str]:
    """``text`` cut into lines as a file is (a final newline ends the last line)."""
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


@dataclass(frozen=True)
class Line:
    """One non-blank line: its number in the file and its JSON value, or why it has none."""

    lineno: int
    value: Any = None
    error: str | None = None  # "not valid JSON (...)" / "nested too deeply"
    text: str = ""


def read_lines(lines: Iterable[str]) -> Iterator[Line]:
    """Every non-blank line of ``lines`` (the file's lines, in order, without their newlines;
    give an empty string for a line the caller has set aside, so the numbers stay the file's)."""
    counted = _Counted(lines)
    # the standard library's parser, not the faster one jsonlines may pick: JSON allows lone
    # surrogate escapes, and a suite may hold one
    reader = jsonlines.Reader(counted, loads=json.loads)
    while True:
        try:
            value = reader.read(skip_empty=True, allow_none=True)
        except EOFError:
            return
        except jsonlines.InvalidLineError as exc:
            cause = exc.__cause__
            why = getattr(cause, "msg", None) or (str(cause) if cause is not None else "invalid line")
            yield Line(exc.lineno, error=f"not valid JSON ({why})", text=str(exc.line))
        except RecursionError:
            yield Line(counted.n, error="nested too deeply")
        else:
            yield Line(counted.n, value=value)


class _Counted:
    """The lines, counted as the reader takes them (``n``: the number of the last one taken)."""

    def __init__(self, lines: Iterable[str]):
        self._it = iter(lines)
        self.n = 0

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.n += 1
        return line
