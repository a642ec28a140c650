"""Arithmetic of the cumulative-logit model, shared by the simulator and the fitted model.

For a rating ``Y`` in 1..K with cut points ``c_1 < ... < c_{K-1}`` and linear predictor ``eta``:
``P(Y <= k) = logistic(c_k - eta)``. Contrasts are *standardised*: the probability of a high
rating is averaged over the items, over the rater-effect distribution ``N(0, sigma^2)``
(integrated numerically, not plugging in zero) and over a mix of rater factor cells (the
sample's own, or a target population's), with one factor set to each level in turn.

Every array function takes a leading axis of draws ``S`` (``S = 1`` for a known truth), so that
the same code gives the simulator's true contrasts and the posterior's.

Group-by-item interactions. With interaction factors, the item effect a rater meets depends on
the rater's levels of those factors: ``v[j] + sum_f w_f[j, level_f]``. ``item_deviations`` maps
each interaction factor ``f`` to the deviations ``w_f`` of shape ``(S, J, L_f)`` (levels in the
order of ``levels[f]``, reference first); a *profile* is one combination of interaction levels,
and :func:`profile_item_effects` gives the item effects of each profile present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numba
import numpy as np
import pandas as pd
from scipy.special import expit

_MAX_CHUNK_ELEMENTS = 4_000_000


def coef_names(levels: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Return the ``(factor, level)`` pairs of the dummy-coded design, references dropped."""
    return [(f, lv) for f, lvs in levels.items() for lv in lvs[1:]]


def design_matrix(frame: pd.DataFrame, levels: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Dummy-code the factors of ``frame`` (one row per rater or cell).

    Parameters
    ----------
    frame : DataFrame
        Has one column per factor in ``levels``; values are compared as strings.
    levels : mapping
        Levels per factor, reference first (as from ``RatingTable.factor_levels``).

    Returns
    -------
    ndarray of shape (n_rows, n_coefficients)
        Columns in the order of :func:`coef_names`.
    """
    cols = [(frame[f].astype(str).to_numpy() == lv) for f, lv in coef_names(levels)]
    if not cols:
        return np.zeros((len(frame), 0))
    return np.column_stack(cols).astype(float)


def gauss_hermite(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Return nodes and weights integrating against the standard normal (weights sum to 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / weights.sum()


def profile_item_effects(item_effects: np.ndarray,
                         item_deviations: Mapping[str, np.ndarray] | None,
                         cells: pd.DataFrame, levels: Mapping[str, Sequence[str]],
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Item effects of every interaction profile present in ``cells``, and each row's profile.

    Parameters
    ----------
    item_effects : array (S, J)
        Item effects shared by all raters, ``v[j]``.
    item_deviations : mapping, optional
        Interaction factor -> deviations ``w_f`` of shape (S, J, L_f), levels in the order of
        ``levels[f]``. None or empty: no interactions.
    cells : DataFrame
        One row per cell (or rater), with a column for every interaction factor.
    levels : mapping
        Levels per factor, reference first.

    Returns
    -------
    effects : array (S, Q, J)
        ``v[j] + sum_f w_f[j, level_f]`` of each of the ``Q`` distinct profiles (``Q = 1`` and
        ``effects[:, 0] == item_effects`` without interactions).
    profile : int array (len(cells),)
        Row of ``effects`` for each row of ``cells``.
    """
    item_effects = np.atleast_2d(item_effects)
    # a factor whose deviations are all zero here (not on this dimension) makes no profile
    factors = [f for f in item_deviations or {} if np.any(item_deviations[f])]
    if not factors:
        return item_effects[:, None, :], np.zeros(len(cells), dtype=int)
    codes = np.column_stack([pd.Index([str(v) for v in levels[f]]).get_indexer(
        cells[f].astype(str)) for f in factors])
    if (codes < 0).any():
        bad = factors[int(np.argwhere(codes < 0)[0, 1])]
        raise ValueError(f"cells have a level of {bad!r} that is not in levels")
    unique, profile = np.unique(codes, axis=0, return_inverse=True)
    effects = np.repeat(item_effects[:, None, :], len(unique), axis=1)
    for i, f in enumerate(factors):
        effects += np.moveaxis(np.asarray(item_deviations[f])[:, :, unique[:, i]], 2, 1)
    return effects, profile.ravel().astype(int)


def averaged_cdf(cutpoints: np.ndarray, eta_cells: np.ndarray, cell_weights: np.ndarray,
                 item_effects: np.ndarray, sigma: np.ndarray,
                 profiles: np.ndarray | None = None) -> np.ndarray:
    """Average ``P(Y <= k)`` over cells, items and the rater-effect distribution.

    Per draw, the curve ``G(a) = mean_j E_u[logistic(a - v_j - u)]``, ``u ~ N(0, sigma^2)``,
    is tabulated once on a uniform grid (:func:`marginal_curve`) and interpolated (cubic,
    Catmull-Rom) at every ``a = c_k - eta_cell``. The error is below 1e-6 in probability
    (tested against a direct 80-node Gauss-Hermite sum), far below the Monte Carlo error of
    any posterior.

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta_cells : array (S, C) or (S, L, C)
        Fixed-effect linear predictor of each factor cell, optionally for ``L`` settings.
    cell_weights : array (C,)
        Weights of the cells; normalised to sum to 1.
    item_effects : array (S, J) or (S, Q, J)
        Item effects, items weighted equally; with a profile axis, the item effects of each
        interaction profile (see :func:`profile_item_effects`).
    sigma : array (S,)
        Standard deviation of the rater effects.
    profiles : int array (C,) or (L, C), optional
        Profile (row of the ``Q`` axis of ``item_effects``) of each cell, per setting; default
        profile 0 everywhere.

    Returns
    -------
    ndarray (S, K-1) or (S, L, K-1)
        The averaged cumulative probabilities, draw by draw (and setting by setting).
    """
    cutpoints = np.atleast_2d(cutpoints)
    eta = np.asarray(eta_cells, float)
    single = eta.ndim == 2
    eta = eta[:, None, :] if single else eta
    item_effects, sigma = np.asarray(item_effects, float), np.atleast_1d(sigma)
    item_effects = item_effects[:, None, :] if item_effects.ndim == 2 else item_effects
    w = np.asarray(cell_weights, float)
    w = w / w.sum()
    n_draws, n_settings, n_cells = eta.shape
    profiles = np.broadcast_to(np.zeros(n_cells, int) if profiles is None else
                               np.asarray(profiles, int), (n_settings, n_cells))
    step = max(1, _MAX_CHUNK_ELEMENTS // (n_settings * n_cells * cutpoints.shape[1] * 4))
    out = np.empty((n_draws, n_settings, cutpoints.shape[1]))
    for lo in range(0, n_draws, step):
        sl = slice(lo, lo + step)
        a = cutpoints[sl, None, None, :] - eta[sl, :, :, None]  # (s, L, C, K-1)
        h = grid_step(sigma[sl])
        grid = np.arange(a.min() - 2 * h, a.max() + 3 * h, h)
        pos = (a - grid[0]) / h
        values = np.empty_like(a)
        for q in np.unique(profiles):
            curve = marginal_curve(item_effects[sl, q], sigma[sl], grid)  # (s, G)
            mask = profiles == q
            values[:, mask] = _catmull_rom(curve, pos[:, mask])
        out[sl] = np.einsum("slck,c->slk", values, w)
    return out[:, 0] if single else out


GRID_STEP = 0.1
#: From this many draws x items on, :func:`marginal_curve` sums in a compiled loop in float64
#: (29x on 40 draws x 107,600 items; 2.7x on the posterior contrasts of the bundled survey's
#: fit, 4000 draws x 300 items); below, numpy's float32 ``expit`` (within 2e-9 of it), bit for
#: bit what the simulator's calibration (one draw, a few hundred items), and so the bundled
#: survey, was made with.
COMPILED_CURVE_AT = 20_000
_MIN_SIGMA = 0.003  # below this the rater-effect integral moves G by < 1e-6: no smoothing


def grid_step(sigma: np.ndarray) -> float:
    """Return the grid step for rater-effect sds ``sigma``: ``GRID_STEP`` or ``sigma / 2``.

    The step is at most half the smallest sd that is smoothed (sds below 0.003 are not), and
    at least 0.005.
    """
    smoothed = np.asarray(sigma)[np.asarray(sigma) >= _MIN_SIGMA]
    if not len(smoothed):
        return GRID_STEP
    return min(GRID_STEP, max(float(smoothed.min()) / 2, 0.005))


def marginal_curve(item_effects: np.ndarray, sigma: np.ndarray, grid: np.ndarray
                   ) -> np.ndarray:
    """Return ``G(a) = mean_j E_u[logistic(a - v_j - u)]`` at each ``a`` of a uniform grid.

    ``H(a) = mean_j logistic(a - v_j)`` is tabulated on the grid extended by 7 sd on each side
    and convolved with the normal density of ``u`` sampled at the grid step (the trapezoid
    rule, exponentially accurate for a Gaussian kernel once the step is at most sigma / 2, see
    :func:`grid_step`). Draws with ``sigma < 0.003`` skip the convolution.

    Parameters
    ----------
    item_effects : array (S, J)
    sigma : array (S,)
        Standard deviation of ``u``.
    grid : array (G,)
        Uniform grid.

    Returns
    -------
    ndarray (S, G)
    """
    item_effects, sigma = np.atleast_2d(item_effects), np.atleast_1d(sigma)
    h = float(grid[1] - grid[0]) if len(grid) > 1 else GRID_STEP
    half = int(np.ceil(7 * float(sigma.max()) / h))
    ext = grid[0] + h * np.arange(-half, len(grid) + half)
    n_draws, n_items = item_effects.shape
    compiled = n_draws * n_items >= COMPILED_CURVE_AT
    step = max(1, _MAX_CHUNK_ELEMENTS // (n_items if compiled else len(ext) * n_items))
    out = np.empty((n_draws, len(grid)))
    offsets = h * np.arange(-half, half + 1)
    e_ext = np.exp(np.clip(ext, -700, 700))
    for lo in range(0, n_draws, step):
        sl = slice(lo, lo + step)
        if compiled:
            with np.errstate(over="ignore"):
                e_items = np.exp(item_effects[sl])
            curve_h = np.empty((len(e_items), len(ext)))  # H on the extended grid
            _item_curve(e_ext, e_items, curve_h)
        else:
            diff = (ext[None, :, None] - item_effects[sl, None, :]).astype(np.float32)
            curve_h = expit(diff).mean(axis=-1, dtype=np.float64)
        sd = np.maximum(sigma[sl, None], _MIN_SIGMA)
        kernel = np.exp(-0.5 * (offsets[None, :] / sd) ** 2)
        kernel /= kernel.sum(axis=1, keepdims=True)
        kernel[sigma[sl] < _MIN_SIGMA] = (offsets == 0).astype(float)
        windows = np.lib.stride_tricks.sliding_window_view(curve_h, 2 * half + 1, axis=1)
        out[sl] = np.einsum("sgt,st->sg", windows, kernel)
    return out


def _catmull_rom(table: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Cubic interpolation of ``table`` (S, G) at fractional indices ``pos`` (S, ...)."""
    n = table.shape[1]
    i = np.clip(np.floor(pos).astype(int), 1, n - 3)
    t = pos - i
    flat = pos.reshape(pos.shape[0], -1)
    idx = i.reshape(flat.shape)
    p0, p1, p2, p3 = (np.take_along_axis(table, idx + d, axis=1).reshape(pos.shape)
                      for d in (-1, 0, 1, 2))
    return 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                  + (3 * p1 - p0 - 3 * p2 + p3) * t**3)


def cdf_to_probs(cdf: np.ndarray) -> np.ndarray:
    """Turn cumulative probabilities (..., K-1) into category probabilities (..., K)."""
    cdf = np.asarray(cdf)
    ones = np.ones(cdf.shape[:-1] + (1,))
    full = np.concatenate([np.zeros_like(ones), cdf, ones], axis=-1)
    return np.diff(full, axis=-1)


def summaries(cdf: np.ndarray, threshold: int) -> dict[str, np.ndarray]:
    """Return P(high) = P(Y >= threshold) and the expected rating from averaged CDFs."""
    probs = cdf_to_probs(cdf)
    k = np.arange(1, probs.shape[-1] + 1)
    return {"high": probs[..., threshold - 1:].sum(-1), "mean": probs @ k}


def standardised_contrasts(
    cutpoints: np.ndarray, beta: np.ndarray, item_effects: np.ndarray, sigma: np.ndarray,
    cells: pd.DataFrame, levels: Mapping[str, Sequence[str]], threshold: int,
    weights: np.ndarray | None = None, factors: Sequence[str] | None = None,
    item_deviations: Mapping[str, np.ndarray] | None = None,
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Standardised contrasts of every non-reference level against its factor's reference.

    For factor ``f`` and level ``l``, every cell's ``f`` is set to ``l`` (other attributes stay
    at the cells' mix) and P(high) and the mean rating are averaged as in
    :func:`averaged_cdf`; the same with the reference level gives the denominator.

    Parameters
    ----------
    cutpoints : array (S, K-1)
    beta : array (S, P)
        Coefficients in the order of :func:`coef_names`.
    item_effects : array (S, J)
    sigma : array (S,)
    cells : DataFrame
        Factor cells (e.g. one row per rater), one column per factor.
    levels : mapping
        Levels per factor, reference first.
    threshold : int
        Lowest rating counted as high.
    weights : array (C,), optional
        Cell weights (default: equal).
    factors : sequence of str, optional
        Compute only the contrasts of these factors (default: all).
    item_deviations : mapping, optional
        Group-by-item deviations per interaction factor, (S, J, L_f) (see the module
        docstring): each cell then meets its own levels' item effects, so a level's probability
        is averaged over the items *as that level rates them*.

    Returns
    -------
    dict
        ``{(factor, level): {"relative_pct", "pp", "mean_diff", "p_level", "p_reference",
        "mean_reference"}}``,
        each an array of shape (S,). ``relative_pct`` is in percent, ``pp`` in percentage points.
    """
    beta = np.atleast_2d(beta)
    cells, weights = collapse_cells(cells[list(levels)], weights)
    x = design_matrix(cells, levels)
    names = coef_names(levels)
    settings = []  # (factor, level, design with the factor set to level for every cell)
    for factor, lvs in levels.items():
        if factors is not None and factor not in factors:
            continue
        cols = [i for i, (f, _) in enumerate(names) if f == factor]
        for lv in lvs:
            xs = x.copy()
            xs[:, cols] = 0.0
            if lv != lvs[0]:
                xs[:, names.index((factor, lv))] = 1.0
            settings.append((factor, lv, xs))
    eta = np.stack([xs @ beta.T for _, _, xs in settings], axis=0).transpose(2, 0, 1)
    set_cells = pd.concat([cells.assign(**{f: lv}) for f, lv, _ in settings], ignore_index=True)
    effects, profile = profile_item_effects(item_effects, item_deviations, set_cells, levels)
    # each statistic has shape (S, L)
    cdf = averaged_cdf(cutpoints, eta, weights, effects, sigma,
                       profile.reshape(len(settings), len(cells)))
    stats = summaries(cdf, threshold)
    pos = {(f, lv): i for i, (f, lv, _) in enumerate(settings)}
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for factor, lvs in levels.items():
        if (factor, lvs[0]) not in pos:
            continue
        ref = pos[(factor, lvs[0])]
        for lv in lvs[1:]:
            cur = pos[(factor, lv)]
            high, mean = stats["high"], stats["mean"]
            out[(factor, lv)] = {
                "relative_pct": 100.0 * (high[:, cur] / high[:, ref] - 1.0),
                "pp": 100.0 * (high[:, cur] - high[:, ref]),
                "mean_diff": mean[:, cur] - mean[:, ref],
                "p_level": high[:, cur],
                "p_reference": high[:, ref],
                "mean_reference": mean[:, ref],
            }
    return out


def collapse_cells(cells: pd.DataFrame, weights: np.ndarray | None = None
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """Merge identical factor cells (compared as strings, sorted), summing their weights."""
    w = np.ones(len(cells)) if weights is None else np.asarray(weights, float)
    grouped = cells.astype(str).assign(__w=w).groupby(list(cells.columns), sort=True)["__w"].sum()
    return grouped.index.to_frame(index=False), grouped.to_numpy(float)


@numba.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _item_curve(e_grid: np.ndarray, e_items: np.ndarray,
                out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[s, g] = mean_j logistic(a_g - v_sj) = mean_j e^a_g / (e^a_g + e^v_sj)``.

    One division a term instead of an exponential, the draw x grid point pairs spread over
    the cores (each written by one thread).
    """
    n_draws, n_items = e_items.shape
    n_grid = len(e_grid)
    for sg in numba.prange(n_draws * n_grid):
        s, g = sg // n_grid, sg % n_grid
        a = e_grid[g]
        total = 0.0
        for j in range(n_items):
            total += a / (a + e_items[s, j])
        out[s, g] = total / n_items


#: Whose contrast: a new rater of the group, averaged over the rater-effect distribution
#: ``u ~ N(0, sigma^2)`` (``"new"``), or the group's typical rater, ``u = 0`` (``"typical"``).
RATERS = ("new", "typical")
#: Measures of :func:`estimands`. ``log_odds`` is the coefficient and ``odds_ratio`` its
#: exponential: the odds ratio of a rating at or above any threshold, for any rater and item
#: (conditional on them), so the same for both rater definitions. ``relative_pct`` (percent) and
#: ``pp`` (percentage points) compare P(rating >= threshold), ``mean_rating`` the expected rating
#: (scale points), each standardised as in :func:`standardised_contrasts` for the rater chosen.
ESTIMAND_MEASURES = ("log_odds", "odds_ratio", "relative_pct", "pp", "mean_rating")


def estimands(cutpoints: np.ndarray, beta: np.ndarray, item_effects: np.ndarray,
              sigma: np.ndarray, cells: pd.DataFrame, levels: Mapping[str, Sequence[str]],
              threshold: int, rater: str = "new", weights: np.ndarray | None = None,
              factors: Sequence[str] | None = None,
              item_deviations: Mapping[str, np.ndarray] | None = None,
              ) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Every measure of :data:`ESTIMAND_MEASURES` for a new or a typical rater (see :data:`RATERS`).

    The simulator's truth and the posterior's contrasts both come from here.

    Parameters
    ----------
    cutpoints, beta, item_effects, sigma, cells, levels, threshold, weights, factors, \
item_deviations
        As in :func:`standardised_contrasts`.
    rater : {"new", "typical"}
        ``"new"``: averaged over ``u ~ N(0, sigma^2)``; ``"typical"``: at ``u = 0`` (sigma
        set to zero).

    Returns
    -------
    dict
        ``{(factor, level): {measure: array (S,)}}``: the entries of
        :func:`standardised_contrasts` plus ``log_odds``, ``odds_ratio`` and ``mean_rating``.
    """
    if rater not in RATERS:
        raise ValueError(f"rater={rater!r}: expected one of {', '.join(RATERS)}")
    sigma = np.atleast_1d(np.asarray(sigma, float))
    if rater == "typical":
        sigma = np.zeros_like(sigma)
    beta = np.atleast_2d(beta)
    names = coef_names(levels)
    out = standardised_contrasts(cutpoints, beta, item_effects, sigma, cells, levels, threshold,
                                 weights=weights, factors=factors,
                                 item_deviations=item_deviations)
    for key, stats in out.items():
        b = beta[:, names.index(key)]
        stats.update(log_odds=b, odds_ratio=np.exp(b), mean_rating=stats["mean_diff"])
    return out


def estimand_records(cutpoints: np.ndarray, beta: np.ndarray, item_effects: np.ndarray,
                     sigma: float, cells: pd.DataFrame, levels: Mapping[str, Sequence[str]],
                     scale: int, item_deviations: Mapping[str, np.ndarray] | None = None,
                     ) -> list[dict]:
    """Known (true) values of every estimand of one dimension, as JSON-ready rows.

    Parameters
    ----------
    cutpoints : array (K-1,)
    beta : array (P,)
    item_effects : array (J,)
    sigma : float
    cells : DataFrame
        The raters' factor cells (equal weights).
    levels : mapping
        Levels per factor, reference first.
    scale : int
        Number of rating categories K.
    item_deviations : mapping, optional
        Group-by-item deviations per factor, each (1, J, L_f).

    Returns
    -------
    list of dict
        Keys ``factor, level, reference, rater, measure, threshold, estimate``; for each
        non-reference level and rater definition (:data:`RATERS`): ``log_odds``, ``odds_ratio``
        and ``mean_rating`` (``threshold`` None), then ``relative_pct`` and ``pp`` at every
        threshold 2..K.
    """
    names = coef_names(levels)
    per = {(rater, t): estimands(np.asarray(cutpoints)[None], np.asarray(beta)[None],
                                 np.asarray(item_effects)[None], np.array([sigma]), cells,
                                 levels, t, rater, item_deviations=item_deviations)
           for rater in RATERS for t in range(2, scale + 1)}
    rows = []
    for f, lv in names:
        for rater in RATERS:
            which = [(m, None) for m in ("log_odds", "odds_ratio", "mean_rating")] + [
                (m, t) for t in range(2, scale + 1) for m in ("relative_pct", "pp")]
            for m, t in which:
                value = per[(rater, t or scale)][(f, lv)][m][0]
                rows.append({"factor": f, "level": lv, "reference": levels[f][0],
                             "rater": rater, "measure": m, "threshold": t,
                             "estimate": float(value)})
    return rows
