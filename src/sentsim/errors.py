"""User-facing errors: each message says what was wrong, where, and how to fix it.

The CLI prints any :class:`SentsimError` as one line and exits non-zero; everything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class SentsimError(Exception):
    """Base class for errors caused by input, files or settings rather than by a bug."""


class DataError(SentsimError, ValueError):
    """A data file is missing or malformed (the message names the file, line and field)."""


class ModelLoadError(SentsimError, FileNotFoundError):
    """A model name or directory could not be resolved or is incomplete."""


class DatasetMissingError(SentsimError, FileNotFoundError):
    """A public data set the command needs is not where the data setting points."""


class IndexFormatError(SentsimError, ValueError):
    """An index directory lacks a file, holds a corrupt one, or was written by a newer sentsim.

    The message names the file and says how to rebuild the index.
    """


class IndexExistsError(SentsimError, FileExistsError):
    """``Index.create`` was pointed at a path that already holds an index or other files."""


class IndexLockedError(SentsimError, RuntimeError):
    """Another process holds the index open for writing (one writer at a time)."""


class EncoderMismatchError(SentsimError, ValueError):
    """An index is opened or queried with another encoder than the one that built it."""
