"""The interfaces every encoder and pair scorer follows, and their shared input checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into vectors, one row per text, in input order."""

    name: str

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return ``(len(texts), dim)`` float32 vectors."""
        ...


@runtime_checkable
class PairScorer(Protocol):
    """Scores pairs of texts directly: higher means more similar or more relevant."""

    name: str

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return one score per pair, in input order."""
        ...


def check_text(text: str, what: str) -> str:
    r"""Return ``text`` if the models and the index can take it, else refuse it naming ``what``.

    Refused (``ValueError``), wherever text enters sentsim:

    - a lone surrogate, half a character: a command-line argument's byte that is not UTF-8
      (Python keeps it as U+DC80–U+DCFF) or an unpaired JSON escape such as ``\ud83d``. It
      cannot be written as UTF-8, so the tokenizers and SQLite raised from inside;
    - a NUL character (U+0000): BERT's tokenizer drops it silently, SQLite compares text only up
      to it (an id holding one was never found again), and in a file it means UTF-16 or binary
      data read as text.

    An empty string is valid text; callers that need words (queries, documents) say so.
    """
    if "\x00" in text:
        raise ValueError(
            f"{what} holds a NUL character (U+0000) at character {text.index(chr(0)) + 1}; "
            "remove it"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            found = (
                f"the byte 0x{code - 0xDC00:02x}, which is not UTF-8, at character {exc.start + 1}"
                if 0xDC80 <= code <= 0xDCFF
                else f"an unpaired surrogate (U+{code:04X}) at character {exc.start + 1} (half a "
                "character, e.g. a \\ud83d escape without its pair)"
            )
            raise ValueError(f"{what} holds {found}; pass UTF-8 text") from None
    return text


def check_json_text(value: object, where: str, context: str = "") -> None:
    """Apply :func:`check_text` to every string of a JSON-like value, keys too, naming its place.

    ``where`` names ``value``; a string inside it is named by its path (``metadata['tags'][1]``),
    a key as ``a key of metadata``; ``context`` goes before either (``document 3 (id 'x'): ``).
    """
    if isinstance(value, str):
        check_text(value, f"{context}{where}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                check_text(key, f"{context}a key of {where}")
            check_json_text(item, f"{where}[{key!r}]", context)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_text(item, f"{where}[{i}]", context)


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """Return ``texts`` as a list, refusing the first item that is not a valid str by its index.

    ``TypeError`` for an item that is not a str, ``ValueError`` for one :func:`check_text`
    refuses (a lone surrogate or a NUL). Empty strings are kept.
    """
    if isinstance(texts, str):
        raise TypeError("expected a list of strings, got a single str; wrap it in a list")
    items = list(texts)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"item {i} is {type(item).__name__}, expected str")
        check_text(item, f"item {i}")
    return items


def check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``pairs`` as a list of 2-tuples, raising ``TypeError`` naming a malformed pair.

    A pair is a tuple, a list or a numpy row (``np.array(pairs)``) of two strings; a text that
    :func:`check_text` refuses is a ``ValueError`` naming the pair and its side. Empty strings
    are kept.
    """
    expected = "expected a list of (text_a, text_b) pairs"
    if isinstance(pairs, str):
        raise TypeError(f"{expected}, got a single str")
    if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(x, str) for x in pairs):
        raise TypeError(f"{expected}, got a single pair; wrap it in a list")
    out = []
    for i, pair in enumerate(pairs):
        if (
            isinstance(pair, str)
            or not isinstance(pair, Sequence | np.ndarray)
            or len(pair) != 2
            or not all(isinstance(x, str) for x in pair)
        ):
            raise TypeError(f"pair {i} must be two strings (text_a, text_b); got {pair!r:.80}")
        a = check_text(str(pair[0]), f"pair {i} (text_a)")
        out.append((a, check_text(str(pair[1]), f"pair {i} (text_b)")))
    return out


def check_count(value: object, name: str, *, least: int, none: bool = False) -> None:
    """Check a count argument such as ``batch_size`` or ``top_k``, naming it when it is wrong.

    ``TypeError`` unless an integer (or ``None``, where ``none``); ``ValueError`` below ``least``.
    """
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        kind = "an integer or None" if none else "an integer"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be ≥ {least}, got {value}")


def length_order(texts: Sequence[str]) -> NDArray[np.intp]:
    """Indices that sort texts longest first, so that each batch pads to similar lengths."""
    return np.argsort([-len(t) for t in texts], kind="stable")
