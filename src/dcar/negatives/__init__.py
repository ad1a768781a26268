"""Hard negative captions: category swaps and attribute perturbations (see ``generator``)."""

from dcar.negatives.attributes import DEFAULT_LEXICON, AttributeLexicon
from dcar.negatives.generator import (
    STRATEGIES,
    NegativeCaption,
    NegativeGenerator,
    keeps_category,
    normalize,
)
from dcar.negatives.factory import make_generator
from dcar.negatives.mentions import display_name, mentions, replace_mentions
from dcar.negatives.repair import RepairCounts, repair_negatives
from dcar.negatives.siblings import EmbeddingRanker, LexicalRanker, lexical_similarity
from dcar.negatives.stats import NegativeStats

__all__ = [
    "DEFAULT_LEXICON",
    "STRATEGIES",
    "AttributeLexicon",
    "EmbeddingRanker",
    "LexicalRanker",
    "NegativeCaption",
    "NegativeGenerator",
    "NegativeStats",
    "RepairCounts",
    "display_name",
    "keeps_category",
    "lexical_similarity",
    "make_generator",
    "mentions",
    "normalize",
    "repair_negatives",
    "replace_mentions",
]
