"""One place for paths the project reads from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from sentsim.errors import DatasetMissingError

DATA_ENV = "SENTSIM_DATA"
#: What models compute in when none is given: fp32, bf16, auto or int8 (sentsim.choices.Precision).
PRECISION_ENV = "SENTSIM_PRECISION"


def data_root() -> Path:
    """Return the folder of public data sets: ``$SENTSIM_DATA``, else ``../shared/data``.

    The default is resolved against the current directory, which is the repository root for the
    Makefile and CI.
    """
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else Path("..") / "shared" / "data"


def dataset_path(*parts: str) -> Path:
    """Return a path inside the data root, or raise naming the data set and where it looked.

    >>> dataset_path("stsbenchmark", "sts-test.csv")  # doctest: +SKIP
    PosixPath('../shared/data/stsbenchmark/sts-test.csv')
    """
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise DatasetMissingError(
            f"data set file {'/'.join(parts)} not found: looked at {path.resolve()}; "
            f"set {DATA_ENV} to the folder that holds the public data sets"
        )
    return path


CACHE_ENV = "SENTSIM_CACHE"


def cache_root() -> Path:
    """Return where built indexes are cached: ``$SENTSIM_CACHE``, else ``~/.cache/sentsim``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else Path.home() / ".cache" / "sentsim"
