"""How much raters agree with each other, and how the dimensions go together.

* :func:`agreement`: Krippendorff's alpha (ordinal and nominal, from the ``krippendorff``
  package) per dimension, over all raters and within each level of chosen rater factors.
* :func:`conditional_probabilities`: Figure 1 of the paper, ``P(high on B | high on A)`` for
  every ordered pair of dimensions, over the (rater, item) pairs rated on both.

Both build one matrix with a pivot and work on it with array operations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import krippendorff
import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.describe.distributions import Threshold, factor_levels, high_thresholds
from disagree.errors import renamed

log = logging.getLogger(__name__)

#: Label of the factor and level columns for the rows over every rater.
ALL = "all"


def agreement(table: RatingTable, factors: Sequence[str] | str | None = None,
              dimensions: Sequence[str] | None = None, *,
              by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Compute Krippendorff's alpha per dimension, overall and within rater groups.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    factors : sequence of str, optional
        Alpha is also computed within each level of these factors, from the ratings of that
        level's raters only. ``None``: overall only.
    dimensions : sequence of str, optional
        Dimensions to describe (default: all).
    by : sequence of str, optional
        Deprecated name of ``factors``.

    Returns
    -------
    pandas.DataFrame
        ``dimension, factor, level, alpha_ordinal, alpha_nominal, n_raters, n_items,
        n_pairable``; the overall rows have ``factor = level = "all"``. ``n_raters`` and
        ``n_items`` count raters and items with at least one rating in the group,
        ``n_pairable`` the items with at least two. Alpha is NaN when fewer than two items are
        pairable or the statistic is undefined (e.g. every rating identical).

    Raises
    ------
    DataError
        For an unknown dimension or factor.
    """
    factors = renamed(factors, by, "by", "factors")
    table = table.select(dimensions)
    levels = factor_levels(table, factors) if factors else {}
    groups: list[tuple[str, str, pd.Index]] = [(ALL, ALL, table.raters.index)]
    for factor, lvls in levels.items():
        values = table.raters[factor].astype(str)
        groups += [(factor, lv, values.index[values == lv]) for lv in lvls]
    rows = []
    for dim, k in table.scales.items():
        matrix = reliability_matrix(table, dim)
        for factor, level, members in groups:
            sub = matrix.to_numpy()[matrix.index.isin(members)]
            rows.append({"dimension": dim, "factor": factor, "level": level,
                         **_alpha(sub, k, f"{dim}/{factor}={level}")})
    return pd.DataFrame(rows)


def reliability_matrix(table: RatingTable, dimension: str) -> pd.DataFrame:
    """Return the raters x items matrix of one dimension's ratings (NaN where not rated).

    Parameters
    ----------
    table : RatingTable
        The ratings.
    dimension : str
        The dimension.

    Returns
    -------
    pandas.DataFrame
        Float ratings indexed by ``rater_id`` with one column per ``item_id``.
    """
    ratings = table.ratings[table.ratings["dimension"] == dimension]
    return ratings.pivot(index="rater_id", columns="item_id", values="rating").astype(float)


def conditional_probabilities(table: RatingTable, threshold: Threshold = None,
                              dimensions: Sequence[str] | None = None) -> pd.DataFrame:
    """Compute P(high on B | high on A) for every ordered pair of dimensions.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    threshold : int or mapping, optional
        Lowest "high" rating, one for all or one per dimension (default: 4 on 5 points; see
        :func:`~disagree.describe.distributions.high_thresholds`).
    dimensions : sequence of str, optional
        Dimensions to include (default: all, in table order).

    Returns
    -------
    pandas.DataFrame
        ``given, target, p, n_given_high, n_both_high, n_pairs``, one row per ordered pair
        (``given`` major, table order). Over the (rater, item) pairs rated on both dimensions:
        ``n_pairs`` of them, ``n_given_high`` high on ``given``, ``n_both_high`` high on
        both, and ``p = n_both_high / n_given_high`` (1 on the diagonal, NaN when nothing is
        high on ``given``). Not symmetric: ``p(A, B) != p(B, A)`` unless A and B are high
        equally often.
    """
    table = table.select(dimensions)
    dims = table.dimensions
    cut = high_thresholds(table, threshold)
    wide = (table.ratings.pivot(index=["rater_id", "item_id"], columns="dimension",
                                values="rating").reindex(columns=dims).to_numpy(dtype=float))
    rated = ~np.isnan(wide)
    high = rated & (np.nan_to_num(wide) >= np.array([cut[d] for d in dims]))
    rated_i, high_i = rated.astype(np.int64), high.astype(np.int64)
    n_pairs = rated_i.T @ rated_i
    n_given_high = high_i.T @ rated_i
    n_both_high = high_i.T @ high_i
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n_given_high > 0, n_both_high / n_given_high, np.nan)
    n = len(dims)
    return pd.DataFrame({
        "given": np.repeat(dims, n), "target": np.tile(dims, n), "p": p.ravel(),
        "n_given_high": n_given_high.ravel(), "n_both_high": n_both_high.ravel(),
        "n_pairs": n_pairs.ravel()})


# --- pieces --------------------------------------------------------------------------------

def _alpha(matrix: np.ndarray, k: int, label: str) -> dict[str, float | int]:
    """Alphas and counts for one raters x items block (NaN alphas where undefined)."""
    rated = ~np.isnan(matrix)
    per_item = rated.sum(axis=0)
    pairable = per_item >= 2
    out: dict[str, float | int] = {
        "alpha_ordinal": np.nan, "alpha_nominal": np.nan,
        "n_raters": int(rated.any(axis=1).sum()), "n_items": int((per_item > 0).sum()),
        "n_pairable": int(pairable.sum())}
    if out["n_pairable"] < 2:
        return out
    data = matrix[:, pairable]  # unpairable items add nothing to alpha
    for level in ("ordinal", "nominal"):
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                           value_domain=list(range(1, k + 1)))
        except (ValueError, ZeroDivisionError) as exc:
            log.debug("alpha (%s) undefined for %s: %s", level, label, exc)
            continue
        out[f"alpha_{level}"] = float(value)
    return out
