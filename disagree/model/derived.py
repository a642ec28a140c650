"""Derived quantities a fit's standard outputs report, draw by draw, for the diagnostics.

R-hat and ESS of the sampled parameters do not bound those of a nonlinear function of them, so
``diagnostics.json`` (and the sample-until-ok target) judge the reported quantities too:

``contrasts``
    ``relative_pct`` and ``pp`` of the default contrasts table (every non-reference level of
    every factor on every dimension, a new rater of the group, the default threshold), from
    :func:`disagree.model.contrasts.standardised_draws`, the draws
    :func:`disagree.model.contrasts_table` summarises. ``log_odds`` is the coefficient
    ``beta``, judged as a sampled parameter.
``population_p_high``
    The probability of a high rating (``rating >= threshold``) on every item and dimension for
    the population of the sample (the fit's raters' factor cells, each rater weighted equally,
    the rater effect integrated over ``N(0, rater_sd^2)``, each cell meeting its own item effect
    with interactions): P(high) of the population soft labels (``disagree softlabels``, unit
    ``population``), computed here in the model stage (the labels stage comes later in the
    data flow). The rater-effect integral is the trapezoid rule on a grid of step
    ``min(0.5, rater_sd / 2)`` (exact to rounding: the integrand is a Gaussian times a logistic),
    or Gauss-Hermite nodes per cell for draws with a tiny ``rater_sd``.

Each is an ``xarray.DataArray`` with dims ``(chain, draw, quantity)``, ``quantity`` naming
each one, e.g. ``relative_pct[toxicity, gender[male]]`` or ``p_high[toxicity, p03-2]``.
"""

from __future__ import annotations

from collections.abc import Callable

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import expit

from disagree.data.scale import high_threshold
from disagree.model.contrasts import cells_from_design, item_deviations, standardised_draws
from disagree.model.draws import flat_draws
from disagree.model.spec import ModelSpec
from disagree.ordinal import (
    coef_names,
    collapse_cells,
    design_matrix,
    gauss_hermite,
    profile_item_effects,
)

#: The contrast measures judged (``log_odds`` is ``beta``, a sampled parameter).
CONTRAST_MEASURES = ("relative_pct", "pp")
#: About how many float64 values the largest temporary array holds (32 MB).
CHUNK_SIZE = 4_000_000
#: Gauss-Hermite nodes a cell for draws whose rater sd is too small for the grid.
N_NODES = 20


def derived_families(idata: az.InferenceData, spec: ModelSpec
                     ) -> dict[str, Callable[[], xr.DataArray]]:
    """Return the derived families of ``idata``, each computed when called (module docstring).

    Parameters
    ----------
    idata : InferenceData
        A posterior with ``constant_data`` (``rater_design``, ``obs_item``,
        ``obs_dimension``).
    spec : ModelSpec
        The fit's specification (levels, dimensions, scale, interactions).

    Returns
    -------
    dict
        ``{"contrasts": f, "population_p_high": g}``, each returning a DataArray
        ``(chain, draw, quantity)``.
    """
    return {"contrasts": lambda: contrast_quantities(idata, spec),
            "population_p_high": lambda: population_p_high(idata, spec)}


def contrast_quantities(idata: az.InferenceData, spec: ModelSpec) -> xr.DataArray:
    """Draws of ``relative_pct`` and ``pp`` of the default contrasts table.

    Parameters
    ----------
    idata : InferenceData
        A posterior with ``constant_data``.
    spec : ModelSpec

    Returns
    -------
    DataArray
        ``(chain, draw, quantity)``, quantities ``{measure}[{dimension}, {factor}[{level}]]``
        by dimension, coefficient and measure.
    """
    threshold = high_threshold(spec.scale)
    names, columns = [], []
    for d, dim in enumerate(spec.dimensions):
        res = standardised_draws(idata, spec.levels, d, threshold, spec.interactions)
        for factor, level in coef_names(spec.levels):
            for measure in CONTRAST_MEASURES:
                names.append(f"{measure}[{dim}, {factor}[{level}]]")
                columns.append(res[(factor, level)][measure])
    return _as_quantities(idata.posterior, np.column_stack(columns), names)


def population_p_high(idata: az.InferenceData, spec: ModelSpec,
                      threshold: int | None = None) -> xr.DataArray:
    """Draws of the sample population's probability of a high rating on every item.

    Parameters
    ----------
    idata : InferenceData
        A posterior with ``constant_data``.
    spec : ModelSpec
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).

    Returns
    -------
    DataArray
        ``(chain, draw, quantity)``, quantities ``p_high[{dimension}, {item}]``, every item of
        the fit on every dimension (dimension-major).
    """
    post, cd = idata.posterior, idata.constant_data
    threshold = high_threshold(spec.scale) if threshold is None else int(threshold)
    cells, weights = collapse_cells(cells_from_design(cd["rater_design"].values, spec.levels))
    x = design_matrix(cells, spec.levels)
    item_ids = [str(j) for j in (post.coords["item"].values if "item" in post.coords
                                 else range(post.sizes["item"]))]
    names, blocks = [], []
    for d, dim in enumerate(spec.dimensions):
        cut = flat_draws(post, "cutpoints", d)[:, threshold - 2]
        shift = flat_draws(post, "beta", d) @ x.T - cut[:, None]  # (S, C)
        effects, profile = profile_item_effects(
            flat_draws(post, "item_effect", d),
            item_deviations(post, spec.levels, spec.interactions, d), cells, spec.levels)
        blocks.append(mixture_high(shift, flat_draws(post, "rater_sd", d), effects, profile,
                                   weights))
        names += [f"p_high[{dim}, {j}]" for j in item_ids]
    return _as_quantities(post, np.concatenate(blocks, axis=1), names)


def mixture_high(shift: np.ndarray, sigma: np.ndarray, effects: np.ndarray,
                 profile: np.ndarray, weights: np.ndarray,
                 chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """``sum_c w_c E_u[logistic(shift_c + u + v_{q(c), j})]``, ``u ~ N(0, sigma^2)``, per draw.

    Parameters
    ----------
    shift : array (S, C)
        ``x_c . beta - c_{t-1}`` of each cell.
    sigma : array (S,)
        Rater-effect sd.
    effects : array (S, Q, J)
        Item effects of each interaction profile.
    profile : int array (C,)
        Profile of each cell.
    weights : array (C,)
        Cell weights (normalised here).
    chunk_size : int
        About how many values the largest temporary array holds.

    Returns
    -------
    ndarray (S, J)
    """
    n_draws, n_cells = shift.shape
    n_prof, n_items = effects.shape[1:]
    w = np.asarray(weights, float) / np.sum(weights)
    onehot = (np.asarray(profile)[:, None] == np.arange(n_prof)) * w[:, None]  # (C, Q)
    step = np.minimum(0.5, sigma / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_grid = np.where(sigma > 1e-9, np.ceil((np.ptp(shift, axis=1) + 16 * sigma) / step)
                          + 1, np.inf)
    grid = n_grid <= max(200, n_cells * N_NODES)  # grid points vs nodes, both per profile
    out = np.empty((n_draws, n_items))
    for idx, n_points in ((np.flatnonzero(grid), n_grid[grid].max(initial=1)),
                          (np.flatnonzero(~grid), n_cells * N_NODES)):
        per_draw = n_prof * int(n_points) * n_items
        for block in np.array_split(idx, max(1, int(np.ceil(len(idx) * per_draw / chunk_size)))):
            if not len(block):
                continue
            if grid[block[0]]:
                points, mass = _grid(shift[block], sigma[block], step[block], onehot)
            else:
                points, mass = _nodes(shift[block], sigma[block], onehot)
            z = expit(points[:, None, :, None] + effects[block][:, :, None, :])  # (s,Q,P,J)
            out[block] = np.einsum("sqp,sqpj->sj", mass, z)
    return out


def _grid(shift: np.ndarray, sigma: np.ndarray, step: np.ndarray, onehot: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Grid points (s, G) and each profile's mass on them (s, Q, G): the trapezoid rule."""
    n = int(np.ceil((np.ptp(shift, axis=1) + 16 * sigma) / step).max()) + 1
    points = (shift.min(axis=1) - 8 * sigma)[:, None] + step[:, None] * np.arange(n)
    dens = np.exp(-0.5 * ((points[:, None, :] - shift[:, :, None])
                          / sigma[:, None, None]) ** 2)  # (s, C, G)
    dens /= dens.sum(axis=-1, keepdims=True)
    return points, np.einsum("scg,cq->sqg", dens, onehot)


def _nodes(shift: np.ndarray, sigma: np.ndarray, onehot: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite points of every cell (s, C * N) and each profile's mass (s, Q, C * N)."""
    nodes, gh = gauss_hermite(N_NODES)
    points = (shift[:, :, None] + sigma[:, None, None] * nodes).reshape(len(shift), -1)
    mass = (onehot.T[:, :, None] * gh).reshape(onehot.shape[1], -1)  # (Q, C * N)
    return points, np.broadcast_to(mass, (len(shift), *mass.shape))


def _as_quantities(post: xr.Dataset, values: np.ndarray, names: list[str]) -> xr.DataArray:
    """Reshape flat draws (S, n) back to ``(chain, draw, quantity)``."""
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    return xr.DataArray(values.reshape(n_chain, n_draw, -1), dims=("chain", "draw", "quantity"),
                        coords={"quantity": names})
