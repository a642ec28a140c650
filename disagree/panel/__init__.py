"""The rating panel: the rating distribution a group of raters would give a text.

A stage between :mod:`disagree.labels` / :mod:`disagree.pairs` and :mod:`disagree.train`: it
learns, from the individual ratings, a text encoder plus an ordinal (or multinomial) head with
the rater factors as inputs, and predicts for the whole sample or a group such as
``{"politics": "conservative"}``; :mod:`disagree.train` uses it as the GRPO reward. It depends
on :mod:`disagree.data`, :mod:`disagree.ordinal`, :mod:`disagree.errors` and
:mod:`disagree._io` only (no later stage), and imports no torch until a fit runs.

Modules
-------
scorer
    :class:`RatingPanelScorer`, the user-facing object: options, ``fit``, ``predict_proba``,
    ``expected_rating``, ``score``, ``evaluate``, ``calibration``, ``save``, ``load``.
state
    :class:`PanelState`, the immutable fitted state (factors and levels, training cells,
    head parameters, encoder) and the predictions it makes (``design``, ``probs``,
    ``predict``, ``expected``).
options
    :class:`PanelOptions`, the checked settings, and the defaults.
fitting
    :func:`fit_panel`: table + items + options -> :class:`PanelState` (Adam in torch), with
    group-by-text weights so that a group can rank texts differently from the population.
guard
    :class:`SupportGuard`: the reward guard of ``score`` (completions shorter than every rated
    response earn at most what a poor rated response earns).
encoders
    Text encoders: hashed n-gram TF-IDF (numpy only, the default) and MiniLM.
data
    Reading a :class:`~disagree.data.RatingTable`: factors, texts, the rating rows, and
    :func:`split_items`, the held-out items from the toolkit's one prompt split.
evaluation
    Held-out accuracy and calibration against the Bayesian soft labels.
io
    :func:`save_state` / :func:`load_state` (``scorer.json`` + ``arrays.npz``, atomic and
    SHA-256 checked).
"""

from disagree.panel.data import item_splits, split_items
from disagree.panel.encoders import ENCODERS, HashingEncoder, SentenceEncoder, make_encoder
from disagree.panel.evaluation import calibrate_panel, evaluate_panel
from disagree.panel.fitting import fit_panel
from disagree.panel.guard import SupportGuard
from disagree.panel.io import load_state, save_state
from disagree.panel.options import HEADS, PanelOptions
from disagree.panel.scorer import RatingPanelScorer
from disagree.panel.state import PanelState

__all__ = [
    "ENCODERS", "HEADS", "HashingEncoder", "PanelOptions", "PanelState", "RatingPanelScorer",
    "SentenceEncoder", "SupportGuard", "calibrate_panel", "evaluate_panel", "fit_panel",
    "item_splits", "load_state", "make_encoder", "save_state", "split_items",
]
