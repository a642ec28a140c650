"""The equivalent bambi model of one dimension, the reference implementation.

``rating ~ 0 + factors + (1|rater_id) + (1|item_id)`` with family ``"cumulative"``. The
factors are written as explicit treatment dummies (``gender_male``, ...): with ``0 +``,
formulae would code the first categorical factor with all its levels, whose common shift the
thresholds then absorb, and the coefficients would not be the contrasts against the reference.
Priors are set to disagree's (``DEFAULT_PRIORS``), so the two posteriors answer the same
question.

Interactions add ``(1|item_id:factor)`` per interaction factor: independent
``Normal(0, item_group_sd)`` deviations per item and level. disagree's deviations are the
doubly zero-sum part of exactly these (``ZeroSumNormal(item_group_sd)`` over items x levels);
what bambi has besides, each item's mean deviation over the levels (variance
``item_group_sd^2 / L``) and each level's mean over the items (``item_group_sd^2 / J``), are
shifts that disagree's item effects and coefficients carry instead. The likelihoods are the
same and ``item_group_sd`` means the same in both; only the priors of the item effects and
coefficients differ slightly, as the item effects' zero-sum constraint already makes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.model.spec import DEFAULT_PRIORS, ModelSpec, make_spec
from disagree.ordinal import coef_names, design_matrix


def dummy_names(levels: Mapping[str, Sequence[str]]) -> list[str]:
    """Formula-safe column names ``factor_level`` of the treatment dummies."""
    names = [re.sub(r"\W+", "_", f"{f}_{lv}").strip("_") for f, lv in coef_names(levels)]
    if len(set(names)) != len(names):  # pragma: no cover - only with pathological level names
        names = [f"x{i}_{n}" for i, n in enumerate(names)]
    return names


def bambi_formula(spec_or_levels: ModelSpec | Mapping[str, Sequence[str]],
                  interactions: Sequence[str] | None = None) -> str:
    """Return the bambi formula of one dimension for a spec (or its levels).

    ``interactions`` defaults to the spec's (none when given levels).
    """
    levels = spec_or_levels.levels if isinstance(spec_or_levels, ModelSpec) else spec_or_levels
    if interactions is None and isinstance(spec_or_levels, ModelSpec):
        interactions = spec_or_levels.interactions
    terms = " + ".join(["0", *dummy_names(levels)])
    extra = "".join(f" + (1|item_id:{f})" for f in interactions or ())
    return f"rating ~ {terms} + (1|rater_id) + (1|item_id){extra}"


def bambi_data(table: RatingTable, dimension: str,
               levels: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Return the ratings of ``dimension`` with the treatment dummies, ready for bambi."""
    r = table.ratings[table.ratings["dimension"] == dimension].reset_index(drop=True)
    raters = table.raters.loc[r["rater_id"], list(levels)].reset_index(drop=True)
    x = design_matrix(raters, levels)
    out = pd.DataFrame(x, columns=dummy_names(levels))
    k = table.scales[dimension]
    out["rating"] = pd.Categorical(r["rating"], categories=list(range(1, k + 1)), ordered=True)
    out["rater_id"] = r["rater_id"].to_numpy()
    out["item_id"] = r["item_id"].to_numpy()
    for f in levels:
        out[f] = raters[f].astype(str).to_numpy()
    return out


def bambi_model(table: RatingTable, dimension: str, factors: Sequence[str],
                reference: Mapping[str, str] | None = None,
                priors: Mapping[str, float] | None = None,
                interactions: Sequence[str] | None = None):
    """Build the bambi ``Model`` equivalent to disagree's on one dimension (not fitted).

    Returns
    -------
    bambi.Model
        Fit it with ``model.fit(inference_method="nutpie", ...)`` or any bambi method.
    """
    import bambi as bmb
    from pymc.distributions.transforms import ordered

    spec = make_spec(table, factors, reference, [dimension], priors, interactions)
    p = {**DEFAULT_PRIORS, **(priors or {})}
    data = bambi_data(table, dimension, spec.levels)
    k = spec.scale
    prior = {name: bmb.Prior("Normal", mu=0.0, sigma=p["beta_sd"])
             for name in dummy_names(spec.levels)}
    prior["1|rater_id"] = bmb.Prior("Normal", mu=0.0,
                                    sigma=bmb.Prior("HalfNormal", sigma=p["rater_sd"]))
    prior["1|item_id"] = bmb.Prior("Normal", mu=0.0,
                                   sigma=bmb.Prior("HalfNormal", sigma=p["item_sd"]))
    for f in spec.interactions:
        prior[f"1|item_id:{f}"] = bmb.Prior(
            "Normal", mu=0.0, sigma=bmb.Prior("HalfNormal", sigma=p["item_group_sd"]))
    prior["threshold"] = bmb.Prior("Normal", mu=np.zeros(k - 1), sigma=p["cutpoint_sd"],
                                   transform=ordered, initval=np.linspace(-2, 2, k - 1))
    return bmb.Model(bambi_formula(spec), data, family="cumulative", priors=prior)
