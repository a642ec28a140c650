"""Evaluation: measure trained models and put them next to the survey.

The last stage: it may import every earlier one, and nothing earlier imports it. Like
:mod:`disagree.train` it needs the ``train`` extra for anything that loads a model.

Modules
-------
heldout
    The held-out prompts of an evaluation (the pairs' prompt split) and their response pairs.
policy
    :class:`Policy`: a trained run (or a base model) and its implicit reward
    ``beta * (log pi - log pi_ref)``.
judges
    ``posterior`` (default, no generation), ``panel`` and ``classifier`` judges: a policy and
    held-out prompts in, one score per prompt out, in the survey's units.
generate
    Seeded completions for the judges that score generated text.
bootstrap
    Intervals over training seeds and prompts (two-level bootstrap, t with Satterthwaite df).
alignment
    The group alignment matrix and the diagonal advantage.
config, figure2
    ``disagree figure2 CONFIG.yaml``: group models, judge scores, ``figure2.csv`` and the
    alignment matrix.
plots
    Figure 2 and the alignment heatmap.
grid_config, executors, grid
    ``disagree experiments CONFIG.yaml``: the paper's experiment grid, each cell a cached
    training run plus its evaluation, run locally or as Ray tasks; ``results.csv``,
    ``summary.csv`` and the figures.
"""

from disagree.evaluate.alignment import (
    alignment_matrix,
    diagonal_advantage,
    group_preferences,
    policy_margins,
)
from disagree.evaluate.bootstrap import Interval, bootstrap_difference, bootstrap_ratios
from disagree.evaluate.config import (
    PAPER_COMPARISONS,
    Comparison,
    Figure2Config,
    load_figure2_config,
)
from disagree.evaluate.figure2 import Figure2Result, figure2, model_side, survey_side
from disagree.evaluate.generate import GenerationSettings, generate
from disagree.evaluate.grid import GridResult, plot_grid, run_grid
from disagree.evaluate.grid_config import GridConfig, load_grid_config
from disagree.evaluate.heldout import held_out_items, response_pairs
from disagree.evaluate.judges import (
    JUDGES,
    ClassifierJudge,
    PanelJudge,
    PosteriorJudge,
    make_judge,
)
from disagree.evaluate.plots import plot_alignment, plot_figure2
from disagree.evaluate.policy import Policy

__all__ = [
    "JUDGES", "PAPER_COMPARISONS", "ClassifierJudge", "Comparison", "Figure2Config",
    "Figure2Result", "GenerationSettings", "GridConfig", "GridResult", "Interval", "PanelJudge",
    "Policy", "PosteriorJudge",
    "alignment_matrix", "bootstrap_difference", "bootstrap_ratios", "diagonal_advantage",
    "figure2", "generate", "group_preferences", "held_out_items", "load_figure2_config",
    "load_grid_config", "make_judge", "model_side", "plot_alignment", "plot_figure2",
    "plot_grid", "policy_margins", "response_pairs", "run_grid", "survey_side",
]
