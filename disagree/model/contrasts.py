"""Posterior contrasts: every non-reference level of every factor, on every dimension.

Measures (tidy table of DESIGN.md): ``log_odds`` (the coefficient), ``relative_pct`` (percent
difference, level vs reference, in the probability of a high rating) and ``pp`` (percentage
points). Probabilities are standardised (:mod:`disagree.ordinal`): averaged over the items rated
on the dimension and over the rater-effect distribution, with the other attributes held at the
sample's mix of raters, or at a target population's mix when one is given.
With ``on="mean"``, ``relative_pct`` and ``mean_diff`` refer to the expected rating instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from disagree._io import read_table
from disagree.data.scale import high_threshold
from disagree.errors import ModelError
from disagree.model.draws import flat_draws
from disagree.ordinal import coef_names, standardised_contrasts

COLUMNS = ["dimension", "factor", "level", "reference", "measure", "estimate", "lower", "upper"]


def contrasts_table(idata: az.InferenceData, levels: Mapping[str, Sequence[str]],
                    dimensions: Sequence[str], scale: int, threshold: int | None = None,
                    on: str = "high",
                    population: pd.DataFrame | str | os.PathLike[str] | None = None,
                    ci: float = 0.95, interactions: Sequence[str] = ()) -> pd.DataFrame:
    """Compute the contrasts table from a posterior (see the module docstring).

    Parameters
    ----------
    idata : InferenceData
        A disagree posterior (with ``constant_data``).
    levels : mapping
        Levels per factor, reference first.
    dimensions : sequence of str
    scale : int
        Number of rating categories K.
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).
    on : {"high", "mean"}
        Contrast the probability of a high rating (``relative_pct``, ``pp``) or the expected
        rating (``relative_pct``, ``mean_diff``).
    population : DataFrame or path, optional
        Target population: factor columns and a ``proportion`` column, or a file of it (see
        :func:`population_cells`).
    ci : float
        Probability mass of the equal-tailed intervals.
    interactions : sequence of str
        Interaction factors of the fit: each group's probability is then averaged over the
        items with that group's own item effects (``item_effect + item_group_effect``).

    Returns
    -------
    DataFrame
        Columns ``dimension, factor, level, reference, measure, estimate, lower, upper``.
    """
    if on not in ("high", "mean"):
        raise ModelError(f"on={on!r}: expected 'high' or 'mean'")
    threshold = high_threshold(scale) if threshold is None else int(threshold)
    if not 2 <= threshold <= scale:
        raise ModelError(f"threshold {threshold} must be between 2 and {scale} (the scale)")
    post = idata.posterior
    names = coef_names(levels)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    rows = []
    for d, dim in enumerate(dimensions):
        beta = flat_draws(post, "beta", d)  # (S, P)
        res = _standardised(idata, post, levels, d, threshold, population, interactions)
        for p, (factor, level) in enumerate(names):
            stats = res[(factor, level)]
            if on == "high":
                measures = {"log_odds": beta[:, p], "relative_pct": stats["relative_pct"],
                            "pp": stats["pp"]}
            else:
                measures = {"log_odds": beta[:, p],
                            "relative_pct": 100 * stats["mean_diff"] / stats["mean_reference"],
                            "mean_diff": stats["mean_diff"]}
            for measure, draws in measures.items():
                rows.append({"dimension": dim, "factor": factor, "level": level,
                             "reference": levels[factor][0], "measure": measure,
                             "estimate": float(np.mean(draws)),
                             "lower": float(np.quantile(draws, lo_q)),
                             "upper": float(np.quantile(draws, hi_q))})
    return pd.DataFrame(rows, columns=COLUMNS)


def contrast_draws(fit: Any, dimension: str, factor: str, threshold: int | None = None,
                   measure: str = "p_level",
                   population: pd.DataFrame | str | os.PathLike[str] | None = None
                   ) -> dict[str, np.ndarray]:
    """Posterior draws of one factor's standardised contrasts on one dimension, per level.

    For differences between any two levels (``draws[a] - draws[b]``), e.g. Figure 2's
    "female minus male".

    Parameters
    ----------
    fit : Fit
        A fitted or loaded model.
    dimension : str
    factor : str
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).
    measure : {"p_level", "pp"}
        The level's probability of a high rating in percentage points averaged over the
        items and the raters' mix (``p_level``), or its difference to the reference (``pp``).
    population : DataFrame or path, optional
        Target population (see :func:`contrasts_table`).

    Returns
    -------
    dict
        Level -> draws (S,), every level of ``factor`` (the reference too).
    """
    spec = fit.spec
    if dimension not in spec.dimensions:
        raise ModelError(f"dimension {dimension!r} is not in the fit "
                         f"({', '.join(spec.dimensions)})")
    if factor not in spec.levels:
        raise ModelError(f"factor {factor!r} is not in the fit ({', '.join(spec.levels)})")
    if measure not in ("p_level", "pp"):
        raise ModelError(f"measure={measure!r}: expected 'p_level' or 'pp'")
    threshold = high_threshold(spec.scale) if threshold is None else int(threshold)
    post = fit.idata.posterior
    res = _standardised(fit.idata, post, spec.levels, list(spec.dimensions).index(dimension),
                        threshold, population, spec.interactions, factors=[factor])
    ref, others = spec.levels[factor][0], spec.levels[factor][1:]
    first = res[(factor, others[0])]
    out = {ref: 100 * first["p_reference"] if measure == "p_level" else 0 * first["pp"]}
    for level in others:
        out[level] = 100 * res[(factor, level)]["p_level"] if measure == "p_level" \
            else res[(factor, level)]["pp"]
    return out


def _standardised(idata: az.InferenceData, post: xr.Dataset, levels: Mapping[str, Sequence[str]],
                  d: int, threshold: int, population: Any, interactions: Sequence[str],
                  factors: Sequence[str] | None = None) -> dict:
    cd = idata.constant_data
    sample_cells = cells_from_design(cd["rater_design"].values, levels)
    cells, weights = (sample_cells, None) if population is None else \
        population_cells(population, sample_cells, levels)
    items = np.unique(cd["obs_item"].values[cd["obs_dimension"].values == d])
    return standardised_contrasts(
        flat_draws(post, "cutpoints", d), flat_draws(post, "beta", d),
        flat_draws(post, "item_effect", d)[:, items], flat_draws(post, "rater_sd", d), cells,
        levels, threshold, weights=weights, factors=factors,
        item_deviations=item_deviations(post, levels, interactions, d, items))


def item_deviations(post: xr.Dataset, levels: Mapping[str, Sequence[str]],
                    interactions: Sequence[str], d: int,
                    items: np.ndarray | slice = slice(None),
                    pick: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Group-by-item deviations of dimension ``d``, per interaction factor, shape (S, J, L_f).

    Parameters
    ----------
    post : xarray.Dataset
        The posterior (``chain`` and ``draw`` first; read lazily, see :func:`flat_draws`).
    levels : mapping
        Levels per factor, reference first.
    interactions : sequence of str
        Interaction factors of the fit (empty: returns ``{}``).
    d : int
        Position of the dimension.
    items : int array or slice
        Positions of the items to take.
    pick : int array, optional
        Sorted positions of the draws to take (chain-major); default all.

    Returns
    -------
    dict
        ``{factor: array (S, J, L_f)}`` with levels in the order of ``levels[factor]``.
    """
    if not interactions:
        return {}
    labels = [str(v) for v in post.coords["interaction_level"].values]
    values = flat_draws(post, "item_group_effect", d, pick)[:, items]  # (S, J, all levels)
    return {f: values[:, :, [labels.index(f"{f}[{lv}]") for lv in levels[f]]]
            for f in interactions}


def cells_from_design(x: np.ndarray, levels: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Decode a dummy-coded design (rows of 0/1) back into factor levels."""
    names = coef_names(levels)
    out = {}
    for factor, lvs in levels.items():
        cols = [i for i, (f, _) in enumerate(names) if f == factor]
        codes = np.zeros(len(x), dtype=int)
        if cols:
            sub = x[:, cols]
            codes = np.where(sub.max(axis=1) > 0, sub.argmax(axis=1) + 1, 0)
        out[factor] = np.asarray(lvs, dtype=object)[codes]
    return pd.DataFrame(out)


def population_cells(population: pd.DataFrame | str | os.PathLike[str], sample: pd.DataFrame,
                     levels: Mapping[str, Sequence[str]]) -> tuple[pd.DataFrame, np.ndarray]:
    """Turn a target-population table (or a CSV/TSV/Parquet file of one) into weighted cells.

    The table has one column per factor it fixes and a ``proportion`` column. Factors it
    does not mention keep the sample's joint mix (within each population cell), so a table of
    gender x politics shares is enough.

    Returns
    -------
    (DataFrame, ndarray)
        Cells (one column per factor) and their weights (summing to 1).
    """
    if not isinstance(population, pd.DataFrame):
        population = read_table(population, error=ModelError, what="population cells")
    if "proportion" not in population.columns:
        raise ModelError("population table needs a 'proportion' column (the share of each "
                         f"cell); found: {', '.join(map(str, population.columns))}")
    given = [c for c in population.columns if c != "proportion"]
    unknown = [c for c in given if c not in levels]
    if unknown:
        raise ModelError(f"population column(s) {', '.join(unknown)} are not factors of the "
                         f"fit ({', '.join(levels)})")
    if not given:
        raise ModelError("population table names no factor column")
    pop = population.copy()
    for c in given:
        pop[c] = pop[c].astype(str)
        bad = sorted(set(pop[c]) - set(levels[c]))
        if bad:
            raise ModelError(f"population: level(s) {', '.join(bad)} of {c!r} are not in the "
                             f"fit; levels are {', '.join(levels[c])}")
    share = pd.to_numeric(pop["proportion"], errors="coerce")
    if share.isna().any() or (share < 0).any() or share.sum() <= 0:
        raise ModelError("population: 'proportion' must be non-negative numbers with a "
                         "positive sum")
    pop["proportion"] = share / share.sum()
    pop = pop.groupby(given, as_index=False)["proportion"].sum()
    rest = [c for c in levels if c not in given]
    if not rest:
        return pop[list(levels)], pop["proportion"].to_numpy()
    mix = sample.groupby(rest).size().rename("w").reset_index()
    mix["w"] = mix["w"] / mix["w"].sum()
    cells = pop.merge(mix, how="cross")
    return cells[list(levels)], (cells["proportion"] * cells["w"]).to_numpy()
