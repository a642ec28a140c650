"""The fitted state of a rating panel (:class:`PanelState`) and the predictions it makes.

Per dimension ``d`` the head is::

    eta = x . w_d + z . a_d
    ordinal:      P(Y <= k) = sigmoid(c_dk - eta),   c_d1 < ... < c_d,K-1
    multinomial:  P(Y = k) = softmax_k(x . W_dk + z . A_dk + b_dk)

with ``x`` the encoded text (the encoder's columns that were non-zero in training) and ``z``
the dummy-coded rater factors (:func:`disagree.ordinal.design_matrix`, each factor's reference
level dropped). A *group* is a dict of factors to levels, its string form
(``politics=conservative``), or None for the whole training sample; its distribution is the
average over the training raters' factor cells that match it, weighted by their numbers of
raters.
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
        Per dimension: ``w`` (text weights), ``a`` (factor coefficients) and ``c`` (the
        ``K - 1`` cut points, ordinal) or ``b`` (category intercepts, multinomial).
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
    _groups: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    # --- inputs --------------------------------------------------------------------------

    def design(self, raters: pd.DataFrame) -> np.ndarray:
        """Dummy-coded factor rows of ``raters`` (one column per factor), references dropped.

        A level the panel has not seen gets zeros (it counts as the reference level).
        """
        return design_matrix(raters, self.levels)

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
        p = self.params[dimension]
        text, attr = features @ p["w"], design @ p["a"]
        if index is not None:
            text, attr = text[index[0]], attr[index[1]]
        return self._category_probs(text + attr, dimension)

    def mixture(self, features: np.ndarray, dimension: str, design: np.ndarray,
                weights: np.ndarray) -> np.ndarray:
        """Category probabilities of texts averaged over cells, ``(n, K)``.

        Row ``i`` is ``sum_c weights[c] * P(Y | features[i], design[c])``, renormalised.
        """
        self.check_dimension(dimension)
        p = self.params[dimension]
        text, attr = features @ p["w"], design @ p["a"]
        probs = self._category_probs(text[:, None] + attr[None], dimension)  # (n, C, K)
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
