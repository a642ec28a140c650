"""RatingPanelScorer: the rating distribution a population, group or cell would give a text.

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

import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, softmax

from disagree._io import atomic_path, write_json
from disagree.data.ratings import RatingTable
from disagree.errors import TrainError
from disagree.train.encoders import ENCODERS, encoder_from_state, make_encoder

log = logging.getLogger(__name__)

HEADS = ("ordinal", "multinomial")
#: Defaults chosen by held-out evaluation on the default survey (see ``RatingPanelScorer``).
DEFAULT_L2 = 1e-4
DEFAULT_EPOCHS = 200
DEFAULT_LR = 0.05
#: Ridge penalty on the attribute coefficients (keeps a level seen in one category finite).
ATTRIBUTE_L2 = 1e-5
MISSING_LEVEL = "(missing)"
FORMAT_VERSION = 1
META_FILE = "scorer.json"
ARRAYS_FILE = "arrays.npz"
_BIG = 1e4  # stands in for the infinite outer cut points of the ordinal head


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
    with :func:`split_items`, seeds 0, 1, 2, hashing encoder, ordinal head, mean over the
    splits of the mean log loss per held-out rating): ``l2`` = 1e-2: 1.5333, 3e-3: 1.5120,
    1e-3: 1.4833, 3e-4: 1.4574, **1e-4: 1.4483**, 3e-5: 1.4504, 1e-5: 1.4581 (held-out
    accuracy 0.358 at 1e-4 against 0.292 for the majority category). The multinomial head is
    best at the same ``l2`` (1.4635). Training from the marginals converges early: 100, 150,
    200, 300 and 1,000 epochs at lr 0.05 (or 150 at lr 0.1) all agree within 0.0002, so 200
    epochs leave a margin. A fit on 80% of the survey takes about 1 s on 2 CPU cores.
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
            Item ids to train on, e.g. the first value of :func:`split_items`.

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
        attributes = _check_attributes(self.attributes, table)
        text_columns = _resolve_text_columns(self.text_columns, table)
        ratings = _select_items(table, items)
        dims = [d for d in table.dimensions if (ratings["dimension"] == d).any()]
        raters = _rater_attributes(table, ratings["rater_id"].unique(), attributes)
        levels = {}
        for a in attributes:
            counts = raters[a].value_counts()
            ordered = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
            levels[a] = [ordered[0]] + sorted(ordered[1:])
        cells = raters.groupby(attributes, sort=True).size()

        rated = set(ratings["item_id"])
        item_ids = [i for i in table.items.index if i in rated]
        texts = _item_texts(table, item_ids, text_columns)
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
        self.params_, loss = self._train(features[:, active], design, rows)
        self._fitted = True

        train_eval = self._evaluate_rows(features[:, active], design, rows)
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

    def _train(self, features: np.ndarray, design: np.ndarray,
               rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
               ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
        """Fit every dimension jointly with Adam; return numpy parameters and the objective.

        Torch runs on one thread here (restored afterwards): the problem is small, one thread
        is faster than several on a busy machine, and the result does not depend on the
        number of cores.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._adam(features, design, rows)
        finally:
            torch.set_num_threads(threads)

    def _adam(self, features: np.ndarray, design: np.ndarray,
              rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
              ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
        dims = list(rows)
        scales = np.array([self.scales_[d] for d in dims])
        n_dims, k_max = len(dims), int(scales.max())
        f64 = torch.float64
        x = torch.tensor(features, dtype=f64)
        z = torch.tensor(design, dtype=f64)
        item = torch.from_numpy(np.concatenate([rows[d][0] for d in dims]).astype(np.int64))
        rater = torch.from_numpy(np.concatenate([rows[d][1] for d in dims]).astype(np.int64))
        y = torch.from_numpy(np.concatenate([rows[d][2] for d in dims]).astype(np.int64))
        dim = torch.from_numpy(np.repeat(np.arange(n_dims), [len(rows[d][2]) for d in dims]))
        n_total = len(y)
        valid = torch.from_numpy(np.arange(k_max)[None, :] < scales[:, None])  # (D, K)

        shares = [(np.bincount(rows[d][2], minlength=self.scales_[d]) + 0.5)
                  / (len(rows[d][2]) + 0.5 * self.scales_[d]) for d in dims]
        width = (n_dims,) if self.head_ == "ordinal" else (n_dims, k_max)
        w = torch.zeros(x.shape[1], *width, dtype=f64, requires_grad=True)
        a = torch.zeros(z.shape[1], *width, dtype=f64, requires_grad=True)
        if self.head_ == "ordinal":
            c0, gaps = np.zeros((n_dims, 1)), np.zeros((n_dims, max(k_max - 2, 0)))
            for i, share in enumerate(shares):  # start at the training marginals
                cum = np.cumsum(share)[:-1]
                cuts = np.log(cum) - np.log1p(-cum)
                c0[i, 0] = cuts[0]
                gaps[i, :len(cuts) - 1] = np.log(np.expm1(np.maximum(np.diff(cuts), 0.05)))
            extra = [torch.tensor(c0, requires_grad=True), torch.tensor(gaps, requires_grad=True)]
        else:
            b = np.zeros((n_dims, k_max))
            for i, share in enumerate(shares):
                b[i, :len(share)] = np.log(share) - np.log(share).mean()
            extra = [torch.tensor(b, requires_grad=True)]
        opt = torch.optim.Adam([w, a, *extra], lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        n_batches = max(1, math.ceil(n_total / self.batch_size))
        loss_value = float("nan")
        for _ in range(self.epochs):
            order = torch.randperm(n_total, generator=gen) if n_batches > 1 else None
            for bt in range(n_batches):
                pick = slice(None) if order is None else \
                    order[bt * n_total // n_batches:(bt + 1) * n_total // n_batches]
                i, r, yy, dd = item[pick], rater[pick], y[pick], dim[pick]
                text = (x @ w.reshape(x.shape[1], -1)).reshape(x.shape[0], *width)
                attr = (z @ a.reshape(z.shape[1], -1)).reshape(z.shape[0], *width)
                eta = text[i, dd] + attr[r, dd]
                if self.head_ == "ordinal":
                    nll = _ordinal_nll(eta, yy, _padded_cuts(extra[0], extra[1], valid)[dd])
                else:
                    logits = (eta + extra[0][dd]).masked_fill(~valid[dd], -torch.inf)
                    nll = -torch.log_softmax(logits, dim=1).gather(1, yy[:, None])[:, 0]
                loss = nll.sum() * n_batches / n_total + self.l2 * (w ** 2).sum() \
                    + ATTRIBUTE_L2 * (a ** 2).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_value = float(loss.detach())
        out = {}
        for i, d in enumerate(dims):
            k = self.scales_[d]
            arrays = {"w": w[:, i].detach().numpy().copy(), "a": a[:, i].detach().numpy().copy()}
            if self.head_ == "ordinal":
                cuts = _padded_cuts(extra[0], extra[1], valid)[i, 1:k].detach().numpy().copy()
                arrays["c"] = cuts
            else:
                arrays = {"w": arrays["w"][:, :k], "a": arrays["a"][:, :k],
                          "b": extra[0][i, :k].detach().numpy().copy()}
            out[d] = arrays
        return out, loss_value

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
        joined = _join_texts(texts)
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

    def _evaluate_rows(self, features: np.ndarray, design: np.ndarray,
                       rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                       ) -> dict[str, Any]:
        """Accuracy, chance accuracy, log loss and MAE of rows (item, rater, 0-based rating)."""
        per_dim, sums = {}, np.zeros(5)
        for d, (item, rater, y) in rows.items():
            p = self.params_[d]
            probs = self._category_probs((features @ p["w"])[item] + (design @ p["a"])[rater], d)
            k = np.arange(1, probs.shape[1] + 1)
            ll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))
            stats = np.array([len(y), np.sum(probs.argmax(axis=1) == y),
                              np.sum(y + 1 == self.majority_[d]), ll.sum(),
                              np.abs(probs @ k - (y + 1)).sum()])
            sums += stats
            per_dim[d] = _metric_dict(stats)
        return {**_metric_dict(sums), "dimensions": per_dim}

    def evaluate(self, table: RatingTable, items: Iterable[str]) -> dict[str, Any]:
        """Held-out metrics on the ratings of ``items``, per dimension and overall.

        Each rating is predicted for the rater's own attribute cell (levels the scorer never
        saw count as the reference level).

        Parameters
        ----------
        table : RatingTable
            Ratings, raters and items (the texts).
        items : iterable of str
            Item ids to evaluate on, e.g. the second value of :func:`split_items`.

        Returns
        -------
        dict
            ``n_ratings``, ``accuracy`` (modal predicted category equals the rating),
            ``chance_accuracy`` (always predicting the dimension's most frequent training
            category), ``log_loss`` (mean negative log-probability of the rating) and
            ``mean_abs_error`` (mean ``|E[Y] - rating|``), pooled over the dimensions; and
            ``dimensions``: the same per dimension. Ratings on dimensions the scorer does not
            know are ignored.

        Raises
        ------
        TrainError
            For unknown items, a table without the scorer's attributes or text columns, or no
            rating on the scorer's dimensions.
        """
        self._check_fitted()
        ratings = _select_items(table, items)
        ratings = ratings[ratings["dimension"].isin(self.dimensions_)]
        if ratings.empty:
            raise TrainError("no ratings of the given items on the scorer's dimensions "
                             f"({', '.join(self.dimensions_)})")
        _check_attributes(self.attributes_, table)
        raters = _rater_attributes(table, ratings["rater_id"].unique(), self.attributes_)
        item_ids = list(pd.unique(ratings["item_id"]))
        features = self._features(_item_texts(table, item_ids, self.text_columns_))
        item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
        rater_pos = pd.Series(np.arange(len(raters)), index=raters.index)
        rows = {}
        for d in self.dimensions_:
            sub = ratings[ratings["dimension"] == d]
            if len(sub):
                rows[d] = (item_pos[sub["item_id"]].to_numpy(),
                           rater_pos[sub["rater_id"]].to_numpy(),
                           sub["rating"].to_numpy().astype(np.int64) - 1)
        return self._evaluate_rows(features, self._design(raters), rows)

    def calibration(self, soft_labels_frame: pd.DataFrame,
                    table: RatingTable | None = None) -> pd.DataFrame:
        """Compare the scorer with Bayesian soft labels of the same units on the same items.

        Parameters
        ----------
        soft_labels_frame : DataFrame
            From :func:`disagree.labels.soft_labels` at ``level="population"`` (rows with
            ``population == "sample"``, compared with ``unit=None``) or ``level="group"``
            (compared with the unit ``{column: value}`` of its group columns).
        table : RatingTable, optional
            Source of the items' texts. Without it the frame itself must carry the text
            columns.

        Returns
        -------
        DataFrame
            One row per dimension and unit, in order of first appearance:

            ``dimension`` and the frame's unit columns (``population`` or the group columns)
                The unit.
            ``unit``
                The unit as text (``"population"`` or ``"politics=conservative"``).
            ``n_items``
                Number of items compared.
            ``tv_distance``
                Mean over items of the total-variation distance ``0.5 * sum_k |p_k - q_k|``
                between the scorer's ``p`` and the soft label's ``q`` (0: identical, 1:
                disjoint).
            ``mean_abs_diff``
                Mean over items of ``|E_scorer[Y] - mean|`` (rating points).
            ``corr``
                Pearson correlation across items of the two expected ratings (NaN with fewer
                than 2 items or a constant side).
            ``scorer_mean``, ``label_mean``
                Average expected rating over the items, scorer and soft label.

        Raises
        ------
        TrainError
            For rater-level or target-population labels, unknown dimensions, attributes or
            levels, a scale that differs from the scorer's, or items without texts.
        """
        self._check_fitted()
        frame = soft_labels_frame
        missing = [c for c in ("item_id", "dimension", "mean") if c not in frame.columns]
        if missing:
            raise TrainError(f"not a soft-label frame: missing column(s) {', '.join(missing)}")
        prob_cols = [c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()]
        text_cols = [c for c in self.text_columns_ if c in frame.columns]
        unit_cols = [c for c in frame.columns if c not in
                     {"item_id", "dimension", "mean", "sd", *prob_cols, *text_cols}]
        if "rater_id" in unit_cols:
            raise TrainError("rater-level soft labels cannot be compared: the scorer has no "
                             "rater effects; use level='population' or level='group'")
        if "population" in unit_cols:
            other = sorted(set(frame["population"].astype(str)) - {"sample"})
            if other:
                raise TrainError(f"population {other[0]!r} cannot be compared: the scorer "
                                 "predicts the training sample's mix ('sample') only")
        item_ids = list(pd.unique(frame["item_id"].astype(str)))
        if table is not None:
            texts = _item_texts(table, item_ids, self.text_columns_)
        elif len(text_cols) == len(self.text_columns_):
            first = frame.assign(item_id=frame["item_id"].astype(str)) \
                .drop_duplicates("item_id").set_index("item_id")
            texts = _join_columns(first.loc[item_ids], self.text_columns_)
        else:
            raise TrainError("calibration needs the items' texts: pass the table, or a frame "
                             f"with the text column(s) {', '.join(self.text_columns_)}")
        features = self._features(texts)
        item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
        out = []
        for key, grp in frame.groupby(["dimension", *unit_cols], sort=False, dropna=False):
            dim, values = key[0], dict(zip(unit_cols, key[1:], strict=True))
            self._check_dimension(dim)
            k = self.scales_[dim]
            if len(prob_cols) != k:
                raise TrainError(f"dimension {dim!r}: the frame has {len(prob_cols)} "
                                 f"categories (p_1..p_{len(prob_cols)}), the scorer {k}")
            unit = None if "population" in values else {a: str(v) for a, v in values.items()}
            pos = item_pos[grp["item_id"].astype(str)].to_numpy()
            pred = self._predict(features[pos], dim, unit)
            label = grp[[f"p_{j}" for j in range(1, k + 1)]].to_numpy(dtype=np.float64)
            e_pred, e_label = pred @ np.arange(1, k + 1), grp["mean"].to_numpy(dtype=np.float64)
            corr = np.nan
            if len(pos) > 1 and np.std(e_pred) > 0 and np.std(e_label) > 0:
                corr = float(np.corrcoef(e_pred, e_label)[0, 1])
            name = "population" if unit is None else \
                ", ".join(f"{a}={v}" for a, v in unit.items())
            out.append({"dimension": dim, **values, "unit": name, "n_items": len(pos),
                        "tv_distance": float(np.mean(0.5 * np.abs(pred - label).sum(axis=1))),
                        "mean_abs_diff": float(np.mean(np.abs(e_pred - e_label))),
                        "corr": corr, "scorer_mean": float(e_pred.mean()),
                        "label_mean": float(e_label.mean())})
        return pd.DataFrame(out)

    # --- persistence ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the scorer into the directory ``path`` (``scorer.json`` and ``arrays.npz``).

        Each file is written atomically; ``scorer.json`` (written last) records the SHA-256
        of ``arrays.npz``, so :meth:`load` detects a mismatched pair.

        Parameters
        ----------
        path : path
            Directory to create or overwrite the two files in.

        Returns
        -------
        Path
            ``path``.
        """
        self._check_fitted()
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise TrainError(f"cannot save the scorer to {out}: it is a file, expected a "
                             "directory")
        enc_state = self.encoder_.state()
        arrays = {"active": self.active_, "cell_counts": self.cell_counts_}
        meta_encoder = {}
        for key, value in enc_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"encoder.{key}"] = value
            else:
                meta_encoder[key] = value
        for i, d in enumerate(self.dimensions_):
            for name, value in self.params_[d].items():
                arrays[f"{name}.{i}"] = value
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        with atomic_path(out / ARRAYS_FILE) as tmp:
            tmp.write_bytes(payload)
        meta = {
            "format_version": FORMAT_VERSION, "kind": "RatingPanelScorer",
            "encoder": meta_encoder, "head": self.head_, "attributes": self.attributes_,
            "levels": self.levels_, "text_columns": list(self.text_columns_),
            "dimensions": self.dimensions_, "scales": self.scales_,
            "cells": self.cells_.to_numpy().tolist(), "majority": self.majority_,
            "data_hash": self.data_hash_, "metrics": self.metrics_,
            "settings": {"encoder": self.encoder, "l2": self.l2, "epochs": self.epochs,
                         "lr": self.lr, "seed": self.seed, "batch_size": self.batch_size},
            "arrays_sha256": hashlib.sha256(payload).hexdigest(),
        }
        write_json(out / META_FILE, meta)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RatingPanelScorer:
        """Read a scorer written by :meth:`save` (the directory, or its ``scorer.json``).

        Returns
        -------
        RatingPanelScorer
            Fitted; predicts exactly as the saved one did.

        Raises
        ------
        TrainError
            For a missing or inconsistent file.
        """
        folder = Path(path)
        if folder.name == META_FILE:
            folder = folder.parent
        meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
        for p in (meta_path, arrays_path):
            if not p.is_file():
                raise TrainError(f"cannot load a scorer from {folder}: {p.name} is missing")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("kind") != "RatingPanelScorer" or \
                meta.get("format_version") != FORMAT_VERSION:
            raise TrainError(f"{meta_path} is not a RatingPanelScorer file of format "
                             f"{FORMAT_VERSION}")
        payload = arrays_path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta["arrays_sha256"]:
            raise TrainError(f"{arrays_path} does not match {meta_path} (interrupted or mixed "
                             "save); save the scorer again")
        with np.load(io.BytesIO(payload)) as npz:
            arrays = {k: npz[k] for k in npz.files}
        s = meta["settings"]
        scorer = cls(encoder=s["encoder"], head=meta["head"], attributes=meta["attributes"],
                     text_columns=meta["text_columns"], l2=s["l2"], epochs=s["epochs"],
                     lr=s["lr"], seed=s["seed"], batch_size=s["batch_size"])
        enc_state = dict(meta["encoder"])
        enc_state.update({k.split(".", 1)[1]: v for k, v in arrays.items()
                          if k.startswith("encoder.")})
        scorer.encoder_ = encoder_from_state(enc_state)
        scorer.head_ = meta["head"]
        scorer.attributes_ = list(meta["attributes"])
        scorer.levels_ = {a: list(v) for a, v in meta["levels"].items()}
        scorer.text_columns_ = tuple(meta["text_columns"])
        scorer.dimensions_ = list(meta["dimensions"])
        scorer.scales_ = {d: int(k) for d, k in meta["scales"].items()}
        scorer.cells_ = pd.DataFrame(meta["cells"], columns=scorer.attributes_, dtype=object)
        scorer.cell_counts_ = arrays["cell_counts"]
        scorer.active_ = arrays["active"]
        scorer.majority_ = {d: int(v) for d, v in meta["majority"].items()}
        scorer.data_hash_ = meta["data_hash"]
        scorer.metrics_ = meta["metrics"]
        names = ("w", "a", "c") if scorer.head_ == "ordinal" else ("w", "a", "b")
        scorer.params_ = {d: {n: arrays[f"{n}.{i}"] for n in names}
                          for i, d in enumerate(scorer.dimensions_)}
        scorer._fitted = True
        return scorer

    def __repr__(self) -> str:
        state = f"fitted on {len(self.dimensions_)} dimension(s)" if self._fitted \
            else "not fitted"
        return (f"RatingPanelScorer(encoder={self.encoder!r}, head={self.head!r}, "
                f"l2={self.l2:g}, epochs={self.epochs}, {state})")


def split_items(table: RatingTable, test_fraction: float = 0.2, seed: int = 0,
                by: str | None = "prompt_id") -> tuple[list[str], list[str]]:
    """Split the item ids into training and test sets, keeping groups together.

    Parameters
    ----------
    table : RatingTable
        The items to split.
    test_fraction : float
        Share of the groups (prompts) held out, rounded, at least 1 and at most all but one.
    seed : int
        Seed of the random choice of held-out groups.
    by : str or None
        Item column whose groups stay on one side (responses to one prompt must not leak
        across the split). With the default ``"prompt_id"`` and items that have no such
        column, or with ``None``, items are split one by one.

    Returns
    -------
    (list of str, list of str)
        Training and test item ids, each in the table's item order.

    Raises
    ------
    TrainError
        For a fraction outside (0, 1), fewer than two groups, or an unknown ``by`` column.
    """
    if not 0 < test_fraction < 1:
        raise TrainError(f"test_fraction={test_fraction!r}: expected a number in (0, 1)")
    items = table.items
    if by is not None and by not in items.columns:
        if by != "prompt_id":
            raise TrainError(f"unknown item column {by!r} for the split; item columns are: "
                             f"{', '.join(map(str, items.columns)) or '(none)'}")
        by = None
    groups = items.index.to_numpy() if by is None else items[by].astype(str).to_numpy()
    unique = np.array(sorted(pd.unique(groups)))
    if len(unique) < 2:
        raise TrainError(f"cannot split {len(unique)} group(s) of items into train and test")
    n_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 1)
    test_groups = set(np.random.default_rng(seed).permutation(unique)[:n_test])
    is_test = np.array([g in test_groups for g in groups])
    ids = [str(i) for i in items.index]
    return ([i for i, t in zip(ids, is_test, strict=True) if not t],
            [i for i, t in zip(ids, is_test, strict=True) if t])


# --- helpers ---------------------------------------------------------------------------

def _padded_cuts(c0: torch.Tensor, gaps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cut points of each dimension as ``(D, K_max + 1)``: ``-BIG, c_1 .. c_K-1, BIG ...``.

    ``c_1 = c0`` and each next cut adds ``softplus(gap)`` (so they are ordered); columns past
    a dimension's own ``K - 1`` cuts are ``BIG``, standing in for ``+inf``.
    """
    cuts = torch.cat([c0, c0 + torch.cumsum(torch.nn.functional.softplus(gaps), dim=1)], dim=1)
    big = torch.full_like(c0, _BIG)
    inner = torch.where(valid[:, 1:], cuts, big)  # cut k exists when category k + 1 does
    return torch.cat([-big, inner, big], dim=1)


def _ordinal_nll(eta: torch.Tensor, y: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """``-log P(Y = y)`` under the cumulative logit, per row (``cuts`` as from _padded_cuts)."""
    upper = cuts.gather(1, y[:, None] + 1)[:, 0] - eta
    lower = cuts.gather(1, y[:, None])[:, 0] - eta
    # log(sigmoid(u) - sigmoid(l)) = log sigmoid(u) + log sigmoid(-l) + log(1 - exp(l - u))
    logsig = torch.nn.functional.logsigmoid
    return -(logsig(upper) + logsig(-lower) + torch.log(-torch.expm1(lower - upper)))


def _metric_dict(stats: np.ndarray) -> dict[str, Any]:
    """Metrics from summed (n, correct, chance-correct, log loss, abs error)."""
    n = stats[0]
    return {"n_ratings": int(n), "accuracy": float(stats[1] / n),
            "chance_accuracy": float(stats[2] / n), "log_loss": float(stats[3] / n),
            "mean_abs_error": float(stats[4] / n)}


def _check_attributes(attributes: Sequence[str] | None, table: RatingTable) -> list[str]:
    """Return the attributes to use (default all rater attributes), checked against the table."""
    valid = [str(c) for c in table.raters.columns]
    if attributes is None:
        return valid
    for a in attributes:
        if a not in valid:
            raise TrainError(f"unknown rater attribute {a!r}; rater attributes are: "
                             f"{', '.join(valid) or '(none)'}")
    return list(attributes)


def _resolve_text_columns(text_columns: Sequence[str] | None,
                          table: RatingTable) -> tuple[str, ...]:
    """Return the item columns that make the text (default prompt+response, text, response)."""
    cols = [str(c) for c in table.items.columns]
    if text_columns is None:
        for candidate in (("prompt", "response"), ("text",), ("response",)):
            if all(c in cols for c in candidate):
                return candidate
        raise TrainError("cannot find the item texts: the items have none of the columns "
                         "prompt+response, text or response; pass text_columns= (item "
                         f"columns are: {', '.join(cols) or '(none)'})")
    if not text_columns:
        raise TrainError("text_columns is empty; give at least one item column")
    for c in text_columns:
        if c not in cols:
            raise TrainError(f"unknown text column {c!r}; item columns are: "
                             f"{', '.join(cols) or '(none)'}")
    return tuple(text_columns)


def _select_items(table: RatingTable, items: Iterable[str] | None) -> pd.DataFrame:
    """Return the ratings of ``items`` (all when None), checking the ids."""
    ratings = table.ratings
    if items is not None:
        wanted = pd.Index([str(i) for i in items]).unique()
        unknown = wanted.difference(table.items.index.astype(str))
        if len(unknown):
            shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise TrainError(f"unknown item id(s) {shown}; the table has {len(table.items)} "
                             f"items, e.g. {', '.join(map(str, table.items.index[:3]))}")
        ratings = ratings[ratings["item_id"].isin(wanted)]
    if ratings.empty:
        raise TrainError("no ratings for the given items")
    return ratings


def _rater_attributes(table: RatingTable, rater_ids: Sequence[str],
                      attributes: Sequence[str]) -> pd.DataFrame:
    """Attribute values (as str, missing as ``"(missing)"``) of the raters, in table order."""
    raters = table.raters.loc[table.raters.index.isin(rater_ids), list(attributes)]
    return raters.apply(lambda col: col.astype(object).where(col.notna(), MISSING_LEVEL)
                        .astype(str)).astype(object)


def _item_texts(table: RatingTable, item_ids: Sequence[str],
                text_columns: Sequence[str]) -> list[str]:
    """Return the text of each item: its text columns joined with a newline."""
    unknown = [i for i in item_ids if i not in table.items.index]
    if unknown:
        raise TrainError(f"item(s) {', '.join(map(repr, unknown[:5]))} are not in the table")
    missing = [c for c in text_columns if c not in table.items.columns]
    if missing:
        raise TrainError(f"the table's items have no column(s) {', '.join(missing)}; item "
                         f"columns are: {', '.join(map(str, table.items.columns))}")
    return _join_columns(table.items.loc[list(item_ids)], text_columns)


def _join_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str).tolist()
             for c in columns]
    return ["\n".join(row) for row in zip(*parts, strict=True)]


def _join_texts(texts: Sequence[str | Sequence[str]] | str) -> list[str]:
    """Return the texts as a list of str, joining a sequence element (prompt, response)."""
    if isinstance(texts, str):
        return [texts]
    out = []
    for t in texts:
        if isinstance(t, str):
            out.append(t)
        elif isinstance(t, Sequence) and all(isinstance(s, str) for s in t):
            out.append("\n".join(t))
        else:
            raise TrainError(f"each text must be a str or a sequence of str (e.g. (prompt, "
                             f"response)); got {type(t).__name__}: {t!r:.60}")
    return out


__all__ = ["RatingPanelScorer", "split_items"]
