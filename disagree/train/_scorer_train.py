"""Adam fit of the rating-panel scorer's ordinal or multinomial head; needs torch and numpy."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from disagree.train.scorer import RatingPanelScorer

#: Ridge penalty on the attribute coefficients (keeps a level seen in one category finite).
ATTRIBUTE_L2 = 1e-5
_BIG = 1e4  # stands in for the infinite outer cut points of the ordinal head


def train_head(scorer: RatingPanelScorer, features: np.ndarray, design: np.ndarray,
               rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
               ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Fit every dimension jointly with Adam; return numpy parameters and the objective.

    ``scorer`` gives the settings (``head_``, ``scales_``, ``l2``, ``lr``, ``epochs``,
    ``seed``, ``batch_size``); ``features`` are the encoded items (active columns), ``design``
    the one-hot attribute rows of the raters, and ``rows`` per dimension the item row, rater
    row and 0-based rating of each rating.

    Torch runs on one thread here (restored afterwards): the problem is small, one thread
    is faster than several on a busy machine, and the result does not depend on the
    number of cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _adam(scorer, features, design, rows)
    finally:
        torch.set_num_threads(threads)


def _adam(scorer: RatingPanelScorer, features: np.ndarray, design: np.ndarray,
          rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
          ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    dims = list(rows)
    scales = np.array([scorer.scales_[d] for d in dims])
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

    shares = [(np.bincount(rows[d][2], minlength=scorer.scales_[d]) + 0.5)
              / (len(rows[d][2]) + 0.5 * scorer.scales_[d]) for d in dims]
    width = (n_dims,) if scorer.head_ == "ordinal" else (n_dims, k_max)
    w = torch.zeros(x.shape[1], *width, dtype=f64, requires_grad=True)
    a = torch.zeros(z.shape[1], *width, dtype=f64, requires_grad=True)
    if scorer.head_ == "ordinal":
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
    opt = torch.optim.Adam([w, a, *extra], lr=scorer.lr)
    gen = torch.Generator().manual_seed(scorer.seed)
    n_batches = max(1, math.ceil(n_total / scorer.batch_size))
    loss_value = float("nan")
    for _ in range(scorer.epochs):
        order = torch.randperm(n_total, generator=gen) if n_batches > 1 else None
        for bt in range(n_batches):
            pick = slice(None) if order is None else \
                order[bt * n_total // n_batches:(bt + 1) * n_total // n_batches]
            i, r, yy, dd = item[pick], rater[pick], y[pick], dim[pick]
            text = (x @ w.reshape(x.shape[1], -1)).reshape(x.shape[0], *width)
            attr = (z @ a.reshape(z.shape[1], -1)).reshape(z.shape[0], *width)
            eta = text[i, dd] + attr[r, dd]
            if scorer.head_ == "ordinal":
                nll = _ordinal_nll(eta, yy, _padded_cuts(extra[0], extra[1], valid)[dd])
            else:
                logits = (eta + extra[0][dd]).masked_fill(~valid[dd], -torch.inf)
                nll = -torch.log_softmax(logits, dim=1).gather(1, yy[:, None])[:, 0]
            loss = nll.sum() * n_batches / n_total + scorer.l2 * (w ** 2).sum() \
                + ATTRIBUTE_L2 * (a ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
    out = {}
    for i, d in enumerate(dims):
        k = scorer.scales_[d]
        arrays = {"w": w[:, i].detach().numpy().copy(), "a": a[:, i].detach().numpy().copy()}
        if scorer.head_ == "ordinal":
            cuts = _padded_cuts(extra[0], extra[1], valid)[i, 1:k].detach().numpy().copy()
            arrays["c"] = cuts
        else:
            arrays = {"w": arrays["w"][:, :k], "a": arrays["a"][:, :k],
                      "b": extra[0][i, :k].detach().numpy().copy()}
        out[d] = arrays
    return out, loss_value


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
