"""The methods sentence transformers replaced, behind the same interfaces, to show why."""

from sentsim.baselines.glove import GloveEncoder, SIFGloveEncoder, glove_tokenize
from sentsim.baselines.lexical import BM25PairScorer, OverlapPairScorer
from sentsim.baselines.static import StaticEncoder, distill_static

__all__ = [
    "BM25PairScorer",
    "GloveEncoder",
    "OverlapPairScorer",
    "SIFGloveEncoder",
    "StaticEncoder",
    "distill_static",
    "glove_tokenize",
]
