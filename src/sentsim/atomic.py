"""Atomic writes: a reader sees a file's old content or its new, never a part.

Each file is written under a temporary name in its own folder, flushed and fsynced, then renamed
over the target (:func:`os.replace`); a write that fails removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

STAGING = ".sentsim-saving"
"""The folder inside a model folder that :func:`staged_folder` writes into."""


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that readers see the old or the new content, never a part.

    ``write`` fills a temporary file in the same folder, which is fsynced and renamed over
    ``path``; the folder is fsynced so the rename survives a power cut.
    """
    with _replacing(path, "wb") as handle:
        write(handle)


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """Open ``path`` to write UTF-8 text that appears there whole when the block ends.

    An exception in the block leaves the old file as it was and no temporary file behind.
    """
    with _replacing(path, "w", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def _replacing(path: Path, mode: str, encoding: str | None = None) -> Iterator[Any]:
    """A temporary file beside ``path``, fsynced and renamed over it when the block ends."""
    tmp = _temp_name(path)
    try:
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_text(path) as handle:
        handle.write(text)


@contextlib.contextmanager
def staged_folder(root: Path) -> Iterator[Path]:
    """Yield a folder to save into; at the end its files are moved over ``root``'s one by one.

    For writers that take a folder and write its files themselves (``save_pretrained``): each
    file is fsynced and renamed into ``root``, so none there is ever half-written. The staging
    folder (:data:`STAGING`, inside ``root``) is removed, also when the block fails; one left by
    a killed process is cleared by the next save.
    """
    root.mkdir(parents=True, exist_ok=True)
    stage = root / STAGING
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        items = sorted(stage.rglob("*"))  # a folder before what it holds
        for item in items:
            if item.is_file():
                with open(item, "rb") as handle:
                    os.fsync(handle.fileno())
        for item in items:
            target = root / item.relative_to(stage)
            if item.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(item, target)
        fsync_dir(root)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
