"""The fitted state of a rating panel (:class:`PanelState`) and the predictions it makes.

Per dimension ``d`` the head is::

    eta = x . w_d + z . a_d + sum_f x . V_d[:, level_f]
    ordinal:      P(Y <= k) = sigmoid(c_dk - eta),   c_d1 < ... < c_d,K-1
    multinomial:  P(Y = k) = softmax_k(x . W_dk + z . A_dk + sum_f x . V_d[:, level_f, k] + b_dk)

with ``x`` the encoded text (the encoder's columns that were non-zero in training), ``z``
the dummy-coded rater factors (:func:`disagree.ordinal.design_matrix`, each factor's reference
level dropped) and ``V_d`` the group-by-text weights: one text-weight vector per level of each
*interaction factor* (every level, the reference included, so that the ridge shrinks each
level towards the shared ``w_d`` rather than towards the reference level), so that groups can
rank texts differently. Without interaction factors (``interaction_factors == ()``, the
scorers saved before format 3) the last term is absent. A *group* is a dict of factors to
levels, its string form (``politics=conservative``), or None for the whole training sample;
its distribution is the average over the training raters' factor cells that match it,
weighted by their numbers of raters.

The factor rows that :meth:`PanelState.design` returns are the dummy columns followed by the
one-hot columns of the interaction factors' levels (``n_factor_columns`` splits them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from disagree.data.groups import format_group, parse_group
from disagree.errors import DataError, PanelError
from disagree.ordinal import cdf_to_probs, design_matrix
from disagree.panel.data import join_texts
from disagree.panel.encoders import TextEncoder
from disagree.panel.options import PanelOptions

log = logging.getLogger(__name__)

Group = Mapping[str, Any] | str | None


@dataclass(frozen=True, eq=False)
class PanelState:
    """Everything a fitted rating panel needs to predict; immutable.

    Attributes
    ----------
    head : {"ordinal", "multinomial"}
        The head's kind.
    factors : tuple of str
        Rater factors used as inputs, in design order.
    levels : dict of str to tuple of str
        Levels of each factor among the training raters, reference first (the ordering of
        :meth:`disagree.data.RatingTable.factor_levels`).
    cells : DataFrame
        The training raters' factor cells, one column per factor (str), sorted.
    cell_counts : numpy.ndarray
        Number of training raters in each cell (float64).
    params : dict of str to dict of str to numpy.ndarray
        Per dimension: ``w`` (text weights), ``a`` (factor coefficients), ``v`` (group-by-text
        weights, with interaction factors only) and ``c`` (the ``K - 1`` cut points,
        ordinal) or ``b`` (category intercepts, multinomial).
    encoder : TextEncoder
        The fitted text encoder (its ``state()`` is what is saved).
    active : numpy.ndarray
        The encoder's columns that are non-zero in some training text (the columns of ``w``).
    dimensions : tuple of str
        Dimensions the panel was trained on.
    scales : dict of str to int
        Number of rating categories per dimension.
    text_columns : tuple of str
        Item columns joined with a newline into the text.
    majority : dict of str to int
        Most frequent training rating per dimension (the chance baseline of evaluation).
    options : PanelOptions
        The options it was fitted with.
    data_hash : str, optional
        :attr:`RatingTable.data_hash` of the training table.
    metrics : dict
        Training summary (see :func:`disagree.panel.fitting.fit_panel`).
    interaction_factors : tuple of str
        Factors whose levels have their own text weights (``V`` in ``params[d]["v"]``, shape
        ``(len(active), L)`` or ``(len(active), L, K)`` with ``L`` the number of their levels);
        empty for an intercept-only panel.
    guard : SupportGuard, optional
        What :meth:`~disagree.panel.scorer.RatingPanelScorer.score` needs to guard rewards
        against completions shorter than the rated texts (see :mod:`disagree.panel.guard`);
        None when fitted with ``guard=False`` or saved before format 3.
    """

    head: str
    factors: tuple[str, ...]
    levels: Mapping[str, tuple[str, ...]]
    cells: pd.DataFrame
    cell_counts: np.ndarray
    params: Mapping[str, Mapping[str, np.ndarray]]
    encoder: TextEncoder
    active: np.ndarray
    dimensions: tuple[str, ...]
    scales: Mapping[str, int]
    text_columns: tuple[str, ...]
    majority: Mapping[str, int]
    options: PanelOptions = field(default_factory=PanelOptions)
    data_hash: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    interaction_factors: tuple[str, ...] = ()
    guard: Any = None  # a disagree.panel.guard.SupportGuard (which imports this module)
    _groups: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    # --- inputs --------------------------------------------------------------------------

    def design(self, raters: pd.DataFrame) -> np.ndarray:
        """Factor rows of ``raters``: dummy columns, then the interaction levels' one-hot.

        The first :attr:`n_factor_columns` columns dummy-code the factors (references
        dropped); the rest are one column per level of each interaction factor. A level the
        panel has not seen gets zeros (it counts as the reference level in the dummy columns,
        and has no text weights of its own).
        """
        dummies = design_matrix(raters, self.levels)
        if not self.interaction_factors:
            return dummies
        onehot = [(raters[f].astype(str).to_numpy() == lv) for f in self.interaction_factors
                  for lv in self.levels[f]]
        return np.column_stack([dummies, *onehot]).astype(float)

    @property
    def n_factor_columns(self) -> int:
        """Number of dummy columns at the start of :meth:`design`'s rows."""
        return int(sum(len(v) - 1 for v in self.levels.values()))

    def features(self, texts: Sequence[str | Sequence[str]] | str) -> np.ndarray:
        """Encode texts, keeping the active columns; float64 of shape ``(n, len(active))``.

        A text given as a sequence (e.g. ``(prompt, response)``) is joined with a newline.
        """
        joined = join_texts(texts)
        if not joined:
            return np.zeros((0, len(self.active)))
        return self.encoder.encode(joined)[:, self.active].astype(np.float64)

    def check_dimension(self, dimension: str) -> None:
        """Raise :class:`PanelError` unless the panel was trained on ``dimension``."""
        if dimension not in self.dimensions:
            raise PanelError(f"unknown dimension {dimension!r}; the scorer's dimensions are: "
                             f"{', '.join(self.dimensions)}")

    def check_group(self, group: Group) -> dict[str, str]:
        """Return ``group`` as a dict of factor to level (empty: the whole sample), checked.

        Raises
        ------
        PanelError
            For an unknown factor or level, or something that is not a group.
        """
        if group is not None and not isinstance(group, Mapping | str):
            raise PanelError(f"group={group!r}: expected None, a dict of factors "
                             f"({', '.join(self.factors)}) to levels, or its string form "
                             "such as politics=conservative")
        try:
            parsed = parse_group(group)
        except DataError as err:
            raise PanelError(str(err)) from None
        for name, value in parsed.items():
            if name not in self.factors:
                raise PanelError(f"unknown factor {name!r} in group; the scorer's factors "
                                 f"are: {', '.join(self.factors)}")
            if value not in self.levels[name]:
                raise PanelError(f"unknown level {value!r} of {name!r} in group; levels "
                                 f"are: {', '.join(sorted(self.levels[name]))}")
        return parsed

    def group_cells(self, group: Group = None) -> tuple[np.ndarray, np.ndarray]:
        """Design rows and normalised weights of the cells that make up ``group``.

        The training cells that match the group, weighted by their numbers of raters (all
        cells for the whole sample). A combination no training rater has keeps the given
        levels and takes the other factors at the whole sample's mix (logged at INFO).
        """
        key = tuple(sorted(self.check_group(group).items()))
        if key not in self._groups:
            cells, weights = self.cells, self.cell_counts
            if key:
                match = np.logical_and.reduce([cells[f].to_numpy() == v for f, v in key])
                if match.any():
                    cells, weights = cells[match], weights[match]
                else:
                    log.info("no training rater has %s; holding it fixed with the other "
                             "factors at the whole sample's mix", format_group(dict(key)))
                    cells = cells.assign(**dict(key))
            self._groups[key] = (self.design(cells), weights / weights.sum())
        return self._groups[key]

    # --- probabilities -------------------------------------------------------------------

    def probs(self, features: np.ndarray, dimension: str, design: np.ndarray,
              index: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Category probabilities of texts for raters with given factor rows, ``(n, K)``.

        Parameters
        ----------
        features : numpy.ndarray
            Encoded texts, as from :meth:`features`.
        dimension : str
            A dimension of the panel.
        design : numpy.ndarray
            Factor rows, as from :meth:`design`.
        index : (array, array), optional
            Row ``i`` of the result pairs ``features[index[0][i]]`` with
            ``design[index[1][i]]``. Without it, row ``i`` of ``features`` pairs with row
            ``i`` of ``design`` (either may have one row, broadcast).

        Returns
        -------
        numpy.ndarray
            Each row non-negative, summing to 1.
        """
        self.check_dimension(dimension)
        main, inter = self.terms(features, dimension)
        attr = design[:, :self.n_factor_columns] @ self.params[dimension]["a"]
        one_hot = design[:, self.n_factor_columns:]
        if index is not None:
            main, attr, one_hot = main[index[0]], attr[index[1]], one_hot[index[1]]
            inter = None if inter is None else inter[index[0]]
        eta = main + attr
        if inter is not None:  # (n, L[, K]) times (n, L): summed over the levels
            eta = eta + (inter * (one_hot if inter.ndim == 2 else one_hot[:, :, None])).sum(1)
        return self._category_probs(eta, dimension)

    def mixture(self, features: np.ndarray, dimension: str, design: np.ndarray,
                weights: np.ndarray) -> np.ndarray:
        """Category probabilities of texts averaged over cells, ``(n, K)``.

        Row ``i`` is ``sum_c weights[c] * P(Y | features[i], design[c])``, renormalised.
        """
        self.check_dimension(dimension)
        return self.mix_terms(*self.terms(features, dimension), dimension, design, weights)

    def terms(self, features: np.ndarray, dimension: str
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the texts' part of the linear predictor: ``x . w`` and ``x . V`` (or None).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray or None)
            Shapes ``(n,)`` and ``(n, L)`` (ordinal) or ``(n, K)`` and ``(n, L, K)``
            (multinomial); the second is None without interaction factors.
        """
        p = self.params[dimension]
        if "v" not in p:
            return features @ p["w"], None
        v = p["v"]
        return features @ p["w"], (features @ v.reshape(len(v), -1)).reshape(
            len(features), *v.shape[1:])

    def mix_terms(self, main: np.ndarray, inter: np.ndarray | None, dimension: str,
                  design: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Category probabilities from :meth:`terms`, averaged over cells, ``(n, K)``."""
        attr = design[:, :self.n_factor_columns] @ self.params[dimension]["a"]  # (C[, K])
        eta = main[:, None] + attr[None]  # (n, C[, K])
        if inter is not None:
            eta = eta + np.einsum("nl...,cl->nc...", inter, design[:, self.n_factor_columns:])
        probs = self._category_probs(eta, dimension)  # (n, C, K)
        out = np.einsum("nck,c->nk", probs, weights)
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray, dimension: str, group: Group = None) -> np.ndarray:
        """Distribution over the categories of ``dimension`` for ``group``, ``(n, K)``."""
        return self.mixture(features, dimension, *self.group_cells(group))

    def expected(self, features: np.ndarray, dimension: str, group: Group = None) -> np.ndarray:
        """Return the expected rating ``sum_k k p_k`` of each text for ``group``, ``(n,)``."""
        probs = self.predict(features, dimension, group)
        return probs @ np.arange(1, probs.shape[1] + 1)

    def _category_probs(self, eta: np.ndarray, dimension: str) -> np.ndarray:
        """Category probabilities (..., K) from linear predictors (...) or logits (..., K)."""
        p = self.params[dimension]
        if self.head == "multinomial":
            return softmax(eta + p["b"], axis=-1)
        return cdf_to_probs(expit(p["c"] - eta[..., None]))


__all__ = ["Group", "PanelState"]
