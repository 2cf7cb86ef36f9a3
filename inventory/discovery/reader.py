"""Reads the JSON documents of an uploaded or pulled file one at a time, in bounded memory.

Rules:
- A file is one JSON document, several documents concatenated (with or without whitespace between
  them), or JSON lines; all three read the same. A UTF-8 byte order mark at the start is ignored.
- Memory stays bounded: the file is read in chunks and decoded with
  ``json.JSONDecoder.raw_decode``, so only the document being read (plus one chunk) is held.
- A document larger than ``settings.DISCOVERY_DOCUMENT_MAX_BYTES`` (UTF-8 bytes) is refused:
  providers page their answers, and a page is far smaller than that.
- Invalid JSON and bytes that are not UTF-8 are refused with a ``RecordError`` whose message says
  where (line and column, counted in characters from 1). The reader does not know what a record
  is: its errors carry ``record_no`` 0 and the formats fill in the number the next record would
  have had.
- Documents before a fault are yielded before the fault is raised, so that numbering stays true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from inventory.discovery.records import RecordError

CHUNK_BYTES = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BOM = "\ufeff"
# A JSON error this close to the end of the text read so far may only mean that the document goes
# on in the next chunk: the longest token the decoder reports from its start is "-Infinity".
_TRUNCATION_MARGIN = 16
_END = object()


class _Text:
    """The decoded text read so far and not yet consumed, with where it lies in the file.

    ``line`` is the file line (from 1) on which ``text[0]`` lies and ``line_start`` the index in
    ``text`` where that line began (0 or negative when it began in text already dropped)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.text = ""
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.eof = False
        self._bytes_read = 0
        self._carry = b""
        self._bad_byte: int | None = None

    def skip_whitespace(self) -> int:
        """Move past whitespace and return where the next document starts."""
        match = _WHITESPACE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
        return self.pos

    def fill(self) -> None:
        """Drop the consumed text and append the next chunk; at the end of the file set ``eof``.
        Bytes that are not UTF-8 are refused once the valid text before them has been used."""
        if self._bad_byte is not None:
            raise RecordError(
                f"the file is not UTF-8 text: invalid byte at {self.where(len(self.text))} (byte {self._bad_byte + 1})"
            )
        data_offset = self._bytes_read - len(self._carry)
        chunk = self.stream.read(CHUNK_BYTES)
        self._bytes_read += len(chunk)
        data = self._carry + chunk
        self._carry = b""
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            decoded = data[: exc.start].decode("utf-8")
            if exc.reason == "unexpected end of data" and chunk:
                # A character cut by the chunk's end: its first bytes wait for the next read.
                self._carry = data[exc.start :]
            else:
                self._bad_byte = data_offset + exc.start
        if data_offset == 0 and decoded.startswith(_BOM):
            decoded = decoded[1:]
        self._compact()
        self.text += decoded
        self.eof = not chunk and self._bad_byte is None

    def _compact(self) -> None:
        dropped = self.pos
        if not dropped:
            return
        newlines = self.text.count("\n", 0, dropped)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", 0, dropped) + 1 - dropped
        else:
            self.line_start -= dropped
        self.text = self.text[dropped:]
        self.pos = 0

    def where(self, index: int) -> str:
        """``index`` in ``text`` as "line L, column C" of the file."""
        line = self.line + self.text.count("\n", 0, index)
        last_newline = self.text.rfind("\n", 0, index)
        line_start = last_newline + 1 if last_newline >= 0 else self.line_start
        return f"line {line}, column {index - line_start + 1}"


def documents(path: Path) -> Iterator[Any]:
    """Yield the JSON documents of the file at ``path`` in file order (see the module's rules).
    An empty file yields nothing."""
    max_bytes = settings.DISCOVERY_DOCUMENT_MAX_BYTES
    decoder = json.JSONDecoder()
    with path.open("rb") as stream:
        text = _Text(stream)
        while True:
            document = _next_document(text, decoder, max_bytes)
            if document is _END:
                return
            yield document


def _next_document(text: _Text, decoder: json.JSONDecoder, max_bytes: int) -> Any:
    """Decode the document at the reading position, reading more of the file while the document
    may go on beyond the text read so far; ``_END`` when only whitespace is left."""
    while True:
        start = text.skip_whitespace()
        if start == len(text.text):
            if text.eof:
                return _END
            text.fill()
            continue
        try:
            document, end = decoder.raw_decode(text.text, start)
        except json.JSONDecodeError as exc:
            if text.eof or not _maybe_cut(exc, len(text.text)):
                raise RecordError(f"invalid JSON at {text.where(exc.pos)}: {exc.msg}") from None
            _refuse_if_larger(text, start, len(text.text), max_bytes, exact=False)
            text.fill()
            continue
        if not text.eof and end > len(text.text) - _TRUNCATION_MARGIN and text.text[end - 1].isdigit():
            # A number at the end of the text read so far may go on in the next chunk ("12" of
            # "125", "-4.5" of "-4.5e-1"); containers, strings and literals end unmistakably.
            text.fill()
            continue
        _refuse_if_larger(text, start, end, max_bytes, exact=True)
        text.pos = end
        return document


def _maybe_cut(exc: json.JSONDecodeError, length: int) -> bool:
    """Whether a JSON error may only mean that the text read so far ends inside the document. An
    unterminated string always reaches the end (in strict mode a control character inside a
    string is reported as such); every other error the end causes lies within a few characters
    of it."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= length - _TRUNCATION_MARGIN


def _refuse_if_larger(text: _Text, start: int, end: int, max_bytes: int, *, exact: bool) -> None:
    """Refuse the document in ``text.text[start:end]`` when it is larger than ``max_bytes``.
    Every character is at least one UTF-8 byte and at most four, so the bytes are counted only
    when the characters alone cannot decide; an unfinished document (``exact`` false) is refused
    once its characters alone pass the limit."""
    characters = end - start
    too_large = characters > max_bytes
    if not too_large and exact and characters * 4 > max_bytes:
        too_large = len(text.text[start:end].encode("utf-8")) > max_bytes
    if too_large:
        raise RecordError(
            f"the JSON document starting at {text.where(start)} is larger than {max_bytes:,} bytes:"
            " send the provider's pages as they come (several pages or JSON lines), not one merged document"
        )
