"""Numerical kernels of the soft labels: posterior moments of ordinal predictions, in chunks.

Depends on numpy, numba (the mixtures' quadrature loop), tqdm's progress-bar protocol and
:mod:`disagree.ordinal` only; knows nothing about fits, names or DataFrames (that is
:mod:`disagree.labels.soft`).

For cut points ``c_k`` and linear predictor ``eta``, ``P(Y <= k) = logistic(c_k - eta)
= e^c_k / (e^c_k + e^eta)``. The exponentials factorise over draws x cut points, draws x
raters (or cells and quadrature nodes) and draws x items (of the rater's or cell's interaction
profile, see :func:`disagree.ordinal.profile_item_effects`), so each of the
draws x cut points x units x items probabilities costs one sum and one division instead of an
exponential (the cut points are clipped to +-700 so that ``e^c`` stays finite and non-zero;
``e^eta`` overflows to ``inf`` only where the probability is 0 anyway).

Every kernel walks through blocks of draws (and of raters or items) whose largest temporary
array holds about ``chunk_size`` float64 values, and folds each block into a :class:`Moments`
accumulator: the posterior mean of the cumulative probabilities and the posterior mean and
variance (Chan et al.'s pairwise update, exact to rounding) of the expected rating
``E[Y] = K - sum_k P(Y <= k)``. Memory is therefore bounded by the block and the outputs, not
by the number of draws.
"""

from __future__ import annotations

from typing import Protocol

import numba
import numpy as np

from disagree.ordinal import cdf_to_probs, gauss_hermite

#: Default number of float64 values in the largest temporary array of one block (8 MB; blocks
#: that stay in the L2/L3 caches are about twice as fast as 32 MB ones).
CHUNK_SIZE = 1_000_000

#: Quadratures of the rater effect in the mixtures (see :func:`grid_plan`).
METHODS = ("auto", "nodes", "grid")
#: Largest grid step, and the largest step per rater sd.
GRID_STEP = 0.6
GRID_STEP_PER_SD = 0.85
#: The grid reaches this many rater sds beyond the cells' extreme linear predictors.
GRID_REACH = 7.5
#: Below this rater sd the grid would be long: the nodes are used.
MIN_GRID_SIGMA = 1e-3


class ProgressBar(Protocol):
    """What the kernels need of a progress bar (tqdm has it)."""

    def update(self, n: int) -> object:
        """Advance by ``n`` units of work."""


class Moments:
    """Running posterior moments of cumulative probabilities, fed a block of draws at a time.

    Parameters
    ----------
    shape : tuple of int
        Shape of one draw's predictions without the cut-point axis (e.g. raters x items).
    scale : int
        Number of rating categories K.
    """

    def __init__(self, shape: tuple[int, ...], scale: int) -> None:
        self.scale = scale
        self.n = 0
        self.cdf_sum = np.zeros((scale - 1, *shape))
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)

    def add(self, cdf: np.ndarray) -> None:
        """Fold in a block ``cdf`` of shape ``(draws, K-1, *shape)``."""
        n_block = cdf.shape[0]
        self.cdf_sum += cdf.sum(axis=0)
        expected = cdf.sum(axis=1)
        np.subtract(self.scale, expected, out=expected)  # E[Y] = K - sum_k P(Y <= k)
        block_mean = expected.mean(axis=0)
        expected -= block_mean
        block_m2 = np.einsum("s...,s...->...", expected, expected)
        total = self.n + n_block
        delta = block_mean - self.mean
        self.mean += delta * (n_block / total)
        self.m2 += block_m2 + delta**2 * (self.n * n_block / total)
        self.n = total

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(probs (*shape, K), mean (*shape), sd (*shape))`` over the draws so far.

        ``probs`` are the posterior means of the category probabilities, ``mean`` and ``sd``
        the posterior mean and standard deviation (``ddof=1``; NaN from a single draw) of the
        expected rating.
        """
        probs = cdf_to_probs(np.moveaxis(self.cdf_sum / self.n, 0, -1))
        sd = np.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else np.full_like(self.mean, np.nan)
        return probs, self.mean.copy(), sd


def rater_moments(cutpoints: np.ndarray, eta_raters: np.ndarray, item_effects: np.ndarray,
                  chunk_size: int = CHUNK_SIZE, bar: ProgressBar | None = None, *,
                  profiles: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive moments of every rater on every item (one dimension).

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta_raters : array (S, R)
        Each rater's linear predictor without the item: ``x_r . beta + u_r``.
    item_effects : array (S, J) or (S, Q, J)
        Item effects, or the item effects of each of ``Q`` interaction profiles (see
        :func:`disagree.ordinal.profile_item_effects`).
    chunk_size : int
        About the number of values in the largest temporary array; a block holds at least one
        draw x cut points x one rater x all items.
    bar : progress bar, optional
        Advanced by draws x raters x items.
    profiles : int array (R,), optional
        Profile (row of the ``Q`` axis of ``item_effects``) of each rater; default 0.

    Returns
    -------
    probs : array (R, J, K)
    mean, sd : arrays (R, J)
        See :meth:`Moments.result`.
    """
    n_draws, n_raters = eta_raters.shape
    item_effects, profiles = with_profiles(item_effects, profiles, n_raters)
    n_items, n_cuts = item_effects.shape[2], cutpoints.shape[1]
    r_step, s_step = _steps(chunk_size, n_items * n_cuts, n_raters, n_draws)
    e_cut = np.exp(np.clip(cutpoints, -700, 700))
    with np.errstate(over="ignore"):
        e_rater, e_item = np.exp(eta_raters), np.exp(item_effects)
    odds_buf = np.empty((s_step, r_step, n_items))  # reused: no page faults per block
    cdf_buf = np.empty((s_step, n_cuts, r_step, n_items))
    probs = np.empty((n_raters, n_items, n_cuts + 1))
    mean, sd = np.empty((n_raters, n_items)), np.empty((n_raters, n_items))
    for r0 in range(0, n_raters, r_step):
        rs = slice(r0, min(r0 + r_step, n_raters))
        n_r = rs.stop - rs.start
        block = profiles[rs]
        one = block[0] if (block == block[0]).all() else None
        acc = Moments((n_r, n_items), n_cuts + 1)
        for s0 in range(0, n_draws, s_step):
            ss = slice(s0, min(s0 + s_step, n_draws))
            n_s = ss.stop - ss.start
            # the raters' own item effects: shared by the block, or gathered per rater
            items = e_item[ss, one, None, :] if one is not None else e_item[ss][:, block]
            with np.errstate(over="ignore"):
                odds = np.multiply(e_rater[ss, rs, None], items, out=odds_buf[:n_s, :n_r])
            cdf = np.add(e_cut[ss, :, None, None], odds[:, None],
                         out=cdf_buf[:n_s, :, :n_r])  # (s, K-1, r, J)
            np.divide(e_cut[ss, :, None, None], cdf, out=cdf)
            acc.add(cdf)
            if bar is not None:
                bar.update(n_s * n_r * n_items)
        probs[rs], mean[rs], sd[rs] = acc.result()
    return probs, mean, sd


def with_profiles(item_effects: np.ndarray, profiles: np.ndarray | None, n: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Item effects as (S, Q, J) and a checked profile index for each of ``n`` units/cells."""
    item_effects = np.asarray(item_effects, float)
    if item_effects.ndim == 2:
        item_effects = item_effects[:, None, :]
    profiles = np.zeros(n, dtype=int) if profiles is None else np.asarray(profiles, int)
    if profiles.shape != (n,) or (n and (profiles.min() < 0
                                         or profiles.max() >= item_effects.shape[1])):
        raise ValueError(f"profiles: expected {n} indices into {item_effects.shape[1]} "
                         f"profile(s), got shape {profiles.shape}")
    return item_effects, profiles


def _steps(chunk_size: int, per_unit_draw: int, n_units: int, n_draws: int) -> tuple[int, int]:
    """Units and draws per block: as many units as leave room for 16 draws, then draws."""
    u_step = int(np.clip(chunk_size // (per_unit_draw * 16), 1, n_units))
    s_step = int(np.clip(chunk_size // (per_unit_draw * u_step), 1, n_draws))
    return u_step, s_step


def mixture_moments(cutpoints: np.ndarray, eta_cells: np.ndarray, weights: np.ndarray,
                    groups: np.ndarray, item_effects: np.ndarray, sigma: np.ndarray,
                    n_nodes: int = 24, chunk_size: int = CHUNK_SIZE,
                    bar: ProgressBar | None = None, *, profiles: np.ndarray | None = None,
                    method: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive moments of mixtures of factor cells, rater effect integrated.

    For unit ``g`` (a group or a population), item ``j`` and draw ``s``:
    ``P_g(Y <= k) = sum_c w_c E_u[logistic(c_k - eta_c - v_jc - u)]`` over the unit's cells,
    ``v_jc`` the item effect of cell ``c``'s interaction profile (the plain item effect
    without interactions), ``u ~ N(0, sigma^2)``, the expectation by ``n_nodes``-point
    Gauss-Hermite quadrature (with 24 nodes the absolute error is about 1e-11 for
    ``sigma = 1``, 2e-8 for 1.5, 1e-6 for 2 and 1e-4 for 3; raise ``n_nodes`` for very
    heterogeneous raters) per cell, or on one grid shared by the cells of a profile
    (:func:`grid_plan`), whichever evaluates fewer terms (a population of many cells:
    the grid). The moments are then taken over draws as in :func:`rater_moments`.

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta_cells : array (S, C)
        Fixed-effect linear predictor ``x_c . beta`` of each cell.
    weights : array (C,)
        Weight of each cell within its unit (normalised here, per unit).
    groups : int array (C,)
        Unit of each cell: ``0 .. G-1``, non-decreasing, every unit present.
    item_effects : array (S, J) or (S, Q, J)
        Item effects, or those of each interaction profile.
    sigma : array (S,)
        Standard deviation of the rater effects.
    n_nodes : int
        Gauss-Hermite nodes.
    chunk_size : int
        About the number of values in a block's cumulative probabilities (draws x cut points
        x items x units; the terms of each cell and node are summed in a compiled loop and
        never stored); a block holds at least one draw x one item.
    bar : progress bar, optional
        Advanced by draws x items.
    profiles : int array (C,), optional
        Profile (row of the ``Q`` axis of ``item_effects``) of each cell; default 0.
    method : {"auto", "nodes", "grid"}
        Quadrature of the rater effect (see :func:`grid_plan`).

    Returns
    -------
    probs : array (G, J, K)
    mean, sd : arrays (G, J)
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {', '.join(METHODS)}")
    nodes, gh = gauss_hermite(n_nodes)
    groups = np.asarray(groups, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    w = np.asarray(weights, float) / np.add.reduceat(np.asarray(weights, float), starts)[groups]
    n_draws, n_cells = eta_cells.shape
    item_effects, profiles = with_profiles(item_effects, profiles, n_cells)
    n_items, n_cuts, n_units = item_effects.shape[2], cutpoints.shape[1], len(starts)
    j_step = int(np.clip(chunk_size // (n_cuts * n_units), 1, n_items))
    s_step = int(np.clip(chunk_size // (n_cuts * n_units * j_step), 1, n_draws))
    e_cut = np.exp(np.clip(cutpoints, -700, 700))
    grid = grid_plan(eta_cells, sigma, profiles, n_units, n_nodes, method)
    with np.errstate(over="ignore"):  # e^v a block at a time below: no copy of all draws
        if grid is None:
            e_cell = np.exp(eta_cells[:, :, None] + sigma[:, None, None] * nodes)  # (S, C, M)
        else:
            e_grid = np.exp(grid[1])
    cdf_buf = np.empty((s_step, n_cuts, j_step, n_units))  # reused
    probs = np.empty((n_units, n_items, n_cuts + 1))
    mean, sd = np.empty((n_units, n_items)), np.empty((n_units, n_items))
    for j0 in range(0, n_items, j_step):
        js = slice(j0, min(j0 + j_step, n_items))
        n_j = js.stop - js.start
        acc = Moments((n_j, n_units), n_cuts + 1)
        for s0 in range(0, n_draws, s_step):
            ss = slice(s0, min(s0 + s_step, n_draws))
            n_s = ss.stop - ss.start
            cdf = cdf_buf[:n_s, :, :n_j]
            with np.errstate(over="ignore"):
                e_item = np.exp(item_effects[ss, :, js])
            if grid is None:
                _mixture_cdf(e_cut[ss], e_cell[ss], e_item, profiles, w, groups, gh, cdf)
            else:
                _grid_cdf(e_cut[ss], grid[0], e_grid, grid_weights(
                    grid, eta_cells[ss], sigma[ss], w, groups, n_units, profiles), e_item, cdf)
            acc.add(cdf)  # (s, K-1, j, G)
            if bar is not None:
                bar.update(n_s * n_j)
        p, m, v = acc.result()  # (j, G, ...)
        probs[:, js], mean[:, js], sd[:, js] = p.swapaxes(0, 1), m.T, v.T
    return probs, mean, sd


@numba.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _mixture_cdf(e_cut: np.ndarray, e_cell: np.ndarray, e_item: np.ndarray,
                 profiles: np.ndarray, w: np.ndarray, groups: np.ndarray, gh: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[s, k, j, g] = sum_{c in g} w_c sum_m gh_m e^c_k / (e^c_k + e^v_jc e^(eta_c+u_m))``.

    Fused so that the draws x cut points x items x cells x nodes terms are never stored; the
    draw x item pairs are spread over the CPU's cores (each written by one thread: the result
    does not depend on the number of threads). ``reassoc`` lets the sum over the nodes use
    SIMD lanes; infinities keep their meaning (an overflowed odds gives probability 0).
    """
    n_draws, n_cuts = e_cut.shape
    n_items, n_cells, n_nodes = e_item.shape[2], e_cell.shape[1], e_cell.shape[2]
    for sj in numba.prange(n_draws * n_items):
        s, j = sj // n_items, sj % n_items
        out[s, :, j, :] = 0.0
        for c in range(n_cells):
            item = e_item[s, profiles[c], j]
            for k in range(n_cuts):
                ec = e_cut[s, k]
                total = 0.0
                for m in range(n_nodes):
                    total += gh[m] * ec / (ec + item * e_cell[s, c, m])
                out[s, k, j, groups[c]] += w[c] * total


@numba.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _grid_cdf(e_cut: np.ndarray, profiles: np.ndarray, points: np.ndarray, mass: np.ndarray,
              e_item: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[s, k, j, g] = sum_n mass[s, n, g] e^c_k / (e^c_k + e^v_jn points[n])``.

    The grid's form of :func:`_mixture_cdf`: each point ``e^t`` has its profile's item effect
    and a weight for every unit; draw x item pairs spread over the cores as there.
    """
    n_draws, n_cuts = e_cut.shape
    n_items, n_points, n_units = e_item.shape[2], len(points), mass.shape[2]
    for sj in numba.prange(n_draws * n_items):
        s, j = sj // n_items, sj % n_items
        out[s, :, j, :] = 0.0
        for n in range(n_points):
            odds = e_item[s, profiles[n], j] * points[n]
            for k in range(n_cuts):
                f = e_cut[s, k] / (e_cut[s, k] + odds)
                for g in range(n_units):
                    out[s, k, j, g] += mass[s, n, g] * f


def grid_plan(eta: np.ndarray, sigma: np.ndarray, profiles: np.ndarray, n_units: int,
              n_nodes: int, method: str = "auto") -> tuple[np.ndarray, np.ndarray] | None:
    """Plan the grid of the rater-effect integral for all draws, or None where nodes are better.

    With ``t = eta_c + u``, ``u ~ N(0, sigma^2)``, a unit's integral of ``f(t)`` is
    ``int f(t) h(t) dt`` with ``h`` the mixture density ``sum_c w_c N(t; eta_c, sigma^2)``
    (per interaction profile, since the item effects depend on it). The grid is uniform in
    ``t``, one per profile, step ``min(GRID_STEP, GRID_STEP_PER_SD * sigma)`` (the smallest
    ``sigma`` of all draws), reaching ``GRID_REACH`` sds beyond the cells' extreme ``eta``; each
    cell's normal density is sampled on it and normalised (:func:`grid_weights`): the trapezoid
    rule on the real line, exponentially accurate for the analytic integrands here (the
    logistic's poles are ``pi`` off the real axis). Against a 150-node Gauss-Hermite sum the
    error is below 2e-11 for rater sds from 0.01 to 2.5. A population of 70 cells of one
    profile needs about 50 grid points instead of 70 x 24 nodes. One grid serves every draw,
    so the result does not depend on how the draws are blocked.

    Parameters
    ----------
    eta : array (S, C)
        Linear predictor of each cell on each draw.
    sigma : array (S,)
        Rater sd on each draw.
    profiles : int array (C,)
        Interaction profile of each cell.
    n_units : int
        Number of units (groups or populations) the cells make up.
    n_nodes : int
        Gauss-Hermite nodes a cell of the alternative (for the comparison of costs).
    method : {"auto", "nodes", "grid"}
        ``"grid"``: the grid (where ``sigma > 0``); ``"nodes"``: never; ``"auto"``: where it
        evaluates fewer terms than the nodes (``points x units < cells x n_nodes``) and the
        smallest ``sigma`` is at least ``MIN_GRID_SIGMA``.

    Returns
    -------
    (profiles (n,), t (n,)) or None
        The profile of each grid point and the point.
    """
    sd_min = float(sigma.min())
    h = min(GRID_STEP, GRID_STEP_PER_SD * sd_min)
    if method == "nodes" or not h > 0:
        return None
    present = np.unique(profiles)
    grids = []
    for q in present:
        cells = eta[:, profiles == q]
        lo, hi = (cells - GRID_REACH * sigma[:, None]).min(), \
            (cells + GRID_REACH * sigma[:, None]).max()
        grids.append(lo + h * np.arange(int(np.ceil((hi - lo) / h)) + 1))
    n_points = sum(len(g) for g in grids)
    if method == "auto" and (sd_min < MIN_GRID_SIGMA
                             or n_points * n_units >= len(profiles) * n_nodes):
        return None
    return (np.concatenate([np.full(len(g), q) for q, g in zip(present, grids, strict=True)]),
            np.concatenate(grids))


def grid_weights(grid: tuple[np.ndarray, np.ndarray], eta: np.ndarray, sigma: np.ndarray,
                 w: np.ndarray, groups: np.ndarray, n_units: int, profiles: np.ndarray,
                 ) -> np.ndarray:
    """Weights (s, n, G) of the grid's points for each unit on each draw of a block.

    ``grid`` from :func:`grid_plan`; ``eta`` (s, C) and ``sigma`` (s,) the block's draws;
    ``w`` the weight of each cell within its unit ``groups``. A unit's weights sum to 1 over
    the points on every draw.
    """
    point_profiles, t = grid
    onehot = np.zeros((len(groups), n_units))
    onehot[np.arange(len(groups)), groups] = w  # cell -> unit, with the cell's weight
    mass = np.empty((len(eta), len(t), n_units))
    for q in np.unique(point_profiles):
        on, mine = point_profiles == q, profiles == q
        z = (t[None, on, None] - eta[:, None, mine]) / sigma[:, None, None]  # (s, n, c)
        density = np.exp(-0.5 * z * z)
        density /= density.sum(axis=1, keepdims=True)
        mass[:, on] = density @ onehot[mine]
    return mass
