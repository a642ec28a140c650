"""disagree: statistics of rater disagreement in LLM alignment data.

The flow is one way: data -> model -> labels -> pairs -> panel / train -> evaluate. Each stage
is a subpackage with a small public API; no stage imports a later one. This namespace
re-exports the analysis half; the training half (torch, trl) is imported only inside
``disagree.train``.

Glossary
--------
These words mean one thing each, in the API's arguments, the command line's flags, column
names and the docs.

rating
    One rater's score of one item on one dimension, an integer ``1..K``.
item
    What is rated: a response (``item_id``), usually to a prompt (``prompt_id``).
dimension
    What is rated about it (``toxicity``, ``emotional_awareness``...).
scale
    The number of categories ``K`` a dimension is rated on, as declared or found in the data
    (``--scale``). Converting to another scale is ``to_scale`` (``dg.to_scale(table, 2)``,
    ``make_pairs(..., to_scale=2)``, ``disagree pairs --to-scale 2``).
factor
    A rater attribute that a model, a description or a scorer uses, e.g. ``politics``
    (``factors=[...]``, ``--factors politics,gender``; column ``factor`` in contrast
    tables). Its values are its *levels* (``conservative``); the *reference* level is the one
    contrasts compare against (``reference={"politics": "liberal"}``).
group
    A selection of raters by factor levels, as a mapping ``{"politics": "conservative"}``
    (``group=``, ``--group``), written ``politics=conservative`` or
    ``gender=female,politics=conservative`` (``factor=level`` joined by commas, no spaces;
    :func:`disagree.data.groups.format_group` / ``parse_group``).
unit
    Whose preference a soft label or a pair expresses: ``"population"`` (the sample, or a
    target population), ``"group"`` (one group of raters) or ``"rater"`` (each rater)
    (``unit=``, ``--unit``; column ``unit`` of a pairs file holds ``population``, the group's
    string form, or the rater id).
split
    The prompts' assignment to ``train``, ``validation`` and ``test``
    (:func:`disagree.data.splits.split_prompts`), shared by every stage that holds data out.

Names replaced in 0.2 (the old ones work for one release with a ``DeprecationWarning``):
``fit(covariates=)`` -> ``factors``, ``soft_labels(level=, by=)`` -> ``unit``, ``factors``,
``make_pairs(scale=)`` -> ``to_scale``, ``RatingPanelScorer(attributes=)`` -> ``factors``,
``RatingPanelScorer.score(unit={...})`` -> ``group``; CLI ``--covariates``, ``--level``,
``--by`` likewise.
"""

from disagree.data import (
    RatingTable,
    SurveyConfig,
    load_default_survey,
    load_popquorn,
    load_prism,
    load_ratings,
    save_ratings,
    simulate_survey,
    to_scale,
)
from disagree.data.dices import load_dices
from disagree.errors import DataError, DisagreeError, DisagreeWarning, ModelError
from disagree.labels import soft_labels
from disagree.model import Fit, compare, fit, load_fit
from disagree.pairs import PairSet, make_pairs

__version__ = "0.1.0"

__all__ = [
    "DataError", "DisagreeError", "DisagreeWarning", "Fit", "ModelError", "PairSet",
    "RatingTable", "SurveyConfig", "compare", "fit", "load_default_survey", "load_dices",
    "load_fit", "load_popquorn", "load_prism", "load_ratings", "make_pairs", "save_ratings",
    "simulate_survey", "soft_labels", "to_scale",
]
