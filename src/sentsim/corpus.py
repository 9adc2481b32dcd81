"""Corpus readers and passage splitting: documents in, passages out.

Corpus formats (:func:`read_corpus`): JSON lines or CSV with ``id``, ``title`` (optional) and
``text`` columns; a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``); or a folder of ``.txt`` /
``.md`` files (id = relative path, title = first Markdown heading or the file name).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sentsim.errors import DataError
from sentsim.index import Document
from sentsim.jsonl import JSONL_SUFFIXES, read_objects
from sentsim.textfile import TABLE_SUFFIXES, TableReader, open_text, read_text

csv.field_size_limit(1 << 24)


def read_corpus(path: str | Path) -> list[Document]:
    """Read documents from a JSONL / CSV file or a folder of text files; see the module doc."""
    source = Path(path)
    if source.is_dir():
        docs = list(_read_folder(source))
    elif not source.is_file():
        raise DataError(f"corpus not found: {source.resolve()}")
    elif source.suffix.lower() in JSONL_SUFFIXES:
        docs = list(_read_jsonl(source))
    elif source.suffix.lower() in TABLE_SUFFIXES:
        docs = list(_read_csv(source))
    else:
        raise DataError(
            f"{source}: unknown corpus format {source.suffix!r}; expected .jsonl, .csv, .tsv or a "
            "folder of .txt / .md files"
        )
    if not docs:
        raise DataError(f"{source}: the corpus has no documents")
    return docs


def _document(source: Path, line: int, row: dict[str, Any]) -> Document:
    doc_id = row.get("id", row.get("_id"))
    if isinstance(doc_id, bool | float | list | dict):
        raise DataError(
            f"{source}, line {line}: 'id' is {json.dumps(doc_id)}, a {type(doc_id).__name__}; an "
            "id must be a string or a whole number"
        )
    if isinstance(doc_id, int):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise DataError(f"{source}, line {line}: missing 'id' (or BEIR '_id')")
    text, title = row.get("text"), row.get("title")
    for field, value, kinds in (("text", text, str), ("title", title, str | int)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise DataError(  # a title's list or object was indexed as its Python repr
                f"{source}, line {line}: document {doc_id!r} has a '{field}' of type "
                f"{type(value).__name__}; it must be a string"
            )
    # text the tokenizers cannot take (a lone surrogate escape) was refused as it was read
    searchable = title_and_text("" if title is None else str(title), text or "")
    if searchable is None:
        raise DataError(f"{source}, line {line}: document {doc_id!r} has no 'text' or 'title'")
    title, text = searchable
    metadata = {k: v for k, v in row.items() if k not in ("id", "_id", "title", "text")}
    for key, value in metadata.items():  # the index refused it by position, not by line
        try:
            json.dumps({key: value}, allow_nan=False)
        except ValueError as exc:  # NaN / Infinity (a lone surrogate was refused as it was read)
            raise DataError(
                f"{source}, line {line}: document {doc_id!r} has a {key!r} that is not plain "
                f"JSON ({exc}); write NaN or Infinity as null or a string"
            ) from None
    return Document(doc_id.strip(), text, title, metadata)


def title_and_text(title: str, text: str) -> tuple[str, str] | None:
    """The ``(title, text)`` a document is searched by; ``None`` when it has neither.

    A title without text becomes the text (a paper without its abstract is found by its title).
    """
    if text.strip():
        return title, text
    return ("", title.strip()) if title.strip() else None


def _read_jsonl(source: Path) -> Iterator[Document]:
    for n, row in read_objects(source):
        yield _document(source, n, row)


def _read_csv(source: Path) -> Iterator[Document]:
    tsv = source.suffix.lower() == ".tsv"
    with open_text(source, newline="") as handle:
        reader = TableReader(handle, tsv=tsv)
        if not {"id", "text"} <= set(reader.fieldnames or []):
            raise DataError(
                f"{source}, line 1: header needs 'id' and 'text' (and may have 'title')"
            )
        names = reader.fieldnames or []
        twice = [n for i, n in enumerate(names) if n in names[:i]]
        if twice:  # the row kept the last such column only: the others were lost silently
            raise DataError(
                f"{source}, line 1: the header names column {twice[0]!r} twice; rename one"
            )
        for row in reader:
            if None in row:  # DictReader files the cells past the header under the key None
                columns = len(reader.fieldnames or [])
                extra = row[None]
                count = columns + (len(extra) if isinstance(extra, list) else 1)
                fix = "a text may not hold a tab" if tsv else "quote a field that holds a comma"
                raise DataError(
                    f"{source}, line {reader.line_num}: {count} fields but the header has "
                    f"{columns}; {fix}"
                )
            yield _document(source, reader.line_num, dict(row))


def _read_folder(source: Path) -> Iterator[Document]:
    """Each .txt / .md file a document; an empty one is an error (it would be lost silently).

    Id: the path below ``source``; title: front matter's ``title:``, else a first ``# heading``,
    else the file name; a file holding only a title is searched by it.
    """
    for file in sorted(source.rglob("*")):
        if file.suffix.lower() not in (".txt", ".md") or not file.is_file():
            continue
        doc_id = file.relative_to(source).as_posix()
        try:  # an id (and title) from a name in another encoding would hold undecodable bytes
            doc_id.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"{file}: the file name is not UTF-8 (it is the document's id); rename it, e.g. "
                f"`convmv -f latin1 -t utf-8 --notest -r {source}`"
            ) from None
        text = read_text(file)
        if not text.strip():
            raise DataError(f"{file}: the file is empty; give it text or move it out of {source}")
        title, text = _front_matter(text)
        lines = text.lstrip("\n").split("\n")
        if lines[0].startswith("# "):
            title, text = title or lines[0][2:].strip(), "\n".join(lines[1:]).strip()
        title = title or file.stem.replace("-", " ").replace("_", " ")
        searchable = title_and_text(title, text)
        if searchable is None:
            raise DataError(
                f"{file}: no text and no title; give it text or move it out of {source}"
            )
        title, text = searchable
        yield Document(doc_id, text, title)


def _front_matter(text: str) -> tuple[str, str]:
    """Split off a leading ``---`` front-matter block (Jekyll, Hugo, MkDocs).

    Returns its ``title:`` (or "") and the text after it; text without such a block, whole.
    """
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return "", text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            title = ""
            for line in lines[1:end]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "title" and value.strip():
                    title = value.strip().strip("\"'")
            return title, "\n".join(lines[end + 1 :]).strip()
    return "", text  # no closing line: not front matter


def document_text(doc: Document) -> str:
    """A document as one text: its title, a newline, its text (the text alone without a title).

    The same joining as the passages :func:`sentsim.search.passages_for` indexes, so training
    rows built from documents look like what the index encodes.
    """
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def split_passages(text: str, tokenizer: Any, *, max_tokens: int, stride: int = 32) -> list[str]:
    """Split ``text`` into windows of at most ``max_tokens`` word pieces, overlapping by ``stride``.

    The overlap is at most a quarter of the window, so a short window (a cross-encoder with a
    small ``max_length``) does not turn one article into dozens of near-identical passages.
    Windows are cut at word-piece boundaries (the tokenizer's offsets), so each passage is a
    verbatim slice of the text, which may start inside a word; a text that fits is returned
    whole. Nothing past the model's length limit is dropped: every token lies in some passage.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens={max_tokens} is too small for passages; use ≥ 8")
    # verbose=False: measuring a long text is the point here, not a model input to warn about
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets: Sequence[tuple[int, int]] = encoded["offset_mapping"]
    if len(offsets) <= max_tokens:
        return [text]
    step = max_tokens - min(stride, max_tokens // 4)
    passages = []
    for start in range(0, len(offsets), step):
        end = min(start + max_tokens, len(offsets))
        passages.append(text[offsets[start][0] : offsets[end - 1][1]].strip())
        if end == len(offsets):
            break
    return passages
