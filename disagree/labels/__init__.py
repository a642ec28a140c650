"""Soft labels: the posterior predictive distribution over rating categories.

Depends on :mod:`disagree.model` and :mod:`disagree.ordinal`; nothing in the analysis stages
before it imports it. ``soft_labels(fit, unit=...)`` returns one row per item x dimension x
unit (a rater, a demographic group or a population) with ``p_1..p_K``, the posterior mean of
the expected rating and its posterior standard deviation; ``write_soft_labels`` writes the
table atomically (Parquet, CSV or TSV) and ``read_soft_labels`` reads and checks it; later
stages take the column names from here (``prob_columns``, ``KEY_COLUMNS``). The numerical
kernels, in bounded-memory chunks of draws, are in :mod:`disagree.labels.kernels`.
"""

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

__all__ = ["KEY_COLUMNS", "SUMMARY_COLUMNS", "UNITS", "check_soft_labels", "prob_columns",
           "read_soft_labels", "soft_labels", "write_soft_labels"]
