"""Rating distributions per dimension and per rater group, and model-free group contrasts.

Everything here is a count or a share of observed ratings: no model, no pooling. A rating is
"high" when it is at least the dimension's threshold (by default
:func:`disagree.data.scale.high_threshold`, 4 on a 5-point scale), the same definition the
model's ``relative_pct`` and ``pp`` contrasts use, so :func:`raw_differences` sits next to the
model's contrasts table column for column (with group sizes in place of intervals).

The helpers :func:`factor_levels` and :func:`high_thresholds` check the arguments shared by the
whole :mod:`disagree.describe` package and raise :class:`~disagree.errors.DataError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.data.scale import high_threshold
from disagree.errors import DataError

log = logging.getLogger(__name__)

#: The measures of :func:`raw_differences`, in output order.
MEASURES = ("relative_pct", "pp", "mean_diff")
#: Rater attributes with more distinct values than this are not default factors.
MAX_LEVELS = 12
_KEYS = ["dimension", "factor", "level"]

Threshold = int | Mapping[str, int] | None


def factor_levels(table: RatingTable, factors: Sequence[str] | str | None = None,
                  reference: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Return the levels of each factor, its reference level first.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    factors : sequence of str, str or None
        Rater attributes to group by. ``None``: every rater attribute with 2 to
        ``MAX_LEVELS`` distinct values and no missing values, plus every factor named in
        ``reference``.
    reference : mapping, optional
        Reference level per factor; the others get their most frequent level.

    Returns
    -------
    dict of str to list of str

    Raises
    ------
    DataError
        For an unknown factor, an item attribute, raters without a value for a factor, a
        reference for a factor not among ``factors`` or an unknown reference level.
    """
    if isinstance(factors, str):
        factors = [factors]
    if factors is None:
        factors = _default_factors(table) + [f for f in (reference or {})]
    return table.factor_levels(list(dict.fromkeys(factors)), reference)


def high_thresholds(table: RatingTable, threshold: Threshold = None) -> dict[str, int]:
    """Return the lowest "high" rating per dimension.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    threshold : int or mapping of str to int, optional
        One threshold for every dimension or one per dimension; dimensions left out get
        :func:`~disagree.data.scale.high_threshold` of their scale.

    Returns
    -------
    dict of str to int

    Raises
    ------
    DataError
        For an unknown dimension or a threshold outside ``2..K``.
    """
    given = dict(threshold) if isinstance(threshold, Mapping) else {}
    unknown = sorted(set(given) - set(table.scales))
    if unknown:
        raise DataError(f"threshold given for unknown dimension(s) {unknown}; dimensions are "
                        f"{table.dimensions}")
    out = {}
    for dim, k in table.scales.items():
        value = given.get(dim, threshold if isinstance(threshold, int) else None)
        value = high_threshold(k) if value is None else value
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or \
                not 2 <= value <= k:
            raise DataError(f"threshold {value!r} for {dim!r}: expected an integer rating in "
                            f"2..{k} (the lowest rating that counts as high)")
        out[dim] = int(value)
    return out


def rating_distribution(table: RatingTable,
                        dimensions: Sequence[str] | None = None) -> pd.DataFrame:
    """Count the ratings at every level of every dimension.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    dimensions : sequence of str, optional
        Dimensions to describe (default: all, in table order).

    Returns
    -------
    pandas.DataFrame
        ``dimension, rating, n, share``: one row per dimension and rating ``1..K``, levels
        nobody used included with ``n = 0``; ``share`` sums to 1 within a dimension.
    """
    table = table.select(dimensions)
    counts = table.ratings.groupby(["dimension", "rating"]).size()
    index = pd.MultiIndex.from_tuples(
        [(d, k) for d, n_levels in table.scales.items() for k in range(1, n_levels + 1)],
        names=["dimension", "rating"])
    out = counts.reindex(index, fill_value=0).rename("n").astype("int64").reset_index()
    out["share"] = out["n"] / out.groupby("dimension", sort=False)["n"].transform("sum")
    return out


def group_distributions(table: RatingTable, factors: Sequence[str] | str | None = None,
                        threshold: Threshold = None,
                        dimensions: Sequence[str] | None = None) -> pd.DataFrame:
    """Describe the ratings given by each level of each rater factor.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    factors : sequence of str, optional
        Rater attributes (default: see :func:`factor_levels`).
    threshold : int or mapping, optional
        Lowest "high" rating (see :func:`high_thresholds`).
    dimensions : sequence of str, optional
        Dimensions to describe (default: all).

    Returns
    -------
    pandas.DataFrame
        ``dimension, factor, level, n_ratings, n_raters, share_high, mean, p_1..p_K`` (K the
        largest scale; ``p_k`` is NaN beyond a dimension's own scale). One row per dimension,
        factor and level (the most frequent level first), levels without ratings on a
        dimension included with zero counts and NaN shares.
    """
    table = table.select(dimensions)
    return _group_table(table, factor_levels(table, factors), high_thresholds(table, threshold))


def raw_differences(table: RatingTable, factors: Sequence[str] | str | None = None,
                    reference: Mapping[str, str] | None = None, threshold: Threshold = None,
                    dimensions: Sequence[str] | None = None) -> pd.DataFrame:
    """Compare each factor level with its reference level, without a model.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    factors : sequence of str, optional
        Rater attributes (default: see :func:`factor_levels`).
    reference : mapping, optional
        Reference level per factor (default: its most frequent level among raters).
    threshold : int or mapping, optional
        Lowest "high" rating (see :func:`high_thresholds`).
    dimensions : sequence of str, optional
        Dimensions to compare on (default: all).

    Returns
    -------
    pandas.DataFrame
        ``dimension, factor, level, reference, measure, estimate, n_level, n_reference``, the
        shape of the model's contrasts table. ``measure`` is ``relative_pct``
        (``100 * (P(high | level) / P(high | reference) - 1)``, NaN when the reference has no
        high rating), ``pp`` (``100 * (P(high | level) - P(high | reference))``) or
        ``mean_diff`` (difference of mean ratings); ``n_*`` count ratings.
    """
    table = table.select(dimensions)
    levels = factor_levels(table, factors, reference)
    groups = _group_table(table, levels, high_thresholds(table, threshold))
    refs = {f: lvls[0] for f, lvls in levels.items()}
    is_ref = groups["level"] == groups["factor"].map(refs)
    base = groups.loc[is_ref, ["dimension", "factor", "share_high", "mean", "n_ratings"]]
    wide = groups.loc[~is_ref].merge(base, on=["dimension", "factor"], how="left",
                                     suffixes=("", "_ref"), validate="many_to_one")
    ref_high = wide["share_high_ref"].where(wide["share_high_ref"] > 0)
    wide = wide.assign(
        reference=wide["factor"].map(refs),
        n_level=wide["n_ratings"], n_reference=wide["n_ratings_ref"],
        relative_pct=100 * (wide["share_high"] / ref_high - 1),
        pp=100 * (wide["share_high"] - wide["share_high_ref"]),
        mean_diff=wide["mean"] - wide["mean_ref"])
    ids = [*_KEYS, "reference", "n_level", "n_reference"]
    out = (wide.set_index(ids)[list(MEASURES)].rename_axis(columns="measure").stack()
           .rename("estimate").reset_index())
    return out[[*_KEYS, "reference", "measure", "estimate", "n_level", "n_reference"]]


# --- pieces --------------------------------------------------------------------------------

def _default_factors(table: RatingTable) -> list[str]:
    out = []
    for name in table.raters.columns:
        values = table.raters[name]
        if not 2 <= values.nunique(dropna=True) <= MAX_LEVELS:
            continue
        if values.isna().any():
            log.warning("rater attribute %r left out of the default factors: %d rater(s) have "
                        "no value; include it after drop_raters_missing(table, [%r])", name,
                        int(values.isna().sum()), name)
            continue
        out.append(name)
    return out


def _group_table(table: RatingTable, levels: Mapping[str, list[str]],
                 thresholds: Mapping[str, int]) -> pd.DataFrame:
    """Summarise ratings per dimension x factor x level (the body of group_distributions)."""
    k_max = max(table.scales.values())
    shares = [f"p_{k}" for k in range(1, k_max + 1)]
    columns = [*_KEYS, "n_ratings", "n_raters", "share_high", "mean", *shares]
    if not levels:
        return pd.DataFrame(columns=columns)
    ratings = table.ratings.assign(
        high=table.ratings["rating"] >= table.ratings["dimension"].map(thresholds))
    groups = (table.raters[list(levels)].astype(str).rename_axis("rater_id").reset_index()
              .melt(id_vars="rater_id", var_name="factor", value_name="level"))
    rated = ratings.merge(groups, on="rater_id")
    index = pd.MultiIndex.from_tuples(
        [(d, f, lv) for d in table.dimensions for f, lvls in levels.items() for lv in lvls],
        names=_KEYS)
    summary = rated.groupby(_KEYS).agg(
        n_ratings=("rating", "size"), n_raters=("rater_id", "nunique"),
        share_high=("high", "mean"), mean=("rating", "mean")).reindex(index)
    for col in ("n_ratings", "n_raters"):
        summary[col] = summary[col].fillna(0).astype("int64")
    counts = (rated.groupby([*_KEYS, "rating"]).size().unstack("rating", fill_value=0)
              .reindex(index=index, columns=range(1, k_max + 1), fill_value=0))
    props = counts.div(summary["n_ratings"].where(summary["n_ratings"] > 0), axis=0)
    props.columns = shares
    beyond = np.arange(1, k_max + 1)[None, :] > index.get_level_values("dimension").map(
        table.scales).to_numpy()[:, None]
    props = props.mask(beyond)
    return pd.concat([summary, props], axis=1).reset_index()[columns]
