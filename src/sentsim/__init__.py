"""sentsim: sentence similarity offline — recruit with a bi-encoder, judge with a cross-encoder."""

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder, RankedDoc
from sentsim.errors import SentsimError
from sentsim.similarity import Metric, similarity

__all__ = ["BiEncoder", "CrossEncoder", "Metric", "RankedDoc", "SentsimError", "similarity"]
__version__ = "0.1.0"
