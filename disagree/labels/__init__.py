"""Soft labels: the posterior predictive distribution over rating categories.

Depends on :mod:`disagree.model` and :mod:`disagree.ordinal`; nothing in the analysis stages
before it imports it. ``soft_labels(fit, unit=...)`` returns one row per item x dimension x
unit (a rater, a demographic group or a population) with ``p_1..p_K``, the posterior mean of
the expected rating and its posterior standard deviation; ``write_soft_labels`` writes the
table atomically (Parquet, CSV or TSV) and ``read_soft_labels`` reads and checks it; later
stages take the column names from here (``prob_columns``, ``KEY_COLUMNS``). The numerical
kernels, in bounded-memory chunks of draws, are in :mod:`disagree.labels.kernels`.

``pair_preferences(fit, pairs, dimension, unit=...)`` returns, per pair of items and unit, the
probability that one rater of the unit, rating both, prefers the first (ties half): the weights
of soft preference pairs (:mod:`disagree.labels.preferences`, kernels in
:mod:`disagree.labels.pair_kernels`). The posterior arrays and the units' cell mixes both use
are in :mod:`disagree.labels.posterior`.

``write_rater_labels(fit, path, items="rated")`` streams rater-level labels to Parquet a row
group at a time, by default only on the items each rater rated
(:mod:`disagree.labels.stream`): the way to rater labels of large surveys.
"""

from disagree.labels.preferences import PREFERENCE, pair_preferences
from disagree.labels.soft import (
    KEY_COLUMNS,
    SUMMARY_COLUMNS,
    UNITS,
    check_soft_labels,
    prob_columns,
    read_soft_labels,
    soft_labels,
    write_soft_labels,
)
from disagree.labels.stream import ITEM_SCOPES, write_rater_labels

__all__ = ["ITEM_SCOPES", "KEY_COLUMNS", "PREFERENCE", "SUMMARY_COLUMNS", "UNITS",
           "check_soft_labels", "pair_preferences", "prob_columns", "read_soft_labels",
           "soft_labels", "write_rater_labels", "write_soft_labels"]

from disagree.labels.disagreement import (  # noqa: E402  (per-item group disagreement)
    LevelProbabilities,
    group_disagreement,
    level_probabilities,
    pair_disagreement,
    plot_disagreement,
    prompts_of,
)

__all__ += ["LevelProbabilities", "group_disagreement", "level_probabilities",
            "pair_disagreement", "plot_disagreement", "prompts_of"]
