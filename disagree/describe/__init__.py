"""Descriptive, model-free analysis of rater disagreement.

Rating distributions (overall and per rater group), raw group differences in the shape of the
model's contrasts table, Krippendorff's alpha overall and within groups, the conditional
probabilities between dimensions of the paper's Figure 1, their figures, and :func:`describe`,
which writes all of them to a folder.

Depends only on :mod:`disagree.data`, :mod:`disagree.errors` and :mod:`disagree._io` (plus
``krippendorff``, ``seaborn`` and ``matplotlib``); never on the model.
"""

from disagree.describe.agreement import agreement, conditional_probabilities, reliability_matrix
from disagree.describe.distributions import (
    MEASURES,
    group_distributions,
    rating_distribution,
    raw_differences,
)
from disagree.describe.figures import (
    plot_conditional_probabilities,
    plot_group_differences,
    plot_rating_distribution,
)
from disagree.describe.report import describe

__all__ = [
    "MEASURES", "agreement", "conditional_probabilities", "describe", "group_distributions",
    "plot_conditional_probabilities", "plot_group_differences", "plot_rating_distribution",
    "raw_differences", "rating_distribution", "reliability_matrix",
]
