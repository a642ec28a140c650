"""disagree: statistics of rater disagreement in LLM alignment data.

The flow is one way: data -> model -> contrasts / soft labels -> pairs -> training ->
evaluation. This package namespace re-exports the public API of the analysis half; the training
half (torch, trl) is imported only inside ``disagree.train`` and ``disagree.evaluate``.
"""

from disagree.data import (
    RatingTable,
    SurveyConfig,
    load_default_survey,
    load_popquorn,
    load_ratings,
    save_ratings,
    simulate_survey,
    to_scale,
)
from disagree.data.dices import load_dices
from disagree.errors import DataError, DisagreeError, DisagreeWarning, ModelError
from disagree.labels import soft_labels
from disagree.model import Fit, fit, load_fit
from disagree.pairs import PairSet, make_pairs

__version__ = "0.1.0"

__all__ = [
    "DataError", "DisagreeError", "DisagreeWarning", "Fit", "ModelError", "PairSet",
    "RatingTable", "SurveyConfig", "fit", "load_default_survey", "load_dices", "load_fit",
    "load_popquorn", "load_ratings", "make_pairs", "save_ratings", "simulate_survey",
    "soft_labels", "to_scale",
]
