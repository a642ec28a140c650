"""Posterior contrasts: every non-reference level of every factor, on every dimension.

Measures (tidy table of DESIGN.md, :data:`MEASURES`): ``log_odds`` (the coefficient),
``odds_ratio`` (its exponential: the odds ratio of a rating at or above any threshold, the
same for every rater and threshold), ``relative_pct`` (percent difference, level vs reference,
in the probability of a high rating), ``pp`` (the same in percentage points) and
``mean_rating`` (difference in the expected rating, in scale points). Probabilities and means
are standardised (:mod:`disagree.ordinal`): averaged over the items rated on the dimension and
over the rater-effect distribution (a new rater of the group, ``rater="new"``, the default) or
at the typical rater (``u = 0``, ``rater="typical"``), with the other attributes held at the
sample's mix of raters, or at a target population's mix when one is given.
:func:`estimand_text` says it in a sentence; :data:`HEADLINE_ESTIMAND` is the headline's.
The default table is ``log_odds``, ``relative_pct`` and ``pp`` for a new rater; ``on="mean"``
gives ``log_odds`` and ``mean_rating``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from disagree._io import read_table
from disagree.data.scale import high_threshold
from disagree.errors import DisagreeWarning, ModelError
from disagree.model.draws import flat_draws
from disagree.ordinal import ESTIMAND_MEASURES, RATERS, coef_names, estimands

COLUMNS = ["dimension", "factor", "level", "reference", "rater", "measure", "estimate",
           "lower", "upper"]
#: Every measure :func:`contrasts_table` offers (see the module docstring).
MEASURES = ESTIMAND_MEASURES
#: The measures of the default table, by ``on``.
DEFAULT_MEASURES = {"high": ("log_odds", "relative_pct", "pp"),
                    "mean": ("log_odds", "mean_rating")}


def contrasts_table(idata: az.InferenceData, levels: Mapping[str, Sequence[str]],
                    dimensions: Sequence[str], scale: int, threshold: int | None = None,
                    on: str = "high",
                    population: pd.DataFrame | str | os.PathLike[str] | None = None,
                    ci: float = 0.95, interactions: Sequence[str] = (),
                    rater: str | Sequence[str] = "new",
                    measures: str | Sequence[str] | None = None) -> pd.DataFrame:
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
        The default measures (:data:`DEFAULT_MEASURES`): the probability of a high rating
        (``log_odds``, ``relative_pct``, ``pp``) or the expected rating (``log_odds``,
        ``mean_rating``). Ignored when ``measures`` is given.
    population : DataFrame or path, optional
        Target population: factor columns and a ``proportion`` column, or a file of it (see
        :func:`population_cells`).
    ci : float
        Probability mass of the equal-tailed intervals.
    interactions : sequence of str
        Interaction factors of the fit: each group's probability is then averaged over the
        items with that group's own item effects (``item_effect + item_group_effect``).
    rater : {"new", "typical"} or sequence of them
        A new rater of the group (averaged over the rater-effect distribution, the default)
        or the typical rater (rater effect 0); a sequence gives the rows of each.
    measures : str or sequence of str, optional
        Measures to report, from :data:`MEASURES` (``"all"``: every one); default by ``on``.

    Returns
    -------
    DataFrame
        Columns ``dimension, factor, level, reference, rater, measure, estimate, lower,
        upper``; rows by dimension, coefficient, rater and measure, in the order asked.
    """
    if on not in DEFAULT_MEASURES:
        raise ModelError(f"on={on!r}: expected 'high' or 'mean'")
    chosen = _choose(measures, MEASURES + ("all",), "measures", DEFAULT_MEASURES[on])
    chosen = list(MEASURES) if "all" in chosen else chosen
    raters = _choose(rater, RATERS, "rater", ())
    threshold = high_threshold(scale) if threshold is None else int(threshold)
    if not 2 <= threshold <= scale:
        raise ModelError(f"threshold {threshold} must be between 2 and {scale} (the scale)")
    names = coef_names(levels)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    rows = []
    for d, dim in enumerate(dimensions):
        res = {r: standardised_draws(idata, levels, d, threshold, interactions, population,
                                     rater=r) for r in raters}
        for factor, level in names:
            for r in raters:
                for measure in chosen:
                    draws = res[r][(factor, level)][measure]
                    rows.append({"dimension": dim, "factor": factor, "level": level,
                                 "reference": levels[factor][0], "rater": r,
                                 "measure": measure, "estimate": float(np.mean(draws)),
                                 "lower": float(np.quantile(draws, lo_q)),
                                 "upper": float(np.quantile(draws, hi_q))})
    return pd.DataFrame(rows, columns=COLUMNS)


def estimand_text(scale: int = 5, threshold: int | None = None, rater: str = "new",
                  population: bool = False, measure: str = "relative_pct") -> str:
    """One sentence stating what a contrast of the table estimates.

    Parameters
    ----------
    scale : int
        Number of rating categories K (ratings 1..K).
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).
    rater : {"new", "typical"}
    population : bool
        Whether the contrasts are poststratified to a target population.
    measure : str
        One of :data:`MEASURES`.

    Returns
    -------
    str
        E.g. :data:`HEADLINE_ESTIMAND`.
    """
    (measure,) = _choose(measure, MEASURES, "measure", ())
    (rater,) = _choose(rater, RATERS, "rater", ())
    threshold = high_threshold(scale) if threshold is None else int(threshold)
    high = f"the probability of a rating of {threshold} or higher on the 1-{scale} scale"
    what = {"log_odds": "the log odds ratio (the coefficient)",
            "odds_ratio": f"the odds ratio of a rating at or above any threshold on the 1-{scale} "
                          "scale (the exponentiated coefficient)",
            "relative_pct": f"the percent difference in {high}",
            "pp": f"the difference in percentage points in {high}",
            "mean_rating": f"the difference in expected rating on the 1-{scale} scale, in "
                           "scale points"}[measure]
    if measure in ("log_odds", "odds_ratio"):
        whom = ("for any one rater (conditional on the rater's effect, so the same for a new "
                "and for a typical rater) and item (before any group-by-item deviation)")
    else:
        whom = (("for a new rater of each group (averaged over the fitted distribution of "
                 "rater effects)" if rater == "new" else
                 "for a typical rater of each group (rater effect 0)")
                + ", averaged over the items rated on the dimension and over the "
                + ("target population's" if population else "sample's")
                + " mix of the other rater attributes")
    return f"{measure}: {what}, level vs reference, {whom}."


def _choose(value: str | Sequence[str] | None, allowed: Sequence[str], name: str,
            default: Sequence[str]) -> list[str]:
    """Validate a name or sequence of names against ``allowed``; None gives ``default``."""
    if value is None:
        return list(default)
    values = [value] if isinstance(value, str) else list(value)
    bad = [v for v in values if v not in allowed]
    if bad or not values or len(set(values)) < len(values):
        raise ModelError(f"{name}={value!r}: expected distinct names from "
                         f"{', '.join(allowed)}")
    return values


#: The estimand of the headline contrasts (``relative_pct`` of the default table, 5 points).
HEADLINE_ESTIMAND = estimand_text()


def contrast_draws(fit: Any, dimension: str, factor: str, threshold: int | None = None,
                   measure: str = "p_level",
                   population: pd.DataFrame | str | os.PathLike[str] | None = None,
                   rater: str = "new") -> dict[str, np.ndarray]:
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
    rater : {"new", "typical"}
        A new rater of each level (averaged over the rater effects) or the typical one.

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
    (rater,) = _choose(rater, RATERS, "rater", ())
    threshold = high_threshold(spec.scale) if threshold is None else int(threshold)
    res = standardised_draws(fit.idata, spec.levels, list(spec.dimensions).index(dimension),
                             threshold, spec.interactions, population, factors=[factor],
                             rater=rater)
    ref, others = spec.levels[factor][0], spec.levels[factor][1:]
    first = res[(factor, others[0])]
    out = {ref: 100 * first["p_reference"] if measure == "p_level" else 0 * first["pp"]}
    for level in others:
        out[level] = 100 * res[(factor, level)]["p_level"] if measure == "p_level" \
            else res[(factor, level)]["pp"]
    return out


def estimand_draws(fit: Any, dimension: str, threshold: int | None = None, rater: str = "new",
                   population: pd.DataFrame | str | os.PathLike[str] | None = None,
                   factors: Sequence[str] | None = None
                   ) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Posterior draws of every measure of the contrasts of one dimension (the table's, per draw).

    Parameters
    ----------
    fit : Fit
        A fitted or loaded model.
    dimension : str
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).
    rater : {"new", "typical"}
    population : DataFrame or path, optional
        Target population (see :func:`contrasts_table`).
    factors : sequence of str, optional
        Only these factors' contrasts (default: every factor).

    Returns
    -------
    dict
        ``{(factor, level): {measure: array (S,)}}`` for every non-reference level, with every
        measure of :data:`MEASURES` (draws chain-major, as :func:`~disagree.model.draws.
        flat_draws`); :func:`contrasts_table` summarises the same draws.
    """
    spec = fit.spec
    if dimension not in spec.dimensions:
        raise ModelError(f"dimension {dimension!r} is not in the fit "
                         f"({', '.join(spec.dimensions)})")
    unknown = [f for f in factors or () if f not in spec.levels]
    if unknown:
        raise ModelError(f"factor(s) {', '.join(unknown)} not in the fit "
                         f"({', '.join(spec.levels)})")
    (rater,) = _choose(rater, RATERS, "rater", ())
    threshold = high_threshold(spec.scale) if threshold is None else int(threshold)
    if not 2 <= threshold <= spec.scale:
        raise ModelError(f"threshold {threshold} must be between 2 and {spec.scale} (the scale)")
    return standardised_draws(fit.idata, spec.levels, list(spec.dimensions).index(dimension),
                              threshold, spec.interactions, population, factors=factors,
                              rater=rater)


def standardised_draws(idata: az.InferenceData, levels: Mapping[str, Sequence[str]], d: int,
                       threshold: int, interactions: Sequence[str], population: Any = None,
                       factors: Sequence[str] | None = None, rater: str = "new") -> dict:
    """Per-draw measures of dimension ``d``'s contrasts over the items rated on it.

    The unchecked core of :func:`estimand_draws` and :func:`contrasts_table`, for code that
    has a posterior and the fit's levels rather than a :class:`Fit`; returns what
    :func:`disagree.ordinal.estimands` does. ``population``: as in :func:`contrasts_table`.
    """
    post = idata.posterior
    cd = idata.constant_data
    sample_cells = cells_from_design(cd["rater_design"].values, levels)
    cells, weights = (sample_cells, None) if population is None else \
        population_cells(population, sample_cells, levels)
    items = np.unique(cd["obs_item"].values[cd["obs_dimension"].values == d])
    return estimands(
        flat_draws(post, "cutpoints", d), flat_draws(post, "beta", d),
        flat_draws(post, "item_effect", d)[:, items], flat_draws(post, "rater_sd", d), cells,
        levels, threshold, rater, weights=weights, factors=factors,
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
    does not mention take the sample's joint mix *within each population cell* (the raters of
    the sample in that cell), so a table of gender x politics shares is enough, and a table of
    country shares gives each country its own sample mix of the other factors. A population
    cell with a positive share and no rater in the sample gets the sample's overall mix of the
    other factors, with a :class:`~disagree.errors.DisagreeWarning` (a ``UserWarning``) naming
    those cells.

    Parameters
    ----------
    population : DataFrame or path
        Factor columns (a subset of the fit's factors) and ``proportion`` (non-negative, any
        positive sum; normalised).
    sample : DataFrame
        The sample's raters (or cells), one column per factor of ``levels``.
    levels : mapping
        Levels per factor, reference first.

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
    sample = sample[given + rest].astype(str)
    within = sample.groupby(given + rest).size().rename("w").reset_index()
    within["w"] /= within.groupby(given)["w"].transform("sum")
    cells = pop.merge(within, on=given, how="inner")
    absent = pop.merge(within[given].drop_duplicates(), on=given, how="left", indicator=True)
    absent = absent[absent["_merge"] == "left_only"].drop(columns="_merge")
    if len(absent):
        named = absent[absent["proportion"] > 0]
        if len(named):
            warnings.warn("population cell(s) with no rater in the sample: "
                          + "; ".join(", ".join(f"{c}={row[c]}" for c in given)
                                      for _, row in named.iterrows())
                          + f"; they take the sample's overall mix of {', '.join(rest)}",
                          DisagreeWarning, stacklevel=2)
        mix = sample.groupby(rest).size().rename("w").reset_index()
        mix["w"] /= mix["w"].sum()
        cells = pd.concat([cells, absent.merge(mix, how="cross")], ignore_index=True)
    return cells[list(levels)], (cells["proportion"] * cells["w"]).to_numpy()
