"""Training: data specs -> TrainingData -> a fitted, calibrated router -> a checkpoint with a model card.

The rooms: `data` (data specs, battles and strong-vs-weak examples), `cache` (the on-disk embedding cache),
`fit` (train, calibrate, set reference win rates), `card` (the model card). Every public name is re-exported
here, so `from routing_core.training import train_router` keeps working.
"""

from routing_core.training.cache import CacheWarning, embed_cached
from routing_core.training.card import LICENSES, model_card
from routing_core.training.data import (
    DEFAULT_DATA,
    LABELS,
    SHARED_SOURCES,
    PairExample,
    TrainingData,
    build_training_data,
    is_validation,
    load_spec,
    pair_examples,
    scored_to_battles,
    tier_of,
)
from routing_core.training.fit import reference_prompts, train_router

__all__ = [
    "DEFAULT_DATA",
    "LABELS",
    "LICENSES",
    "SHARED_SOURCES",
    "CacheWarning",
    "PairExample",
    "TrainingData",
    "build_training_data",
    "embed_cached",
    "is_validation",
    "load_spec",
    "model_card",
    "pair_examples",
    "reference_prompts",
    "scored_to_battles",
    "tier_of",
    "train_router",
]
