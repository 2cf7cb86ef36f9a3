"""The reader: a file's JSON documents one at a time, whatever their layout and wherever the file's
chunks happen to cut them, and faults named by line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inventory.discovery import reader
from inventory.discovery.records import RecordError

DATA = Path(__file__).parent / "data"

PAGES = [
    {"kind": "admin#directory#tokenList", "items": [{"clientId": "a-1", "scopes": ["openid"], "userKey": "1"}]},
    {"kind": "admin#directory#tokenList", "etag": '"é-2"'},
    [1, 2.5, -3e2, True, None, "ünïcødé ✓ 𝄞"],
    {"nested": {"deep": [{"x": "y"}, []]}, "number": 12345678901234567890},
]


def write(tmp_path: Path, content: str | bytes, name: str = "data.json") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def read_all(path: Path) -> list[Any]:
    return list(reader.documents(path))


def error_of(path: Path) -> RecordError:
    with pytest.raises(RecordError) as caught:
        read_all(path)
    return caught.value


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param("\n".join(json.dumps(page) for page in PAGES), id="json-lines"),
        pytest.param("".join(json.dumps(page, ensure_ascii=False) for page in PAGES), id="no-whitespace-between"),
        pytest.param("\n\n".join(json.dumps(page, indent=2) for page in PAGES) + "\n\n", id="pretty-with-blank-lines"),
        pytest.param("\r\n".join(json.dumps(page) for page in PAGES) + "\r\n", id="crlf-lines"),
        pytest.param(" \t".join(json.dumps(page, ensure_ascii=False) for page in PAGES), id="spaces-and-tabs"),
    ],
)
def test_every_layout_yields_the_same_documents_in_file_order(tmp_path: Path, layout: str) -> None:
    assert read_all(write(tmp_path, layout)) == PAGES


def test_a_single_document_is_one_document(tmp_path: Path) -> None:
    assert read_all(write(tmp_path, json.dumps(PAGES, indent=1))) == [PAGES]


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 13, 64])
def test_chunk_boundaries_anywhere_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    # Multi-byte characters, numbers, literals, escapes and strings all get cut by some chunk
    # size here; the documents must come out whole and unchanged.
    content = "".join(json.dumps(page, ensure_ascii=False) for page in PAGES)
    content += ' "esc\\u00e9\\n\\"q\\"" 123 -4.5e-1 true false null'
    path = write(tmp_path, content)
    expected = read_all(path)
    monkeypatch.setattr(reader, "CHUNK_BYTES", chunk_bytes)
    assert read_all(path) == expected
    assert expected[-6:] == ['esc\u00e9\n"q"', 123, -0.45, True, False, None]


def test_a_number_cut_by_a_chunk_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", 2)
    assert read_all(write(tmp_path, "12345 678")) == [12345, 678]


def test_an_empty_or_blank_file_has_no_documents(tmp_path: Path) -> None:
    assert read_all(write(tmp_path, "", "empty.json")) == []
    assert read_all(write(tmp_path, " \n\t\r\n", "blank.json")) == []


def test_a_byte_order_mark_at_the_start_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(PAGES[0]).encode() + b"\n")
    assert read_all(path) == [PAGES[0]]


def test_the_test_data_files_read_as_documents() -> None:
    # Pretty-printed pages concatenated and the same pages as JSON lines are the same documents.
    assert read_all(DATA / "google_tokens_pages.json") == read_all(DATA / "google_tokens.jsonl")
    assert len(read_all(DATA / "google_tokens.jsonl")) == 5


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{"a": 1}\n{"b": 2}\n{"c": ,}\n{"d": 4}\n')
    documents = reader.documents(path)
    assert next(documents) == {"a": 1}
    assert next(documents) == {"b": 2}
    with pytest.raises(RecordError) as caught:
        next(documents)
    assert caught.value.record_no == 0
    assert caught.value.message == "invalid JSON at line 3, column 7: Expecting value"


@pytest.mark.parametrize("chunk_bytes", [1, 4, 9, 1 << 20])
def test_the_position_of_invalid_json_is_the_same_whatever_the_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    lines = [json.dumps({"n": number, "text": "é" * number}, ensure_ascii=False) for number in range(30)]
    lines[24] = '  {"n": 24, "text": "ok" "missing colon"}'
    monkeypatch.setattr(reader, "CHUNK_BYTES", chunk_bytes)
    error = error_of(write(tmp_path, "\n".join(lines) + "\n"))
    assert error.message == "invalid JSON at line 25, column 26: Expecting ',' delimiter"


def test_a_document_cut_off_at_the_end_of_the_file_is_invalid(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, '{"a": 1}\n{"b": [1, 2'))
    assert error.message == "invalid JSON at line 2, column 12: Expecting ',' delimiter"
    error = error_of(write(tmp_path, '{"a": "never closed', "string.json"))
    assert error.message == "invalid JSON at line 1, column 7: Unterminated string starting at"


def test_a_control_character_inside_a_string_is_invalid(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, '{"a": "tab\there"}'))
    assert error.message == "invalid JSON at line 1, column 11: Invalid control character at"


def test_a_bare_word_is_invalid(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, "\n\n   hello")).message == "invalid JSON at line 3, column 4: Expecting value"


def test_bad_utf8_is_refused_after_the_documents_before_it(tmp_path: Path) -> None:
    content = b'{"a": "caf\xc3\xa9"}\n{"b": "caf\xe9 latin-1"}\n'
    documents = reader.documents(write(tmp_path, content))
    assert next(documents) == {"a": "café"}
    with pytest.raises(RecordError) as caught:
        next(documents)
    bad_byte = content.index(b"\xe9") + 1
    assert caught.value.record_no == 0
    assert caught.value.message == f"the file is not UTF-8 text: invalid byte at line 2, column 11 (byte {bad_byte})"


@pytest.mark.parametrize("chunk_bytes", [1, 3, 1 << 20])
def test_bad_utf8_is_found_whatever_the_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", chunk_bytes)
    content = b'["\xe2\x9c\x93 ok"]\n["\xe2\x9c bad"]'  # a three-byte character missing its last byte
    bad_byte = content.index(b"\xe2\x9c ") + 1
    error = error_of(write(tmp_path, content))
    assert error.message == f"the file is not UTF-8 text: invalid byte at line 2, column 3 (byte {bad_byte})"


def test_a_character_cut_by_the_end_of_the_file_is_bad_utf8(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, b'{"a": 1} "\xc3'))
    assert error.message == "the file is not UTF-8 text: invalid byte at line 1, column 11 (byte 11)"


def test_a_document_over_the_size_limit_is_refused(tmp_path: Path, settings: Any) -> None:
    settings.DISCOVERY_DOCUMENT_MAX_BYTES = 100
    fits = json.dumps({"text": "x" * 88})
    assert len(fits) == 100
    too_large = json.dumps({"text": "x" * 89})
    assert read_all(write(tmp_path, fits, "fits.json")) == [{"text": "x" * 88}]
    error = error_of(write(tmp_path, f"{fits}\n  {too_large}\n{fits}", "large.json"))
    assert error.record_no == 0
    assert error.message.startswith("the JSON document starting at line 2, column 3 is larger than 100 bytes")


def test_the_size_limit_counts_utf8_bytes_not_characters(tmp_path: Path, settings: Any) -> None:
    settings.DISCOVERY_DOCUMENT_MAX_BYTES = 100
    document = json.dumps({"text": "é" * 40}, ensure_ascii=False)  # 52 characters, 92 bytes
    assert read_all(write(tmp_path, document, "fits.json")) == [{"text": "é" * 40}]
    document = json.dumps({"text": "é" * 45}, ensure_ascii=False)  # 57 characters, 102 bytes
    assert "larger than 100 bytes" in error_of(write(tmp_path, document, "large.json")).message


class CountingStream:
    """A file opened for reading that counts the bytes read from it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        data: bytes = self.stream.read(size)
        self.bytes_read += len(data)
        return data

    def __enter__(self) -> CountingStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.close()


def test_an_unfinished_document_is_refused_once_past_the_limit(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A document that never ends is not read to the end of the file: the reader stops as soon as
    # it holds more than the limit.
    settings.DISCOVERY_DOCUMENT_MAX_BYTES = 1000
    monkeypatch.setattr(reader, "CHUNK_BYTES", 256)
    path = write(tmp_path, '{"items": [' + ", ".join(['"abcdefgh"'] * 10_000))
    streams: list[CountingStream] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> CountingStream:
        streams.append(CountingStream(real_open(self, *args, **kwargs)))
        return streams[-1]

    monkeypatch.setattr(Path, "open", counting_open)
    error = error_of(path)
    assert error.message.startswith("the JSON document starting at line 1, column 1 is larger than 1,000 bytes")
    assert path.stat().st_size > 100_000
    assert streams[0].bytes_read <= 1000 + 256
