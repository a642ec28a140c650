"""Numerical kernels of pair preferences: which of two responses one rater prefers.

Depends on numpy, :mod:`disagree.labels.kernels` (profiles, the progress-bar protocol) and
:func:`disagree.ordinal.gauss_hermite` only; knows nothing about fits or names (that is
:mod:`disagree.labels.preferences`).

For one rater with linear predictor ``t`` (without the item) on one posterior draw, the ratings
of responses ``a`` and ``b`` are independent given ``t``, with ``F_a(k) = P(Y_a <= k) =
logistic(c_k - v_a - t)``. Then, with ``F(K) = 1``::

    D = P(Y_a < Y_b) - P(Y_a > Y_b) = sum_{k=1}^{K-1} F_a(k) F_b(k+1) - F_a(k+1) F_b(k)
      = sum_{k=1}^{K-1} F_a(k) (F_b(k+1) - F_b(k-1)) - F_b(K-1)      (F(0) = 0)

(the second form, with the steps of ``F_b`` computed once per item, is the one evaluated), and
the preference for ``a`` where lower ratings are better is ``P(Y_a < Y_b) + P(Y_a = Y_b)
/ 2 = (1 + D) / 2`` (``(1 - D) / 2`` where higher is better). ``D`` is averaged *before* any
other average: over the draws for a rater (its own effect ``u_r`` in each draw), and over the
draws, the unit's cells and the rater effect ``u ~ N(0, sigma^2)`` for a group or population.
Averaging the two responses' predictive distributions first and comparing them afterwards
would compare two *different* random raters, counting the rater effect twice and pulling every
preference toward 1/2.

The rater-effect integral of a mixture of cells. With ``t = eta_c + u`` for cell ``c``, the
unit's preference on a draw is ``int D(t) h(t) dt`` with ``h`` the mixture density
``sum_c w_c N(t; eta_c, sigma^2)`` (per interaction profile, since ``v`` depends on it). Two
quadratures are used, whichever evaluates ``D`` at fewer points over all draws:

* ``"nodes"``: ``n_nodes`` Gauss-Hermite nodes per cell (cells x nodes points; the error is
  that of :func:`disagree.labels.kernels.mixture_moments`);
* ``"grid"``: one uniform grid of ``t`` per profile, the cells' normal densities sampled on it
  (:func:`disagree.labels.kernels.grid_plan`, error below 2e-11; a population of 70
  cells of one profile needs about 50 grid points instead of 70 x 24 nodes).

:func:`rater_preferences` walks through blocks of draws, pairs and raters whose largest
temporary array holds about ``chunk_size`` float64 values; :func:`mixture_preferences` sums the
draws x pairs x quadrature points terms in a compiled loop (numba, the pairs spread over the
cores) and holds one block of draws' quadrature points and item effects. Memory is bounded by
the block and the output (units x pairs). On 215,200 pairs of 107,600 items (Kumar-sized data),
45 cells and 20 draws the compiled loop takes 0.5 s against 5.4 s for the numpy blocks it
replaced (equal to 6e-11, the grid's own error).
"""

from __future__ import annotations

import numba
import numpy as np

from disagree.labels.kernels import (
    CHUNK_SIZE,
    METHODS,
    ProgressBar,
    grid_plan,
    grid_weights,
    with_profiles,
)
from disagree.ordinal import gauss_hermite


def rater_preferences(cutpoints: np.ndarray, eta_raters: np.ndarray, item_effects: np.ndarray,
                      item_a: np.ndarray, item_b: np.ndarray, *,
                      profiles: np.ndarray | None = None, lower_is_better: bool = True,
                      chunk_size: int = CHUNK_SIZE, bar: ProgressBar | None = None,
                      ) -> np.ndarray:
    """Posterior probability that each rater prefers ``a`` to ``b``, ties counted half.

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta_raters : array (S, R)
        Each rater's linear predictor without the item, ``x_r . beta + u_r``, per draw.
    item_effects : array (S, J) or (S, Q, J)
        Item effects, or those of each interaction profile.
    item_a, item_b : int arrays (P,)
        Items (columns of ``item_effects``) of each pair.
    profiles : int array (R,), optional
        Profile of each rater (default 0).
    lower_is_better : bool
        Direction of the dimension.
    chunk_size : int
        About the number of values in the largest temporary array.
    bar : progress bar, optional
        Advanced by draws x pairs x raters.

    Returns
    -------
    array (R, P)
        ``mean_s [P(a better) + P(tie) / 2]`` for each rater and pair.
    """
    n_draws, n_raters = eta_raters.shape
    item_effects, profiles = with_profiles(item_effects, profiles, n_raters)
    steps = _steps(chunk_size, cutpoints.shape[1], n_raters, len(item_a), n_draws)
    n_step, _, s_step = steps
    blocks, items = _pair_blocks(item_a, item_b, steps)
    e_cut, e_item = _exp(cutpoints, item_effects[:, :, items])
    with np.errstate(over="ignore"):
        e_rater = np.exp(eta_raters)
    total, work = np.zeros((len(item_a), n_raters)), _Workspace()  # pairs x raters
    for n0 in range(0, n_raters, n_step):
        rs = slice(n0, min(n0 + n_step, n_raters))
        for s0 in range(0, n_draws, s_step):
            ss = slice(s0, min(s0 + s_step, n_draws))
            for ps, block_items, ia, ib in blocks:
                odds = _odds(e_item[ss][:, :, block_items], profiles[rs], e_rater[ss, rs], work)
                diff = _difference(e_cut[ss], odds, ia, ib, work)  # (s, p, n)
                total[ps, rs] += diff[0] if len(diff) == 1 else diff.sum(axis=0)
                if bar is not None:
                    bar.update(diff.size)
    return _orient(total.T / n_draws, lower_is_better)


def mixture_preferences(cutpoints: np.ndarray, eta_cells: np.ndarray, weights: np.ndarray,
                        groups: np.ndarray, item_effects: np.ndarray, sigma: np.ndarray,
                        item_a: np.ndarray, item_b: np.ndarray, *,
                        profiles: np.ndarray | None = None, lower_is_better: bool = True,
                        n_nodes: int = 24, method: str = "auto",
                        chunk_size: int = CHUNK_SIZE, bar: ProgressBar | None = None,
                        ) -> np.ndarray:
    """Probability that a member of each unit, shown both responses, prefers ``a`` to ``b``.

    For unit ``g``: ``mean_s sum_c w_c E_u[P(Y_a better | s, c, u) + P(tie | s, c, u) / 2]``
    with ``u ~ N(0, sigma_s^2)`` shared by the two ratings (see the module docstring).

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta_cells : array (S, C)
        Fixed-effect linear predictor ``x_c . beta`` of each cell.
    weights : array (C,)
        Weight of each cell within its unit (normalised here, per unit).
    groups : int array (C,)
        Unit of each cell, ``0 .. G-1``, every unit present.
    item_effects : array (S, J) or (S, Q, J)
        Item effects, or those of each interaction profile.
    sigma : array (S,)
        Standard deviation of the rater effects.
    item_a, item_b : int arrays (P,)
        Items of each pair.
    profiles : int array (C,), optional
        Profile of each cell (default 0).
    lower_is_better : bool
        Direction of the dimension.
    n_nodes : int
        Gauss-Hermite nodes of the ``"nodes"`` quadrature.
    method : {"auto", "nodes", "grid"}
        Quadrature of the rater effect (module docstring); ``"auto"`` takes the one that
        evaluates fewer terms over all draws (the nodes where the grid is unusable).
    chunk_size : int
        About the number of values of a block of draws' quadrature points and item effects.
    bar : progress bar, optional
        Advanced by draws x pairs.

    Returns
    -------
    array (G, P)
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {', '.join(METHODS)}")
    groups = np.asarray(groups, int)
    n_draws, n_cells = eta_cells.shape
    n_units = int(groups.max()) + 1
    w = np.asarray(weights, float) / np.bincount(groups, weights)[groups]
    item_effects, profiles = with_profiles(item_effects, profiles, n_cells)
    items, inverse = np.unique(np.r_[np.asarray(item_a, int), np.asarray(item_b, int)],
                               return_inverse=True)
    pos_a, pos_b = inverse[:len(item_a)], inverse[len(item_a):]
    per_draw = n_cells * n_nodes * (n_units + 1) + len(items) * item_effects.shape[1]
    s_step = int(np.clip(chunk_size // per_draw, 1, max(n_draws, 1)))
    e_cut = np.exp(np.clip(cutpoints, -700, 700))
    total = np.zeros((n_units, len(item_a)))
    grid = grid_plan(eta_cells, sigma, profiles, n_units, n_nodes, method)
    for s0 in range(0, n_draws, s_step):
        ss = slice(s0, min(s0 + s_step, n_draws))
        point_profiles, points, mass = _quadrature(grid, eta_cells[ss], sigma[ss], w, groups,
                                                   n_units, profiles, n_nodes)
        with np.errstate(over="ignore"):
            e_item = np.exp(item_effects[ss][:, :, items])
        _mixture_pair_sum(e_cut[ss], e_item, pos_a, pos_b, point_profiles, points,
                          np.ascontiguousarray(np.broadcast_to(mass, (*points.shape, n_units))),
                          total)
        if bar is not None:
            bar.update((ss.stop - ss.start) * len(item_a))
    return _orient(total / n_draws, lower_is_better)


@numba.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _mixture_pair_sum(e_cut: np.ndarray, e_item: np.ndarray, pos_a: np.ndarray,
                      pos_b: np.ndarray, profiles: np.ndarray, points: np.ndarray,
                      mass: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[g, p] += sum_s sum_n mass[s, n, g] D_s(a_p, b_p; t_n)``, fused.

    ``D = sum_{k=1}^{K-1} F_a(k) F_b(k+1) - F_a(k+1) F_b(k)`` (``F(K) = 1``) with
    ``F_i(k) = e^c_k / (e^c_k + e^v_i e^t)`` at each point ``e^t`` (``points``, shape
    ``(s, n)``, its profile in ``profiles``) with the item effects ``e_item`` (s, Q, J). The
    pairs are spread over the CPU's cores, each written by one thread, so the result does not
    depend on the number of threads; no draws x pairs x points array is ever stored.
    """
    n_draws, n_cuts = e_cut.shape
    n_points, n_units = points.shape[1], mass.shape[2]
    for p in numba.prange(len(pos_a)):
        a, b = pos_a[p], pos_b[p]
        acc = np.zeros(n_units)
        for s in range(n_draws):
            for n in range(n_points):
                q, t = profiles[n], points[s, n]
                odds_a, odds_b = e_item[s, q, a] * t, e_item[s, q, b] * t
                fa = e_cut[s, 0] / (e_cut[s, 0] + odds_a)
                fb = e_cut[s, 0] / (e_cut[s, 0] + odds_b)
                d = 0.0
                for k in range(1, n_cuts):
                    ec = e_cut[s, k]
                    fa_k, fb_k = ec / (ec + odds_a), ec / (ec + odds_b)
                    d += fa * fb_k - fa_k * fb
                    fa, fb = fa_k, fb_k
                d += fa - fb  # k = K-1: F_a(K-1) F(K) - F(K) F_b(K-1)
                for g in range(n_units):
                    acc[g] += mass[s, n, g] * d
        for g in range(n_units):
            out[g, p] += acc[g]


def _quadrature(grid: tuple[np.ndarray, np.ndarray] | None, eta: np.ndarray,
                sigma: np.ndarray, w: np.ndarray, groups: np.ndarray, n_units: int,
                profiles: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points ``e^t``, their profiles and their weights per unit, for a block of draws.

    Returns ``(profiles (n,), points (s, n), weights (n, G) or (s, n, G))``: the points of
    ``grid`` (:func:`disagree.labels.kernels.grid_plan`) where there is one, else ``n_nodes``
    Gauss-Hermite nodes per cell; the weights of a unit sum to 1 over the points.
    """
    if grid is not None:
        with np.errstate(over="ignore"):
            points = np.exp(np.broadcast_to(grid[1], (len(eta), len(grid[1]))))
        return grid[0], points, grid_weights(grid, eta, sigma, w, groups, n_units, profiles)
    onehot = np.zeros((len(groups), n_units))
    onehot[np.arange(len(groups)), groups] = w
    nodes, gh = gauss_hermite(n_nodes)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for q in np.unique(profiles):
        mine = profiles == q
        t = eta[:, mine, None] + sigma[:, None, None] * nodes  # (s, c, M)
        parts.append((np.full(t.shape[1] * t.shape[2], q), t.reshape(len(eta), -1),
                      (onehot[mine][:, None, :] * gh[None, :, None]).reshape(-1, n_units)))
    with np.errstate(over="ignore"):
        points = np.exp(np.concatenate([p[1] for p in parts], axis=1))
    return (np.concatenate([p[0] for p in parts]), points,
            np.concatenate([p[2] for p in parts], axis=0))


def _odds(e_item: np.ndarray, profiles: np.ndarray, points: np.ndarray,
          work: _Workspace) -> np.ndarray:
    """``e^(v + t)`` of every item and point, each point with its profile's items: (s, J, n).

    ``e_item`` is (s, Q, J) and ``points`` (s|1, n); a profile shared by the whole block is
    broadcast, mixed ones are gathered.
    """
    out = work.get("odds", (e_item.shape[0], e_item.shape[2], len(profiles)))
    items = e_item[:, profiles[0], :, None] if (profiles == profiles[0]).all() else \
        e_item[:, profiles, :].transpose(0, 2, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.multiply(items, points[:, None, :], out=out)


class _Workspace:
    """Float64 buffers reused from block to block (fresh large arrays page-fault every time)."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return a C-contiguous array of ``shape`` (uninitialised) on buffer ``name``."""
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.size < size:
            buf = self.buffers[name] = np.empty(size)
        return buf[:size].reshape(shape)


def _difference(e_cut: np.ndarray, odds: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                work: _Workspace) -> np.ndarray:
    """``D = P(Y_a < Y_b) - P(Y_a > Y_b)`` for pairs x points, draw by draw.

    Parameters
    ----------
    e_cut : array (s, K-1)
        ``e^c``.
    odds : array (s, J, n)
        ``e^(v + t)`` of the block's items at each point (rater or quadrature point).
    ia, ib : int arrays (p,)
        Positions in the item axis of each pair's two items.
    work : _Workspace
        Buffers; the result is one of them (valid until the next call).

    Returns
    -------
    array (s, p, n)
    """
    n_s, _, n = odds.shape
    n_cuts = len(e_cut.T)
    shape = (n_s, len(ia), n)
    cut = e_cut.T[:, :, None, None]
    cdf = np.add(cut, odds[None], out=work.get("cdf", (n_cuts, *odds.shape)))
    with np.errstate(invalid="ignore"):
        np.divide(cut, cdf, out=cdf)  # (K-1, s, J, n): F(k) = e^c / (e^c + e^(v + t))
    # D = sum_k F_a(k) (F_b(k+1) - F_b(k-1)) - F_b(K-1), with F(0) = 0 and F(K) = 1
    step = work.get("step", cdf.shape)  # F(k+1) - F(k-1)
    step[0] = cdf[1] if n_cuts > 1 else 1.0
    np.subtract(cdf[2:], cdf[:-2], out=step[1:-1])
    if n_cuts > 1:
        np.subtract(1.0, cdf[-2], out=step[-1])
    diff, a_k, b_k = work.get("diff", shape), work.get("a", shape), work.get("b", shape)
    np.negative(np.take(cdf[-1], ib, axis=1, out=b_k), out=diff)
    for k in range(n_cuts):
        np.take(cdf[k], ia, axis=1, out=a_k)
        diff += np.multiply(a_k, np.take(step[k], ib, axis=1, out=b_k), out=a_k)
    return diff


def _orient(diff: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Preference for ``a`` from the mean difference ``P(Y_a < Y_b) - P(Y_a > Y_b)``."""
    return np.clip(0.5 * (1.0 + (diff if lower_is_better else -diff)), 0.0, 1.0)


def _exp(cutpoints: np.ndarray, item_effects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``e^c`` (cut points clipped to +-700: finite and non-zero) and ``e^v``."""
    with np.errstate(over="ignore"):
        return np.exp(np.clip(cutpoints, -700, 700)), np.exp(item_effects)


def _steps(chunk_size: int, n_cuts: int, n_points: int, n_pairs: int, n_draws: int,
           ) -> tuple[int, int, int]:
    """Points, pairs and draws per block.

    A block holds ``K-1`` cumulative probabilities and their steps of up to two items per pair
    and three pair-sized temporaries per draw x pair x point; points first (leaving room for 64
    draw x pair combinations), then pairs, then draws.
    """
    per = 4 * n_cuts + 5  # cdf and steps of up to 2 items per pair, odds, 3 pair arrays
    n_step = int(np.clip(chunk_size // (per * 64), 1, max(n_points, 1)))
    p_step = int(np.clip(chunk_size // (per * n_step), 1, max(n_pairs, 1)))
    s_step = int(np.clip(chunk_size // (per * n_step * p_step), 1, max(n_draws, 1)))
    return n_step, p_step, s_step


def _pair_blocks(item_a: np.ndarray, item_b: np.ndarray, steps: tuple[int, int, int],
                 ) -> tuple[list[tuple[slice, np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Blocks of pairs with the items each needs.

    Returns ``(blocks, items)``: ``items`` the distinct items of all pairs (columns to keep of
    the item effects) and, per block, ``(pairs slice, its items as positions in items,
    positions of a and b in the block's items)``.
    """
    item_a, item_b = np.asarray(item_a, int), np.asarray(item_b, int)
    items, inverse = np.unique(np.r_[item_a, item_b], return_inverse=True)
    pos_a, pos_b = inverse[:len(item_a)], inverse[len(item_a):]
    p_step = steps[1]
    blocks = []
    for p0 in range(0, len(item_a), p_step):
        ps = slice(p0, min(p0 + p_step, len(item_a)))
        mine, back = np.unique(np.r_[pos_a[ps], pos_b[ps]], return_inverse=True)
        n = ps.stop - ps.start
        blocks.append((ps, mine, back[:n], back[n:]))
    return blocks, items
