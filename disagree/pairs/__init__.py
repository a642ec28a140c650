"""Preference pairs from ratings or from the posterior, ready for TRL.

Depends on :mod:`disagree.data`, :mod:`disagree.model` and :mod:`disagree.labels`; nothing
before it imports it, and it imports neither torch nor datasets at import time
(``PairSet.to_hf_dataset`` imports ``datasets`` when called).

``make_pairs(table, fit, dimension=..., strategy="majority"|"all"|"soft", ...)`` returns a
:class:`PairSet`: a DataFrame with the columns ``prompt, chosen, rejected, weight, prompt_id,
chosen_id, rejected_id, dimension, strategy, unit, split`` and a manifest, written with
``to_jsonl``, ``to_parquet`` or ``save``, read back and checked with ``PairSet.load`` (the one
reader of the format), and converted with ``to_hf_dataset``. The strategies
are in :mod:`disagree.pairs.strategies`, the checks and splits in :mod:`disagree.pairs.build`;
the weights of ``soft`` pairs (one rater of the unit rating both responses) come from
:func:`disagree.labels.pair_preferences`, and ``manifest.json`` records the fit's interaction
factors and level-effect setting (``inputs.fit_interactions``, ``inputs.fit_effects``).
"""

from disagree.pairs.build import BETTER, STRATEGIES, make_pairs
from disagree.pairs.pairset import COLUMNS, PairSet
from disagree.pairs.strategies import preference_probability

__all__ = ["BETTER", "COLUMNS", "PairSet", "STRATEGIES", "make_pairs", "preference_probability"]
