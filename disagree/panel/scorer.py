"""RatingPanelScorer: the rating distribution a group of raters would give a text.

The scorer is a thin user-facing wrapper: its options (:class:`PanelOptions`) and, once
fitted or loaded, its :attr:`~RatingPanelScorer.state` (a :class:`PanelState`); the work is
done by :func:`~disagree.panel.fitting.fit_panel`, the state's methods,
:mod:`disagree.panel.evaluation` and :mod:`disagree.panel.io`.

A *group* is whose ratings a prediction is for:

``None`` (or ``"population"``)
    The sample: the distributions of the training raters' factor cells, averaged with
    weights equal to their numbers of raters (the meaning of the Bayesian
    ``population="sample"`` soft labels).
``{"politics": "conservative"}`` (some factors; or ``"politics=conservative"``)
    The cells of the training raters who match, weighted by their numbers of raters (the other
    factors at the group's own mix). All factors give one exact cell. A combination no
    training rater has keeps the given levels and takes the other factors at the whole
    sample's mix (logged at INFO).

Typical use as a GRPO reward (texts as ``(prompt, completion)`` pairs, joined with a newline
as the training items' prompt and response were)::

    scorer = RatingPanelScorer().fit(table)
    reward = scorer.score(list(zip(prompts, completions)), {"toxicity": -1.0},
                          group={"politics": "conservative"})
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.errors import PanelError, renamed
from disagree.panel.evaluation import calibrate_panel, evaluate_panel
from disagree.panel.fitting import fit_panel
from disagree.panel.io import load_state, save_state
from disagree.panel.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_INTERACTION_L2,
    DEFAULT_L2,
    DEFAULT_LR,
    PanelOptions,
)
from disagree.panel.state import Group, PanelState

Texts = Sequence[str | Sequence[str]] | str


class RatingPanelScorer:
    """Predict the rating distribution a group of raters would give a text, per dimension.

    Parameters
    ----------
    encoder : {"hashing", "auto", "minilm"}
        Text encoder (see :func:`disagree.panel.encoders.make_encoder`). The default,
        ``"hashing"``, needs nothing beyond numpy, so results do not depend on what happens
        to be installed; ``"auto"`` takes MiniLM when it is installed.
    head : {"ordinal", "multinomial"}
        Cumulative-logit head with ordered cut points (``K - 1`` thresholds and one slope
        vector per dimension), or a softmax over the ``K`` categories (``K`` weight vectors).
    factors : sequence of str, optional
        Rater factors used as inputs (default: every rater attribute of the table).
        Missing values become their own level, ``"(missing)"``.
    text_columns : sequence of str, optional
        Item columns joined with a newline into the text. Default ``("prompt", "response")``
        when the items have both, else ``("text",)``, else ``("response",)``.
    l2 : float
        Ridge penalty on the text weights, added to the mean negative log-likelihood per
        rating as ``l2 * sum(w ** 2)``.
    epochs : int
        Full passes of Adam over the ratings (one step each when they fit in one batch).
    lr : float
        Adam learning rate.
    seed : int
        Seeds the order of mini-batches (only used with more than ``batch_size`` ratings);
        a local ``torch.Generator`` is used, so the caller's global RNG is not touched.
        Initial values are deterministic (zeros, and cut points at the training marginals).
    batch_size : int
        Ratings per Adam step.
    interactions : bool or sequence of str
        Which factors' levels get their own text weights, so that a group can rank texts
        differently from the population (a group-by-text term, see
        :mod:`disagree.panel.state`): True (the default) every factor, False none (only the
        factors' intercepts, as before format 3), or the names of some factors.
    interaction_l2 : float
        Ridge penalty on those group-by-text weights, ``interaction_l2 * sum(V ** 2)``.
    guard : bool
        Fit the reward guard (:mod:`disagree.panel.guard`), used by :meth:`score`: a
        completion shorter than the rated texts cannot earn more than a poor rated response.
    attributes : sequence of str, optional
        Deprecated name of ``factors``.

    Attributes
    ----------
    options : PanelOptions
        The options above.
    state : PanelState or None
        The fitted panel (None before :meth:`fit` or :meth:`load`); ``state.metrics`` holds
        the training summary.

    Notes
    -----
    Defaults were chosen on the default survey by held-out log loss (prompts split 80/20,
    seeds 0, 1, 2, hashing encoder, ordinal head, mean over the splits of the mean log loss
    per held-out rating): ``l2`` = 1e-2: 1.5333, 3e-3: 1.5120, 1e-3: 1.4833, 3e-4: 1.4574,
    **1e-4: 1.4483**, 3e-5: 1.4504, 1e-5: 1.4581 (held-out accuracy 0.358 at 1e-4 against
    0.292 for the majority category). The multinomial head is best at the same ``l2``
    (1.4635). Training from the marginals converges early: 100, 150, 200, 300 and 1,000
    epochs at lr 0.05 (or 150 at lr 0.1) all agree within 0.0002, so 200 epochs leave a
    margin. A fit on 80% of the survey takes about 1 s on 2 CPU cores.

    The group-by-text weights live in the span of the texts' 64 leading singular directions
    (:data:`~disagree.panel.fitting.INTERACTION_RANK`; 16 to 240 gave the same held-out log
    loss within 0.003). ``interaction_l2`` was chosen the same way (mean over three prompt
    splits; intercept only: 1.4725): 1e-2: 1.4718, 3e-3: 1.4705, **1e-3: 1.4686**, 3e-4:
    1.4687, 1e-4: 1.4785; on a survey whose group deviations follow the wording (toxicity x
    gender, sd 1.5) 1e-3 is best as well (see ``benchmarks/scorer_eval.py --groups``). With
    them a fit takes about 1.5 CPU s instead of 1.0 (one thread).
    """

    def __init__(self, *, encoder: str = "hashing", head: str = "ordinal",
                 factors: Sequence[str] | None = None,
                 text_columns: Sequence[str] | None = None, l2: float = DEFAULT_L2,
                 epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR, seed: int = 0,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 interactions: bool | Sequence[str] = True,
                 interaction_l2: float = DEFAULT_INTERACTION_L2, guard: bool = True,
                 attributes: Sequence[str] | None = None) -> None:
        factors = renamed(factors, attributes, "attributes", "factors")  # type: ignore[assignment]
        if isinstance(factors, str) or isinstance(text_columns, str):
            raise PanelError("factors and text_columns must be sequences of names, not a "
                             "single string")
        self.options = PanelOptions(
            encoder=encoder, head=head, factors=None if factors is None else tuple(factors),
            text_columns=None if text_columns is None else tuple(text_columns), l2=l2,
            epochs=epochs, lr=lr, seed=seed, batch_size=batch_size,
            interactions=interactions, interaction_l2=interaction_l2, guard=guard)
        self.state: PanelState | None = None

    @classmethod
    def from_state(cls, state: PanelState) -> RatingPanelScorer:
        """Wrap a fitted :class:`PanelState` (its options become the scorer's)."""
        scorer = cls(**state.options.to_dict())
        scorer.state = state
        return scorer

    def fit(self, table: RatingTable, items: Iterable[str] | None = None) -> RatingPanelScorer:
        """Train on the ratings of ``items`` (default: every item of the table).

        Parameters
        ----------
        table, items
            As in :func:`~disagree.panel.fitting.fit_panel`.

        Returns
        -------
        RatingPanelScorer
            ``self``, fitted (:attr:`state` set; ``state.metrics`` holds the training
            summary).

        Raises
        ------
        PanelError
            For an unknown factor, text column or item id, or no ratings to train on.
        """
        self.state = fit_panel(table, items, self.options)
        return self

    def fitted(self) -> PanelState:
        """Return :attr:`state`, raising :class:`PanelError` when the scorer is not fitted."""
        if self.state is None:
            raise PanelError("RatingPanelScorer is not fitted: call fit(table) or "
                             "RatingPanelScorer.load(path)")
        return self.state

    # --- prediction ----------------------------------------------------------------------

    def predict_proba(self, texts: Texts, dimension: str, group: Group = None, *,
                      unit: Group = None) -> np.ndarray:
        """Predicted distribution over the rating categories of ``dimension``.

        Parameters
        ----------
        texts : sequence of str, or of sequences of str
            One text per row; a text given as a sequence (e.g. ``(prompt, response)``) is
            joined with a newline, as the training item columns were. A lone string is one
            text.
        dimension : str
            A dimension the scorer was trained on.
        group : dict or str, optional
            None (or ``"population"``): the training sample's mix of raters; a dict of
            factors to levels, or its string form ``"politics=conservative"``: that group
            (see the module docstring).
        unit : dict or str, optional
            Deprecated name of ``group``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, K)``; each row is non-negative and sums to 1.

        Raises
        ------
        PanelError
            For an unknown dimension, factor or level, or an unfitted scorer.
        """
        group = renamed(group, unit, "unit", "group")
        state = self.fitted()
        state.check_dimension(dimension)
        state.group_cells(group)  # check the group before encoding
        return state.predict(state.features(texts), dimension, group)

    def expected_rating(self, texts: Texts, dimension: str, group: Group = None, *,
                        unit: Group = None) -> np.ndarray:
        """Return the expected rating ``sum_k k p_k`` of each text, shape ``(n,)``.

        Parameters and errors are those of :meth:`predict_proba`.
        """
        probs = self.predict_proba(texts, dimension, renamed(group, unit, "unit", "group"))
        return probs @ np.arange(1, probs.shape[1] + 1)

    def score(self, texts: Texts, weights: Mapping[str, float], group: Group = None, *,
              unit: Group = None, guard: bool = True) -> np.ndarray:
        """Weighted sum over dimensions of the group's expected ratings, e.g. a GRPO reward.

        Parameters
        ----------
        texts : sequence of str, or of sequences of str
            As in :meth:`predict_proba` (encoded once for all dimensions). Give a GRPO
            completion as ``(prompt, completion)``: the guard then measures the completion
            against the rated responses (a plain string is measured whole, against the
            rated prompt and response together).
        weights : dict of str to float
            Dimension to weight, e.g. ``{"toxicity": -1.0}`` for minus the expected toxicity.
        group : dict or str, optional
            As in :meth:`predict_proba`.
        unit : dict or str, optional
            Deprecated name of ``group``.
        guard : bool
            Apply the reward guard (:mod:`disagree.panel.guard`): a text shorter than the
            shortest quarter of the rated ones is pulled towards the reward a poor rated
            text earns (the 10th percentile over the training texts, for these weights and
            this group), and one shorter than every rated text gets at most that. It never
            raises a reward. Scorers fitted with ``guard=False`` or saved before format 3
            have none (then this does nothing).

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``, float64.

        Raises
        ------
        PanelError
            For empty weights, an unknown dimension, factor or level.
        """
        group = renamed(group, unit, "unit", "group")
        state = self.fitted()
        if not weights:
            raise PanelError("score needs at least one dimension weight, e.g. "
                             f"{{{state.dimensions[0]!r}: -1.0}}")
        for d in weights:
            state.check_dimension(d)
        state.group_cells(group)
        features = state.features(texts)
        total = np.zeros(len(features))
        for d, wt in weights.items():
            total += float(wt) * state.expected(features, d, group)
        if guard and state.guard is not None:
            total = state.guard.apply(state, texts, total, weights, group)
        return total

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, table: RatingTable, items: Iterable[str]) -> dict[str, Any]:
        """Held-out metrics on the ratings of ``items``, per dimension and overall.

        See :func:`disagree.panel.evaluation.evaluate_panel`, called with :attr:`state`.
        """
        return evaluate_panel(self.fitted(), table, items)

    def calibration(self, soft_labels_frame: pd.DataFrame,
                    table: RatingTable | None = None) -> pd.DataFrame:
        """Compare the scorer with Bayesian soft labels of the same groups on the same items.

        See :func:`disagree.panel.evaluation.calibrate_panel`, called with :attr:`state`.
        """
        return calibrate_panel(self.fitted(), soft_labels_frame, table)

    # --- persistence ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the scorer into the directory ``path`` (``scorer.json`` and ``arrays.npz``).

        Each file is written atomically; ``scorer.json`` (written last) records the SHA-256
        of ``arrays.npz``, so :meth:`load` detects a mismatched pair. Returns ``path`` as a
        :class:`~pathlib.Path`. See :func:`disagree.panel.io.save_state`.
        """
        return save_state(self.fitted(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RatingPanelScorer:
        """Read a scorer written by :meth:`save` (the directory, or its ``scorer.json``).

        The scorer is fitted and predicts exactly as the saved one did; a missing, damaged
        or inconsistent file raises :class:`~disagree.errors.PanelError` naming it.
        """
        return cls.from_state(load_state(path))

    def __repr__(self) -> str:
        o = self.options
        fitted = "not fitted" if self.state is None else \
            f"fitted on {len(self.state.dimensions)} dimension(s)"
        return (f"RatingPanelScorer(encoder={o.encoder!r}, head={o.head!r}, "
                f"l2={o.l2:g}, epochs={o.epochs}, interactions={o.interactions!r}, "
                f"guard={o.guard}, {fitted})")


__all__ = ["RatingPanelScorer"]
