"""RatingPanelScorer: a unit's rating distribution for a text (encoder + head fitted in torch).

The scorer is a text encoder (:mod:`disagree.train.encoders`) plus a regression head, trained
on the individual ratings with the rater attributes as inputs. Per dimension ``d``::

    eta = x . w_d + z . a_d
    ordinal (default):  P(Y <= k) = sigmoid(c_dk - eta),   c_d1 < ... < c_d,K-1
    multinomial:        P(Y = k) = softmax_k(x . W_dk + z . A_dk + b_dk)

with ``x`` the encoded text of the item (prompt and response joined by a newline, by default)
and ``z`` the one-hot rater attributes (each attribute's most frequent level among the
training raters is the reference and has no column). There is no rater random effect: the
head is fitted to the individual ratings, so its probabilities are those of a rater drawn at
random from the cell (the rater effect averaged out), as in the Bayesian group and population
soft labels of :mod:`disagree.labels`.

A *unit* is what the prediction is for:

``None`` or ``"population"``
    The sample: the distributions of the training raters' attribute cells, averaged with
    weights equal to their numbers of raters (the meaning of the Bayesian ``population="sample"``
    soft labels).
``{"politics": "conservative"}`` (some attributes)
    The cells of the training raters who match, weighted by their numbers of raters (the other
    attributes at the group's own mix). All attributes give one exact cell. A combination no
    training rater has keeps the given attributes and takes the other attributes at the whole
    sample's mix (logged at INFO).

Typical use as a GRPO reward (texts as ``(prompt, completion)`` pairs, joined with a newline
as the training items' prompt and response were)::

    scorer = RatingPanelScorer().fit(table)
    reward = scorer.score(list(zip(prompts, completions)), {"toxicity": -1.0},
                          unit={"politics": "conservative"})
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from disagree.data.ratings import RatingTable
from disagree.errors import TrainError
from disagree.train._scorer_data import (
    check_attributes,
    item_texts,
    join_texts,
    rater_attributes,
    resolve_text_columns,
    select_items,
)
from disagree.train._scorer_io import load_scorer, save_scorer
from disagree.train._scorer_train import train_head
from disagree.train.encoders import ENCODERS, make_encoder

log = logging.getLogger(__name__)

HEADS = ("ordinal", "multinomial")
#: Defaults chosen by held-out evaluation on the default survey (see ``RatingPanelScorer``).
DEFAULT_L2 = 1e-4
DEFAULT_EPOCHS = 200
DEFAULT_LR = 0.05


class RatingPanelScorer:
    """Predict the rating distribution a unit of raters would give a text, per dimension.

    Parameters
    ----------
    encoder : {"hashing", "auto", "minilm"}
        Text encoder (see :func:`disagree.train.encoders.make_encoder`). The default,
        ``"hashing"``, needs nothing beyond numpy, so results do not depend on what happens
        to be installed; ``"auto"`` takes MiniLM when it is installed.
    head : {"ordinal", "multinomial"}
        Cumulative-logit head with ordered cut points (``K - 1`` thresholds and one slope
        vector per dimension), or a softmax over the ``K`` categories (``K`` weight vectors).
    attributes : sequence of str, optional
        Rater attributes used as inputs (default: every rater attribute of the table).
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

    Notes
    -----
    Defaults were chosen on the default survey by held-out log loss (prompts split 80/20
    with :func:`~disagree.train.panel_eval.split_items`, seeds 0, 1, 2, hashing encoder,
    ordinal head, mean over the splits of the mean log loss per held-out rating): ``l2`` =
    1e-2: 1.5333, 3e-3: 1.5120, 1e-3: 1.4833, 3e-4: 1.4574, **1e-4: 1.4483**, 3e-5: 1.4504,
    1e-5: 1.4581 (held-out accuracy 0.358 at 1e-4 against 0.292 for the majority category).
    The multinomial head is best at the same ``l2`` (1.4635). Training from the marginals
    converges early: 100, 150, 200, 300 and 1,000 epochs at lr 0.05 (or 150 at lr 0.1) all
    agree within 0.0002, so 200 epochs leave a margin. A fit on 80% of the survey takes about
    1 s on 2 CPU cores.
    """

    def __init__(self, *, encoder: str = "hashing", head: str = "ordinal",
                 attributes: Sequence[str] | None = None,
                 text_columns: Sequence[str] | None = None, l2: float = DEFAULT_L2,
                 epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR, seed: int = 0,
                 batch_size: int = 65536) -> None:
        if encoder not in ENCODERS:
            raise TrainError(f"unknown encoder {encoder!r}; valid encoders are: "
                             f"{', '.join(ENCODERS)}")
        if head not in HEADS:
            raise TrainError(f"unknown head {head!r}; valid heads are: {', '.join(HEADS)}")
        if isinstance(attributes, str) or isinstance(text_columns, str):
            raise TrainError("attributes and text_columns must be sequences of names, "
                             "not a single string")
        if not (l2 >= 0 and math.isfinite(l2)):
            raise TrainError(f"l2={l2!r}: expected a finite number >= 0")
        if int(epochs) < 1 or int(batch_size) < 1 or not lr > 0:
            raise TrainError(f"epochs={epochs!r}, batch_size={batch_size!r} and lr={lr!r} must "
                             "be positive")
        self.encoder = encoder
        self.head = head
        self.attributes = None if attributes is None else list(attributes)
        self.text_columns = None if text_columns is None else tuple(text_columns)
        self.l2 = float(l2)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self._fitted = False
        self._unit_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # --- fitting -------------------------------------------------------------------------

    def fit(self, table: RatingTable, items: Iterable[str] | None = None) -> RatingPanelScorer:
        """Train on the ratings of ``items`` (default: every item of the table).

        Parameters
        ----------
        table : RatingTable
            Ratings, raters (with the attributes) and items (with the text columns).
        items : iterable of str, optional
            Item ids to train on, e.g. the first value of
            :func:`~disagree.train.panel_eval.split_items`.

        Returns
        -------
        RatingPanelScorer
            ``self``, fitted: ``metrics_`` holds the training summary.

        Raises
        ------
        TrainError
            For an unknown attribute, text column or item id, or no ratings to train on.
        """
        start = time.perf_counter()
        attributes = check_attributes(self.attributes, table)
        text_columns = resolve_text_columns(self.text_columns, table)
        ratings = select_items(table, items)
        dims = [d for d in table.dimensions if (ratings["dimension"] == d).any()]
        raters = rater_attributes(table, ratings["rater_id"].unique(), attributes)
        levels = {}
        for a in attributes:
            counts = raters[a].value_counts()
            ordered = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
            levels[a] = [ordered[0]] + sorted(ordered[1:])
        cells = raters.groupby(attributes, sort=True).size()

        rated = set(ratings["item_id"])
        item_ids = [i for i in table.items.index if i in rated]
        texts = item_texts(table, item_ids, text_columns)
        encoder = make_encoder(self.encoder).fit(texts)
        features = encoder.encode(texts)
        active = np.flatnonzero(np.any(features != 0, axis=0))

        self.encoder_ = encoder
        self.head_ = self.head
        self.attributes_ = attributes
        self.levels_ = levels
        self.text_columns_ = text_columns
        self.dimensions_ = dims
        self.scales_ = {d: int(table.scales[d]) for d in dims}
        self.cells_ = cells.index.to_frame(index=False)
        self.cell_counts_ = cells.to_numpy().astype(np.float64)
        self.active_ = active
        self.data_hash_ = table.data_hash
        self._unit_cache = {}

        item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
        design = self._design(raters)
        rater_pos = pd.Series(np.arange(len(raters)), index=raters.index)
        rows = {}
        for d in dims:
            sub = ratings[ratings["dimension"] == d]
            rows[d] = (item_pos[sub["item_id"]].to_numpy(),
                       rater_pos[sub["rater_id"]].to_numpy(),
                       sub["rating"].to_numpy().astype(np.int64) - 1)
        self.majority_ = {d: int(np.bincount(rows[d][2], minlength=self.scales_[d]).argmax()) + 1
                          for d in dims}
        self.params_, loss = train_head(self, features[:, active], design, rows)
        self._fitted = True

        from disagree.train.panel_eval import evaluate_rows
        train_eval = evaluate_rows(self, features[:, active], design, rows)
        self.metrics_ = {
            "seconds": round(time.perf_counter() - start, 3), "objective": loss,
            "n_ratings": int(len(ratings)), "n_items": len(item_ids),
            "n_raters": int(len(raters)), "n_cells": int(len(self.cells_)),
            "n_features": int(encoder.n_features), "n_active_features": int(len(active)),
            "train": train_eval,
        }
        log.info("scorer fitted in %.1f s: %d ratings, %d items, %d raters, %d cells; train "
                 "accuracy %.3f (chance %.3f)", self.metrics_["seconds"], len(ratings),
                 len(item_ids), len(raters), len(self.cells_), train_eval["accuracy"],
                 train_eval["chance_accuracy"])
        return self

    def _design(self, raters: pd.DataFrame) -> np.ndarray:
        """One-hot attribute columns (references dropped) of rows of attribute values.

        A level the scorer has not seen gets zeros (it is treated as the reference).
        """
        blocks = []
        for a in self.attributes_:
            values = raters[a].to_numpy()
            blocks.append(np.stack([values == lv for lv in self.levels_[a][1:]], axis=1)
                          if len(self.levels_[a]) > 1 else np.zeros((len(raters), 0)))
        return np.concatenate(blocks, axis=1).astype(np.float64) if blocks else \
            np.zeros((len(raters), 0))

    # --- prediction ----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise TrainError("RatingPanelScorer is not fitted: call fit(table) or "
                             "RatingPanelScorer.load(path)")

    def _check_dimension(self, dimension: str) -> None:
        self._check_fitted()
        if dimension not in self.dimensions_:
            raise TrainError(f"unknown dimension {dimension!r}; the scorer's dimensions are: "
                             f"{', '.join(self.dimensions_)}")

    def _features(self, texts: Sequence[str | Sequence[str]] | str) -> np.ndarray:
        """Encode texts, keeping the columns seen in training (float64)."""
        joined = join_texts(texts)
        if not joined:
            return np.zeros((0, len(self.active_)))
        return self.encoder_.encode(joined)[:, self.active_].astype(np.float64)

    def _unit_cells(self, unit: Mapping[str, Any] | str | None) -> tuple[np.ndarray, np.ndarray]:
        """Design rows and normalised weights of the cells that make up ``unit`` (cached)."""
        self._check_fitted()
        if unit is None or (isinstance(unit, str) and unit == "population"):
            key: tuple = ()
        elif isinstance(unit, Mapping):
            for name, value in unit.items():
                if name not in self.attributes_:
                    raise TrainError(f"unknown rater attribute {name!r} in unit; the scorer's "
                                     f"attributes are: {', '.join(self.attributes_)}")
                if str(value) not in self.levels_[name]:
                    raise TrainError(f"unknown level {str(value)!r} of {name!r} in unit; levels "
                                     f"are: {', '.join(sorted(self.levels_[name]))}")
            key = tuple(sorted((name, str(value)) for name, value in unit.items()))
        else:
            raise TrainError(f"unit={unit!r}: expected None, 'population' or a dict of rater "
                             f"attributes ({', '.join(self.attributes_)}) to levels")
        if key not in self._unit_cache:
            cells, weights = self.cells_, self.cell_counts_
            if key:
                match = np.logical_and.reduce([cells[a].to_numpy() == v for a, v in key])
                if match.any():
                    cells, weights = cells[match], weights[match]
                else:
                    log.info("no training rater has %s; holding it fixed with the other "
                             "attributes at the whole sample's mix", dict(key))
                    cells = cells.assign(**dict(key))
            self._unit_cache[key] = (self._design(cells), weights / weights.sum())
        return self._unit_cache[key]

    def _category_probs(self, eta: np.ndarray, dimension: str) -> np.ndarray:
        """Category probabilities (..., K) from linear predictors (...) or logits (..., K)."""
        p = self.params_[dimension]
        if self.head_ == "multinomial":
            return softmax(eta + p["b"], axis=-1)
        cdf = expit(p["c"] - eta[..., None])
        shape = cdf.shape[:-1] + (1,)
        return np.diff(np.concatenate([np.zeros(shape), cdf, np.ones(shape)], axis=-1), axis=-1)

    def _predict(self, features: np.ndarray, dimension: str,
                 unit: Mapping[str, Any] | str | None) -> np.ndarray:
        design, weights = self._unit_cells(unit)
        p = self.params_[dimension]
        text, attr = features @ p["w"], design @ p["a"]
        probs = self._category_probs(text[:, None] + attr[None], dimension)  # (n, C, K)
        out = np.einsum("nck,c->nk", probs, weights)
        return out / out.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str | Sequence[str]] | str, dimension: str,
                      unit: Mapping[str, Any] | str | None = None) -> np.ndarray:
        """Predicted distribution over the rating categories of ``dimension``.

        Parameters
        ----------
        texts : sequence of str, or of sequences of str
            One text per row; a text given as a sequence (e.g. ``(prompt, response)``) is
            joined with a newline, as the training item columns were. A lone string is one
            text.
        dimension : str
            A dimension the scorer was trained on.
        unit : dict or str, optional
            ``None``/``"population"``: the training sample's mix of raters; a dict of rater
            attributes to levels: that group (see the module docstring).

        Returns
        -------
        numpy.ndarray
            Shape ``(n, K)``; each row is non-negative and sums to 1.

        Raises
        ------
        TrainError
            For an unknown dimension, attribute or level, or an unfitted scorer.
        """
        self._check_dimension(dimension)
        self._unit_cells(unit)  # check the unit before encoding
        return self._predict(self._features(texts), dimension, unit)

    def expected_rating(self, texts: Sequence[str | Sequence[str]] | str, dimension: str,
                        unit: Mapping[str, Any] | str | None = None) -> np.ndarray:
        """Return the expected rating ``sum_k k p_k`` of each text, shape ``(n,)``.

        Parameters and errors are those of :meth:`predict_proba`.
        """
        probs = self.predict_proba(texts, dimension, unit)
        return probs @ np.arange(1, probs.shape[1] + 1)

    def score(self, texts: Sequence[str | Sequence[str]] | str, weights: Mapping[str, float],
              unit: Mapping[str, Any] | str | None = None) -> np.ndarray:
        """Weighted sum over dimensions of the unit's expected ratings, e.g. a GRPO reward.

        Parameters
        ----------
        texts : sequence of str, or of sequences of str
            As in :meth:`predict_proba` (encoded once for all dimensions).
        weights : dict of str to float
            Dimension to weight, e.g. ``{"toxicity": -1.0}`` for minus the expected toxicity.
        unit : dict or str, optional
            As in :meth:`predict_proba`.

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``, float64.

        Raises
        ------
        TrainError
            For empty weights, an unknown dimension, attribute or level.
        """
        self._check_fitted()
        if not weights:
            raise TrainError("score needs at least one dimension weight, e.g. "
                             f"{{{self.dimensions_[0]!r}: -1.0}}")
        for d in weights:
            self._check_dimension(d)
        self._unit_cells(unit)
        features = self._features(texts)
        total = np.zeros(len(features))
        for d, wt in weights.items():
            probs = self._predict(features, d, unit)
            total += float(wt) * (probs @ np.arange(1, probs.shape[1] + 1))
        return total

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, table: RatingTable, items: Iterable[str]) -> dict[str, Any]:
        """Held-out metrics on the ratings of ``items``, per dimension and overall.

        See :func:`disagree.train.panel_eval.evaluate_scorer`, called with this scorer.
        """
        from disagree.train.panel_eval import evaluate_scorer
        return evaluate_scorer(self, table, items)

    def calibration(self, soft_labels_frame: pd.DataFrame,
                    table: RatingTable | None = None) -> pd.DataFrame:
        """Compare the scorer with Bayesian soft labels of the same units on the same items.

        See :func:`disagree.train.panel_eval.calibrate_scorer`, called with this scorer.
        """
        from disagree.train.panel_eval import calibrate_scorer
        return calibrate_scorer(self, soft_labels_frame, table)

    # --- persistence ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the scorer into the directory ``path`` (``scorer.json`` and ``arrays.npz``).

        Each file is written atomically; ``scorer.json`` (written last) records the SHA-256
        of ``arrays.npz``, so :meth:`load` detects a mismatched pair. Returns ``path`` as a
        :class:`~pathlib.Path`.
        """
        return save_scorer(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RatingPanelScorer:
        """Read a scorer written by :meth:`save` (the directory, or its ``scorer.json``).

        The scorer is fitted and predicts exactly as the saved one did; a missing or
        inconsistent file raises :class:`~disagree.errors.TrainError`.
        """
        return load_scorer(cls, path)

    def __repr__(self) -> str:
        state = f"fitted on {len(self.dimensions_)} dimension(s)" if self._fitted \
            else "not fitted"
        return (f"RatingPanelScorer(encoder={self.encoder!r}, head={self.head!r}, "
                f"l2={self.l2:g}, epochs={self.epochs}, {state})")


__all__ = ["RatingPanelScorer"]
