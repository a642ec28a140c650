"""Fit a rating panel: encode the item texts, then fit the head with Adam.

Torch is imported only when a fit runs, so that ``import disagree.panel`` needs no torch.

:func:`fit_panel` takes a table, the items to train on and :class:`PanelOptions`, and returns a
:class:`~disagree.panel.state.PanelState`. There is no rater random effect: the head is fitted
to the individual ratings, so its probabilities are those of a rater drawn at random from a
factor cell (the rater effect averaged out), as in the Bayesian group and population soft
labels of :mod:`disagree.labels`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from disagree.data.ratings import RatingTable
from disagree.errors import PanelError
from disagree.panel.data import (
    check_factors,
    factor_levels,
    item_texts,
    join_columns,
    rating_rows,
    resolve_text_columns,
    select_items,
)
from disagree.panel.encoders import make_encoder
from disagree.panel.evaluation import evaluate_rows
from disagree.panel.guard import build_guard
from disagree.panel.options import PanelOptions
from disagree.panel.state import PanelState

log = logging.getLogger(__name__)

#: Ridge penalty on the factor coefficients (keeps a level seen in one category finite).
FACTOR_L2 = 1e-5
BIG = 1e4  # stands in for the infinite outer cut points of the ordinal head
#: The group-by-text weights live in the span of this many leading directions of the texts.
INTERACTION_RANK = 64
#: The directions come from at most this many texts (a seeded sample of them).
MAX_BASIS_ROWS = 5000

Rows = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def fit_panel(table: RatingTable, items: Iterable[str] | None = None,
              options: PanelOptions | None = None) -> PanelState:
    """Fit a rating panel on the ratings of ``items`` (default: every item of the table).

    Parameters
    ----------
    table : RatingTable
        Ratings, raters (with the factors) and items (with the text columns).
    items : iterable of str, optional
        Item ids to train on, e.g. the first value of
        :func:`~disagree.panel.data.split_items`.
    options : PanelOptions, optional
        Encoder, head, factors, text columns and optimiser settings (default
        ``PanelOptions()``).

    Returns
    -------
    PanelState
        The fitted panel; ``metrics`` holds ``seconds``, ``objective`` (the final penalised
        loss), ``n_ratings``, ``n_items``, ``n_raters``, ``n_cells``, ``n_features``,
        ``n_active_features``, ``interaction_factors`` and ``train`` (the metrics of
        :func:`~disagree.panel.evaluation.evaluate_rows` on the training ratings). With
        ``options.guard`` its ``guard`` is fitted on the training texts
        (:func:`~disagree.panel.guard.build_guard`).

    Raises
    ------
    PanelError
        For an unknown factor (also in ``options.interactions``), text column or item id, or
        no ratings to train on.
    """
    options = options or PanelOptions()
    start = time.perf_counter()
    factors = check_factors(options.factors, table)
    text_columns = resolve_text_columns(options.text_columns, table)
    ratings = select_items(table, items)
    dims = [d for d in table.dimensions if (ratings["dimension"] == d).any()]
    data = rating_rows(table, ratings, factors, dims)
    raters = data.raters
    levels = factor_levels(table, raters, factors)
    cells = raters.groupby(factors, sort=True).size()
    inter_factors = interaction_factors(options.interactions, factors)

    texts = item_texts(table, data.item_ids, text_columns)
    encoder = make_encoder(options.encoder).fit(texts)
    features = encoder.encode(texts)
    active = np.flatnonzero(np.any(features != 0, axis=0))
    scales = {d: int(table.scales[d]) for d in dims}
    majority = {d: int(np.bincount(y, minlength=scales[d]).argmax()) + 1
                for d, (_, _, y) in data.rows.items()}

    shell = PanelState(head=options.head, factors=tuple(factors), levels=levels,
                       cells=cells.index.to_frame(index=False), cell_counts=cells.to_numpy()
                       .astype(np.float64), params={}, encoder=encoder, active=active,
                       dimensions=tuple(dims), scales=scales, text_columns=text_columns,
                       majority=majority, options=options, data_hash=table.data_hash,
                       interaction_factors=inter_factors)
    design = shell.design(raters)
    params, loss = train_head(features[:, active], design, data.rows, head=options.head,
                              scales=scales, options=options,
                              n_factor_columns=shell.n_factor_columns)
    state = dataclasses.replace(shell, params=params)
    if options.guard:
        responses = join_columns(table.items.loc[data.item_ids], text_columns[-1:])
        state = dataclasses.replace(state, guard=build_guard(
            state, features[:, active], responses, options.seed))
    train_eval = evaluate_rows(state, features[:, active], design, data.rows)
    metrics = {
        "seconds": round(time.perf_counter() - start, 3), "objective": loss,
        "n_ratings": int(len(ratings)), "n_items": len(data.item_ids),
        "n_raters": int(len(raters)), "n_cells": int(len(state.cells)),
        "n_features": int(encoder.n_features), "n_active_features": int(len(active)),
        "interaction_factors": list(inter_factors),
        "train": train_eval,
    }
    log.info("scorer fitted in %.1f s: %d ratings, %d items, %d raters, %d cells; train "
             "accuracy %.3f (chance %.3f)", metrics["seconds"], len(ratings),
             len(data.item_ids), len(raters), len(state.cells), train_eval["accuracy"],
             train_eval["chance_accuracy"])
    return dataclasses.replace(state, metrics=metrics)


def interaction_factors(interactions: bool | Sequence[str],
                        factors: Sequence[str]) -> tuple[str, ...]:
    """Resolve the ``interactions`` option against the factors in use.

    Parameters
    ----------
    interactions : bool or sequence of str
        True: every factor; False: none; names: those factors.
    factors : sequence of str
        The panel's factors.

    Returns
    -------
    tuple of str
        The interaction factors, in the order of ``factors``.

    Raises
    ------
    PanelError
        For a name that is not one of ``factors``.
    """
    if isinstance(interactions, bool):
        return tuple(factors) if interactions else ()
    unknown = [f for f in interactions if f not in factors]
    if unknown:
        raise PanelError(f"interactions: unknown factor {unknown[0]!r}; the scorer's factors "
                         f"are: {', '.join(factors) or '(none)'}")
    return tuple(f for f in factors if f in interactions)


def train_head(features: np.ndarray, design: np.ndarray, rows: Rows, *, head: str,
               scales: Mapping[str, int], options: PanelOptions,
               n_factor_columns: int | None = None,
               ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Fit every dimension jointly with Adam; return numpy parameters and the objective.

    Parameters
    ----------
    features : numpy.ndarray
        Encoded items (the active columns), one row per item.
    design : numpy.ndarray
        Factor rows of the raters (:meth:`PanelState.design`): dummy columns, then the
        interaction levels' one-hot columns.
    rows : dict of str to (array, array, array)
        Per dimension: the item row, rater row and 0-based rating of each rating.
    head : {"ordinal", "multinomial"}
    scales : dict of str to int
        Categories per dimension.
    options : PanelOptions
        ``l2``, ``interaction_l2``, ``lr``, ``epochs``, ``seed`` and ``batch_size``.
    n_factor_columns : int, optional
        Number of dummy columns at the start of ``design`` (default: all of them, no
        interactions). The other columns get the text weights ``v`` (penalised by
        ``interaction_l2 * sum(v ** 2)``).

    Notes
    -----
    Initial values are deterministic (zeros, and cut points or intercepts at the training
    marginals); ``seed`` only orders the mini-batches, with a local ``torch.Generator``.
    Torch runs on one thread here (restored afterwards): the problem is small, one thread
    is faster than several on a busy machine, and the result does not depend on the
    number of cores.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n_dummy = design.shape[1] if n_factor_columns is None else int(n_factor_columns)
        return _adam(features, design[:, :n_dummy], design[:, n_dummy:], rows, head, scales,
                     options)
    finally:
        torch.set_num_threads(threads)


def _adam(features: np.ndarray, design: np.ndarray, onehot: np.ndarray, rows: Rows, head: str,
          scales_by_dim: Mapping[str, int], options: PanelOptions,
          ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    import torch

    dims = list(rows)
    scales = np.array([scales_by_dim[d] for d in dims])
    n_dims, k_max = len(dims), int(scales.max())
    f64 = torch.float64
    x = torch.tensor(features, dtype=f64)
    z = torch.tensor(design, dtype=f64)
    zi = torch.tensor(onehot, dtype=f64)
    n_levels = zi.shape[1]
    level = torch.from_numpy(_level_columns(onehot))  # (raters, factors) columns of zi
    item = torch.from_numpy(np.concatenate([rows[d][0] for d in dims]).astype(np.int64))
    rater = torch.from_numpy(np.concatenate([rows[d][1] for d in dims]).astype(np.int64))
    y = torch.from_numpy(np.concatenate([rows[d][2] for d in dims]).astype(np.int64))
    dim = torch.from_numpy(np.repeat(np.arange(n_dims), [len(rows[d][2]) for d in dims]))
    n_total = len(y)
    valid = torch.from_numpy(np.arange(k_max)[None, :] < scales[:, None])  # (D, K)

    shares = [(np.bincount(rows[d][2], minlength=scales_by_dim[d]) + 0.5)
              / (len(rows[d][2]) + 0.5 * scales_by_dim[d]) for d in dims]
    width = (n_dims,) if head == "ordinal" else (n_dims, k_max)
    w = torch.zeros(x.shape[1], *width, dtype=f64, requires_grad=True)
    a = torch.zeros(z.shape[1], *width, dtype=f64, requires_grad=True)
    basis = text_basis(features, INTERACTION_RANK if n_levels else 0, options.seed)
    xb = torch.tensor(features @ basis, dtype=f64)  # the texts in the interaction basis
    v = torch.zeros(basis.shape[1], n_dims, n_levels, *width[1:], dtype=f64,
                    requires_grad=True)
    if head == "ordinal":
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
    opt = torch.optim.Adam([w, a, *([v] if n_levels else []), *extra], lr=options.lr)
    gen = torch.Generator().manual_seed(options.seed)
    n_batches = max(1, math.ceil(n_total / options.batch_size))
    loss_value = float("nan")
    for _ in range(options.epochs):
        order = torch.randperm(n_total, generator=gen) if n_batches > 1 else None
        for bt in range(n_batches):
            pick: Any = slice(None) if order is None else \
                order[bt * n_total // n_batches:(bt + 1) * n_total // n_batches]
            i, r, yy, dd = item[pick], rater[pick], y[pick], dim[pick]
            text = (x @ w.reshape(x.shape[1], -1)).reshape(x.shape[0], *width)
            attr = (z @ a.reshape(z.shape[1], -1)).reshape(z.shape[0], *width)
            eta = text[i, dd] + attr[r, dd]
            if n_levels:  # the text weights of the rater's levels: sum_f x_i . V_d[level_f]
                inter = (xb @ v.reshape(len(v), -1)).reshape(-1, *width[1:])  # (n D L[, K])
                flat = ((i * n_dims + dd)[:, None] * n_levels + level[r])  # (n, factors)
                eta = eta + inter[flat].sum(1)
            if head == "ordinal":
                nll = _ordinal_nll(eta, yy, _padded_cuts(extra[0], extra[1], valid)[dd])
            else:
                logits = (eta + extra[0][dd]).masked_fill(~valid[dd], -torch.inf)
                nll = -torch.log_softmax(logits, dim=1).gather(1, yy[:, None])[:, 0]
            loss = nll.sum() * n_batches / n_total + options.l2 * (w ** 2).sum() \
                + FACTOR_L2 * (a ** 2).sum() + options.interaction_l2 * (v ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
    out = {}
    for i, d in enumerate(dims):
        k = scales_by_dim[d]
        arrays = {"w": w[:, i].detach().numpy().copy(), "a": a[:, i].detach().numpy().copy()}
        if n_levels:  # back to the text columns: V = basis @ V_basis
            vi = v[:, i].detach().numpy()
            arrays["v"] = (basis @ vi.reshape(len(vi), -1)).reshape(len(basis), *vi.shape[1:])
        if head == "ordinal":
            cuts = _padded_cuts(extra[0], extra[1], valid)[i, 1:k].detach().numpy().copy()
            arrays["c"] = cuts
        else:
            arrays = {**{n: arr[..., :k] for n, arr in arrays.items()},
                      "b": extra[0][i, :k].detach().numpy().copy()}
        out[d] = arrays
    return out, loss_value


def _level_columns(onehot: np.ndarray) -> np.ndarray:
    """Column of each rater's level per interaction factor, ``(raters, factors)`` int64.

    ``onehot`` has one block of columns per factor with exactly one 1 per row and block (the
    training raters' levels are the panel's levels, so none is unseen).
    """
    rows, cols = np.nonzero(onehot)
    per_rater = np.bincount(rows, minlength=len(onehot))
    if len(rows) and np.any(per_rater != per_rater[0]):
        raise PanelError("every training rater needs one level of each interaction factor")
    return cols.reshape(len(onehot), -1).astype(np.int64)


def text_basis(features: np.ndarray, rank: int, seed: int = 0) -> np.ndarray:
    """Orthonormal columns spanning the ``rank`` leading right singular vectors of the texts.

    Parameters
    ----------
    features : numpy.ndarray
        The training texts' features, one row per text.
    rank : int
        Number of directions (fewer when the features have fewer rows or columns).
    seed : int
        Seeds the sample of :data:`MAX_BASIS_ROWS` texts the directions come from when there
        are more.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_features, min(rank, n_texts, n_features))``, float64, deterministic (the
        exact singular value decomposition in torch on the calling thread count, signs fixed
        so that each column's largest entry is positive).
    """
    import torch

    k = min(int(rank), *features.shape)
    if k <= 0:
        return np.zeros((features.shape[1], 0))
    rows = np.arange(len(features))
    if len(rows) > MAX_BASIS_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_BASIS_ROWS, replace=False))
    sample = torch.tensor(np.asarray(features[rows], dtype=np.float64))
    basis = torch.linalg.svd(sample, full_matrices=False)[2][:k].T.numpy().copy()
    flip = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(k)])
    return basis * np.where(flip == 0, 1.0, flip)


def _padded_cuts(c0: Any, gaps: Any, valid: Any) -> Any:
    """Cut points of each dimension as ``(D, K_max + 1)``: ``-BIG, c_1 .. c_K-1, BIG ...``.

    ``c_1 = c0`` and each next cut adds ``softplus(gap)`` (so they are ordered); columns past
    a dimension's own ``K - 1`` cuts are ``BIG``, standing in for ``+inf``.
    """
    import torch

    cuts = torch.cat([c0, c0 + torch.cumsum(torch.nn.functional.softplus(gaps), dim=1)], dim=1)
    big = torch.full_like(c0, BIG)
    inner = torch.where(valid[:, 1:], cuts, big)  # cut k exists when category k + 1 does
    return torch.cat([-big, inner, big], dim=1)


def _ordinal_nll(eta: Any, y: Any, cuts: Any) -> Any:
    """``-log P(Y = y)`` under the cumulative logit, per row (``cuts`` as from _padded_cuts)."""
    import torch

    upper = cuts.gather(1, y[:, None] + 1)[:, 0] - eta
    lower = cuts.gather(1, y[:, None])[:, 0] - eta
    # log(sigmoid(u) - sigmoid(l)) = log sigmoid(u) + log sigmoid(-l) + log(1 - exp(l - u))
    logsig = torch.nn.functional.logsigmoid
    return -(logsig(upper) + logsig(-lower) + torch.log(-torch.expm1(lower - upper)))


__all__ = ["FACTOR_L2", "fit_panel", "interaction_factors", "train_head"]
