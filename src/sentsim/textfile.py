"""Reading the user's text files as UTF-8, with an error naming the line of a file that is not.

A leading byte-order mark is ignored. Spreadsheet exports are often Windows-1252 or Latin-1; a file
that does not decode is an error naming the file, the line and the byte, and saying how to convert
it, instead of a decoder traceback or an encoding guessed and wrong characters read silently into
an index or a training set. So is a NUL character, which no text file holds: the tokenizers drop
it silently, and a file with one beside every letter is UTF-16 without its byte-order mark.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sentsim.errors import DataError

#: File suffixes read as CSV / TSV tables with a header (:class:`TableReader`).
TABLE_SUFFIXES = (".csv", ".tsv")


class TextFile:
    """A text file opened for reading; iterate over its lines or :meth:`read` it whole.

    ``newline`` is passed to :func:`open` (``""`` for the :mod:`csv` module).
    """

    def __init__(self, path: Path, *, newline: str | None = None) -> None:
        self.path = path
        self._handle: IO[str] = path.open(encoding="utf-8-sig", newline=newline)
        self._lines = 0  # lines read so far, to name the line of a NUL

    def __enter__(self) -> TextFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[str]:
        try:
            for line in self._handle:
                yield self._checked(line)
        except UnicodeDecodeError:
            raise DataError(not_utf8(self.path)) from None

    def readline(self) -> str:
        """The next line ("" at the end), as :meth:`io.TextIOBase.readline`."""
        try:
            return self._checked(self._handle.readline())
        except UnicodeDecodeError:
            raise DataError(not_utf8(self.path)) from None

    def read(self) -> str:
        """The rest of the file."""
        try:
            return self._checked(self._handle.read())
        except UnicodeDecodeError:
            raise DataError(not_utf8(self.path)) from None

    def _checked(self, text: str) -> str:
        """``text``, the next line or lines of the file, unless it holds a NUL."""
        at = text.find("\0")
        if at >= 0:
            raise DataError(holds_nul(self.path, self._lines + text.count("\n", 0, at) + 1))
        self._lines += text.count("\n")
        return text


def open_text(path: Path, *, newline: str | None = None) -> TextFile:
    """Open ``path`` as UTF-8 text whose decoding errors name the file and line."""
    return TextFile(path, newline=newline)


def read_text(path: Path) -> str:
    """The whole of ``path`` as UTF-8 text (a byte-order mark dropped); see :func:`open_text`."""
    with open_text(path) as handle:
        return handle.read()


def read_lines(path: Path) -> list[str]:
    """The lines of ``path``, split at line ends only (LF, CR LF or CR).

    Not ``str.splitlines()``, which also splits at form feeds, U+0085, U+2028 and U+2029 — text a
    line may legitimately hold — and would put line *n*'s vector or label at the wrong row.
    """
    text = read_text(path)
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def not_utf8(path: Path) -> str:
    """The message for a file that does not decode: its first bad line and byte.

    The decoder reads ahead in blocks, so the line is found again here from the raw bytes.
    """
    with path.open("rb") as handle:
        start = handle.read(2)
        if start == b"\x1f\x8b":  # gzip's magic number: iconv would not help
            return f"{path}: gzip-compressed; decompress it first, e.g. `gunzip -k {path}`"
        if start in (b"\xff\xfe", b"\xfe\xff"):  # Notepad's "Unicode", PowerShell's >
            return (
                f"{path}: UTF-16 text, not UTF-8; save the file as UTF-8, e.g. "
                f"`iconv -f utf-16 -t utf-8 {path} > {path.stem}-utf8{path.suffix}`"
            )
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (
                    f"{path}, line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line); save the file as UTF-8, e.g. "
                    f"`iconv -f cp1252 -t utf-8 {path} > {path.stem}-utf8{path.suffix}`"
                )
    return f"{path}: not UTF-8 text; save the file as UTF-8"


def holds_nul(path: Path, line: int) -> str:
    """The message for a file whose ``line`` holds a NUL character."""
    return (
        f"{path}, line {line}: holds a NUL character (the byte 0x00), which text does not; if "
        "the file is UTF-16 (a NUL beside every letter), save it as UTF-8, e.g. "
        f"`iconv -f utf-16le -t utf-8 {path} > {path.stem}-utf8{path.suffix}`; else remove it"
    )


def unquote_tsv_cell(cell: str) -> str:
    """A TSV cell wholly quoted in CSV style, with its inner quotes doubled, without that quoting.

    What pandas writes with a tab separator; any other quote is the text's own and stays.
    """
    inner = cell[1:-1]
    if len(cell) >= 2 and cell[0] == cell[-1] == '"' and '"' not in inner.replace('""', ""):
        return inner.replace('""', '"')
    return cell


class TableReader(csv.DictReader):
    """A :class:`csv.DictReader` over a CSV (standard quoting) or a TSV (``tsv=True``).

    A TSV row is one line, its cells as written (:func:`unquote_tsv_cell` aside): with CSV
    quoting, a text that opens with an unbalanced quote, as many real sentences do, made one record
    of every line up to the next quote or the end of the file, and those rows were lost silently.
    Cells past the header stay under the key ``None``, as :class:`csv.DictReader` files them.
    """

    def __init__(self, handle: IO[str] | TextFile, *, tsv: bool) -> None:
        if tsv:
            super().__init__(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            super().__init__(handle, delimiter=",")
        self.tsv = tsv
        if tsv:
            self.fieldnames = [unquote_tsv_cell(n) for n in self.fieldnames or []]

    def __next__(self) -> dict[Any, Any]:
        row = super().__next__()
        if not self.tsv:
            return row
        return {k: unquote_tsv_cell(v) if isinstance(v, str) else v for k, v in row.items()}
