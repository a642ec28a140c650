"""Pair preferences: the probability that a member of a unit, shown two responses, prefers one.

Depends on :mod:`disagree.model` (the fit), :mod:`disagree.labels.posterior` and
:mod:`disagree.labels.pair_kernels`. ``pair_preferences(fit, pairs, dimension, unit=...)``
returns, for every pair ``(item_a, item_b)`` and unit, ``P(a rated better) + P(tie) / 2`` for
*one* rater of the unit rating both responses:

``"rater"``
    Each rater of the fit (or of ``raters``), with its own posterior effect ``u_r`` in every
    draw, the same for both responses; averaged over the draws.
``"group"``
    The group ``{factor: level, ...}``: its factor cells (the other factors at the mix of the
    fit's raters in the group, as in :func:`disagree.labels.soft_labels`), each cell with its
    own interaction deviations, and a rater effect ``u ~ N(0, rater_sd^2)`` shared by the two
    ratings; averaged over ``u``, the cells (by their weights) and the draws.
``"population"``
    The same over the sample's cells, or over a target ``population``'s.

Given the draw, the cell and ``u``, the two ratings are independent. This is not the
comparison of the unit's two soft labels (the ``p_1..p_K`` of :func:`soft_labels`), which are
marginal over the rater effect: comparing those compares two *different* random raters,
counts the rater effect twice and pulls every preference toward 1/2 (for 5 points with cut
points ``-1.5, -0.5, 0.5, 1.5``, item effects ``+-1`` and rater sd 1.5: 0.756 for one rater,
0.717 for two).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disagree.errors import ModelError
from disagree.labels.kernels import CHUNK_SIZE
from disagree.labels.pair_kernels import mixture_preferences, rater_preferences
from disagree.labels.posterior import Posterior, mixture_units
from disagree.labels.soft import check_arguments
from disagree.model.fitting import Fit, as_fit
from disagree.ordinal import design_matrix

#: Column of :func:`pair_preferences` holding the probability that ``item_a`` is preferred.
PREFERENCE = "preference"


def pair_preferences(fit: Fit | str | os.PathLike[str], pairs: pd.DataFrame, dimension: str,
                     unit: str = "population", group: Mapping[str, str] | None = None,
                     raters: Sequence[str] | None = None,
                     population: pd.DataFrame | str | os.PathLike[str] | None = None,
                     lower_is_better: bool = True, draws: int | None = None,
                     n_nodes: int = 24, chunk_size: int = CHUNK_SIZE,
                     progress: bool = False) -> pd.DataFrame:
    """Probability that one rater of the unit prefers ``item_a`` to ``item_b``, ties half.

    Parameters
    ----------
    fit : Fit or path
        A fitted (or loaded) model, or its fit directory.
    pairs : DataFrame
        Columns ``item_a`` and ``item_b`` (item ids of the fit); other columns are kept.
    dimension : str
        One dimension of the fit.
    unit : {"population", "group", "rater"}
        Whose preference (see the module docstring).
    group : mapping, optional
        ``unit="group"`` only, and required there: ``{factor: level}`` of factors of the fit.
    raters : sequence of str, optional
        ``unit="rater"`` only: these raters of the fit (default all), in the fit's order.
    population : DataFrame or path, optional
        ``unit="population"`` only: target cells and proportions (default the sample's
        raters); see :func:`disagree.model.population_cells`.
    lower_is_better : bool
        Direction of the dimension: ``item_a`` is better when rated lower (toxicity) or
        higher (helpfulness).
    draws : int, optional
        Use this many posterior draws, evenly spaced over the chains; default all.
    n_nodes : int
        Gauss-Hermite nodes per cell where the rater effect is integrated node by node (units
        of few cells; many cells share a grid, see :mod:`disagree.labels.pair_kernels`).
    chunk_size : int
        About how many float64 values the largest temporary array holds.
    progress : bool
        Show a progress bar.

    Returns
    -------
    DataFrame
        The columns of ``pairs``, then the unit columns (``population``; the group's factors;
        ``rater_id``) and ``preference``; one row per pair and unit, pairs in the given order,
        each pair's units together. ``preference`` of ``(a, b)`` and ``(b, a)`` sum to 1.

    Raises
    ------
    ModelError
        For an unknown unit, dimension, item, rater, group factor or level, arguments given
        with the wrong unit, ``pairs`` without ``item_a``/``item_b``, or a non-positive
        ``draws``, ``n_nodes`` or ``chunk_size``.
    """
    check_arguments(unit, None, population, draws, n_nodes, chunk_size)
    if group is not None and unit != "group":
        raise ModelError(f"group={dict(group)!r} is only used with unit='group' "
                         f"(got unit={unit!r})")
    if unit == "group" and not group:
        raise ModelError("unit='group' needs group={factor: level}, "
                         "e.g. group={'politics': 'conservative'}")
    if raters is not None and unit != "rater":
        raise ModelError(f"raters is only used with unit='rater' (got unit={unit!r})")
    missing = [c for c in ("item_a", "item_b") if c not in pairs.columns]
    if missing:
        raise ModelError(f"pairs lack column(s) {', '.join(missing)}; expected item_a, item_b "
                         f"(found: {', '.join(map(str, pairs.columns)) or '(none)'})")
    if not isinstance(dimension, str):
        raise ModelError(f"dimension={dimension!r}: expected one dimension name")
    fit = as_fit(fit)
    a_ids, b_ids = pairs["item_a"].astype(str), pairs["item_b"].astype(str)
    post = Posterior.extract(fit, [dimension], sorted(set(a_ids) | set(b_ids)) or None, draws,
                             rater_effects=unit == "rater")
    where = pd.Index(post.item_ids)
    item_a, item_b = where.get_indexer(a_ids), where.get_indexer(b_ids)
    n_draws = post.cutpoints.shape[1]
    if unit == "rater":
        chosen = _rater_positions(post.rater_ids, raters)
        units = pd.DataFrame({"rater_id": np.asarray(post.rater_ids, dtype=object)[chosen]})
        effects, profiles = post.profile_effects(0)
        with _bar(progress, n_draws * len(pairs) * len(chosen), unit) as bar:
            prefs = rater_preferences(
                post.cutpoints[0], post.rater_linear(0)[:, chosen], effects, item_a, item_b,
                profiles=profiles[chosen], lower_is_better=lower_is_better,
                chunk_size=chunk_size, bar=bar)
    else:
        units, cells, weights = _unit_cells(fit, unit, group, population)
        effects, profiles = post.profile_effects(0, cells)
        eta = post.beta[0] @ design_matrix(cells, fit.spec.levels).T
        with _bar(progress, n_draws * len(pairs), unit) as bar:
            prefs = mixture_preferences(
                post.cutpoints[0], eta, weights, np.zeros(len(cells), dtype=int), effects,
                post.rater_sd[0], item_a, item_b, profiles=profiles,
                lower_is_better=lower_is_better, n_nodes=n_nodes, chunk_size=chunk_size,
                bar=bar)
    out = pairs.iloc[np.repeat(np.arange(len(pairs)), len(units))].reset_index(drop=True)
    for col in units.columns:
        out[col] = np.tile(units[col].to_numpy(dtype=object), len(pairs))
    out[PREFERENCE] = prefs.T.ravel()  # (units, pairs) -> pair-major
    return out


def _rater_positions(rater_ids: list[str], raters: Sequence[str] | None) -> np.ndarray:
    """Positions of the chosen raters in the fit's order (all by default)."""
    if raters is None:
        return np.arange(len(rater_ids))
    wanted = {str(r) for r in raters}
    unknown = sorted(wanted - set(rater_ids))
    if unknown:
        raise ModelError(f"rater(s) {', '.join(map(repr, unknown[:5]))} not in the fit "
                         f"({len(rater_ids)} raters)")
    return np.asarray([i for i, r in enumerate(rater_ids) if r in wanted], dtype=int)


def _unit_cells(fit: Fit, unit: str, group: Mapping[str, str] | None,
                population: object) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Return the unit (one row), its factor cells and their weights."""
    if unit == "population":
        units, cells, weights, _ = mixture_units(fit, "population", None, population)
        return units, cells, weights
    levels = fit.spec.levels
    outside = [f for f in group if f not in levels]
    if outside:
        raise ModelError(f"group factor {', '.join(map(repr, outside))} is not a factor of the "
                         f"fit; factors are {', '.join(levels)}")
    for factor, level in group.items():
        if str(level) not in levels[factor]:
            raise ModelError(f"group level {factor}={level!r} is not in the fit; levels of "
                             f"{factor!r} are {', '.join(levels[factor])}")
    units, cells, weights, groups = mixture_units(fit, "group", list(group), None)
    mask = np.logical_and.reduce([units[f].astype(str) == str(v) for f, v in group.items()])
    index = int(np.flatnonzero(mask)[0])
    mine = groups == index
    return (units.iloc[[index]].reset_index(drop=True), cells[mine].reset_index(drop=True),
            weights[mine])


def _bar(progress: bool, total: int, unit: str) -> tqdm:
    """Return a progress bar (disabled unless ``progress``)."""
    return tqdm(total=total, disable=not progress, desc=f"pair preferences ({unit})",
                unit_scale=True)

