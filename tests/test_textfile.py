"""Files that are not UTF-8: every reader of the user's files names the file and the line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentsim.cli._common import read_texts
from sentsim.cli.search import read_queries
from sentsim.corpus import read_corpus
from sentsim.data import read_pairs
from sentsim.errors import DataError
from sentsim.helpcenter import read_questions
from sentsim.textfile import read_text
from sentsim.training.data import read_triples
from sentsim.training.silver import read_sentences

CAFE = "café".encode("cp1252")  # b"caf\xe9": valid Windows-1252, invalid UTF-8


def cp1252_file(path: Path, lines: list[bytes]) -> Path:
    """Write ``lines`` (bytes) joined by newlines: the shape of a spreadsheet's export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


READERS: dict[str, tuple[Callable[[Path], Any], str, list[bytes]]] = {
    "pairs csv": (read_pairs, "p.csv", [b"sentence1,sentence2,score", b"a,b,1", CAFE + b",c,2"]),
    "pairs jsonl": (
        read_pairs,
        "p.jsonl",
        [b'{"sentence1": "a", "sentence2": "b", "score": 1}', b'{"sentence1": "' + CAFE + b'"}'],
    ),
    "corpus csv": (read_corpus, "c.csv", [b"id,text", b"1,fine", b"2," + CAFE]),
    "corpus jsonl": (read_corpus, "c.jsonl", [b'{"id": "1", "text": "ok"}', b'{"id": "' + CAFE]),
    "texts": (read_texts, "t.txt", [b"fine", CAFE]),
    "training csv": (read_triples, "tr.csv", [b"anchor,positive", b"a,b", CAFE + b",x"]),
    "questions": (read_questions, "q.csv", [b"text,intent", b"hi,lost_or_stolen_card", CAFE]),
}


@pytest.mark.parametrize("reader", READERS)
def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path, reader: str) -> None:
    read, name, lines = READERS[reader]
    path = cp1252_file(tmp_path / name, lines)
    with pytest.raises(DataError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line {len(lines)}: not UTF-8 text (byte 0xe9")
    assert "save the file as UTF-8" in message


@pytest.mark.parametrize("reader", [r for r in READERS if not r.startswith("corpus")])
def test_a_gzip_compressed_file_is_named_as_such(tmp_path: Path, reader: str) -> None:
    """It was 'not UTF-8 text (byte 0x8b ...)' with advice to convert it from cp1252 by iconv.
    (A corpus reader refuses the .gz extension itself.)"""
    import gzip

    read, name, lines = READERS[reader]
    path = tmp_path / f"{name}.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines[:2]) + b"\n"))
    with pytest.raises(DataError, match=rf"^{path}: gzip-compressed; decompress it first"):
        read(path)


@pytest.mark.parametrize("reader", READERS)
def test_a_utf16_file_is_named_as_such(tmp_path: Path, reader: str) -> None:
    """A UTF-16 file (Windows Notepad, PowerShell's >) was told to convert from cp1252, which
    would have kept every other byte a NUL."""
    read, name, lines = READERS[reader]
    path = tmp_path / name
    path.write_bytes((b"\n".join(lines[:-1]).decode() + "\n").encode("utf-16"))
    with pytest.raises(DataError, match=r"UTF-16 text, not UTF-8; .*iconv -f utf-16 -t utf-8"):
        read(path)


@pytest.mark.parametrize("reader", READERS)
def test_a_nul_character_names_its_line(tmp_path: Path, reader: str) -> None:
    """A NUL byte is valid UTF-8: it reached the tokenizers, which drop it silently, and SQLite,
    which compares an id only up to it."""
    read, name, lines = READERS[reader]
    path = cp1252_file(tmp_path / name, [*lines[:-1], lines[-1].replace(CAFE, b"x\0y")])
    with pytest.raises(DataError, match=rf"^{path}, line {len(lines)}: holds a NUL character"):
        read(path)


def test_utf16_without_a_byte_order_mark_is_named_by_its_nul(tmp_path: Path) -> None:
    """UTF-16 without its mark decodes as UTF-8 with a NUL beside every ASCII letter."""
    path = tmp_path / "t.txt"
    path.write_bytes("fine\ncard\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=rf"^{path}, line 1: .*iconv -f utf-16le -t utf-8 "):
        read_texts(path)
    line_3 = tmp_path / "late.txt"
    line_3.write_bytes(b"one\r\ntwo\r\nthree\x00\r\n")
    with pytest.raises(DataError, match=r"late\.txt, line 3: holds a NUL"):
        read_text(line_3)


PAIR = '{"sentence1": "a", "sentence2": "b", "score": 1}'
ESCAPES: dict[str, tuple[Callable[[Path], Any], str, list[str], str]] = {
    "pairs": (
        read_pairs,
        "p.jsonl",
        [PAIR, PAIR.replace('"b"', '"b\\ud800"')],
        r"'sentence2' holds an unpaired surrogate \(U\+D800\) at character 2",
    ),
    "corpus metadata": (
        read_corpus,
        "c.jsonl",
        ['{"id": "1", "text": "ok"}', '{"id": "2", "text": "ok", "tags": ["a", "b\\u0000"]}'],
        r"'tags'\[1\] holds a NUL character \(U\+0000\) at character 2",
    ),
    "texts": (
        read_texts,
        "t.jsonl",
        ['{"text": "ok"}', '{"text": "x\\u0000"}'],
        "'text' holds a NUL",
    ),
    "training": (
        read_triples,
        "tr.jsonl",
        ['{"anchor": "a", "positive": "b"}', '{"anchor": "a", "positive": "\\udfffb"}'],
        r"'positive' holds an unpaired surrogate \(U\+DFFF\) at character 1",
    ),
    "questions": (
        read_questions,
        "q.jsonl",
        ['{"text": "x", "intent": "card_arrival"}', '{"text": "y", "intent": "a", "\\ud83d": 1}'],
        r"a key holds an unpaired surrogate \(U\+D83D\)",
    ),
    "sentences": (read_sentences, "s.jsonl", ["", '{"text": "x\\u0000"}'], "'text' holds a NUL"),
    "queries": (read_queries, "q.jsonl", ["", '{"text": "x\\ud800"}'], "'text' holds an unpaired"),
}


@pytest.mark.parametrize("reader", ESCAPES)
def test_a_json_escape_that_is_not_text_names_its_line_and_field(
    tmp_path: Path, reader: str
) -> None:
    """A lone surrogate escape (\\ud800) ended in a TypeError from inside the tokenizer or a
    UnicodeEncodeError from SQLite; a \\u0000 escape was a NUL, which the tokenizer dropped."""
    read, name, lines, message = ESCAPES[reader]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}, line 2: {message}"):
        read(path)


def test_a_bad_escape_is_a_bad_row_that_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([PAIR, PAIR.replace('"a"', '"a\\u0000"'), PAIR]) + "\n")
    dataset = read_pairs(path, skip_bad_rows=True)
    assert len(dataset.examples) == 2
    assert dataset.skipped == [
        (2, "'sentence1' holds a NUL character (U+0000) at character 2; remove it")
    ]


def test_a_folder_corpus_names_the_file(tmp_path: Path) -> None:
    cp1252_file(tmp_path / "docs" / "a.md", [b"# Title", b"plain"])
    bad = cp1252_file(tmp_path / "docs" / "sub" / "b.txt", [b"one", b"two", CAFE])
    with pytest.raises(DataError, match=rf"^{bad}, line 3: not UTF-8"):
        read_corpus(tmp_path / "docs")


def test_the_line_is_found_past_the_decoders_read_ahead(tmp_path: Path) -> None:
    # the text reader decodes blocks of several KB ahead of the line it returns, so the failing
    # line is not the number of lines read so far; it is found again from the bytes
    lines = [b"line %d with some padding to fill the block" % n for n in range(1, 5001)]
    lines[3999] = CAFE
    path = cp1252_file(tmp_path / "big.txt", lines)
    with pytest.raises(DataError, match=r"big.txt, line 4000: not UTF-8 .* byte 4 of the line"):
        read_texts(path)


def test_a_byte_order_mark_is_dropped_and_utf8_reads(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffcafé\nnaïve\n".encode())
    assert read_text(path) == "café\nnaïve\n"
    assert read_texts(path) == ["café", "naïve"]


def test_a_corpus_text_that_is_not_a_string_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 5, "text": 7}\n')
    with pytest.raises(DataError, match=r"line 1: document '5' has a 'text' of type int"):
        read_corpus(path)
