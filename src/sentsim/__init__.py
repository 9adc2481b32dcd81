"""sentsim: sentence similarity offline — recruit with a bi-encoder, judge with a cross-encoder.

Names are imported lazily (PEP 562), so ``import sentsim`` costs nothing until a model is used
(numpy aside). ``similarity`` is the exception: it shares its name with its module, and Python
sets a package attribute to the submodule whenever that is first imported (as every model does),
which would hide a lazy name; so the function is bound here, after its module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sentsim.similarity import Metric, similarity

if TYPE_CHECKING:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder, RankedDoc
    from sentsim.errors import SentsimError
    from sentsim.fusion import load_judge
    from sentsim.index import Document, Index
    from sentsim.search import ExampleQueries, SearchPipeline, SearchResult

__all__ = [
    "BiEncoder",
    "CrossEncoder",
    "Document",
    "ExampleQueries",
    "Index",
    "Metric",
    "RankedDoc",
    "SearchPipeline",
    "SearchResult",
    "SentsimError",
    "load_judge",
    "similarity",
]
__version__ = "0.1.0"

_HOME = {
    "BiEncoder": "sentsim.bi_encoder",
    "CrossEncoder": "sentsim.cross_encoder",
    "RankedDoc": "sentsim.cross_encoder",
    "SentsimError": "sentsim.errors",
    "load_judge": "sentsim.fusion",
    "Document": "sentsim.index",
    "Index": "sentsim.index",
    "ExampleQueries": "sentsim.search",
    "SearchPipeline": "sentsim.search",
    "SearchResult": "sentsim.search",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'sentsim' has no attribute {name!r}")
