"""Ratings data: reading and validation, scale conversion, real-data loaders, the simulator.

Depends only on :mod:`disagree.errors`, :mod:`disagree.ordinal` and :mod:`disagree._io`.
"""

from disagree.data.popquorn import POPQUORN_URL, load_popquorn
from disagree.data.prism import PRISM_HUB_ID, PRISM_URL, load_prism, prism_cuts
from disagree.data.prism_synthetic import write_synthetic_prism
from disagree.data.ratings import RatingTable, drop_raters_missing, load_ratings, save_ratings
from disagree.data.scale import default_cuts, high_threshold, scale_mapping, to_scale
from disagree.data.simulate import (
    PAPER_TARGETS,
    Survey,
    SurveyConfig,
    load_default_survey,
    simulate_survey,
)

__all__ = [
    "PAPER_TARGETS", "POPQUORN_URL", "PRISM_HUB_ID", "PRISM_URL", "RatingTable", "Survey",
    "SurveyConfig", "default_cuts", "drop_raters_missing", "high_threshold",
    "load_default_survey", "load_popquorn", "load_prism", "load_ratings", "prism_cuts",
    "save_ratings", "scale_mapping", "simulate_survey", "to_scale", "write_synthetic_prism",
]
