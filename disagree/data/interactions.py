"""Group-by-item interactions of the survey simulator.

With them, rater groups disagree about *which* response is better, not only about how high
they rate. For a dimension ``d`` and an interaction factor ``f`` with sd ``s``, every item
``j`` gets one deviation per level of ``f`` (levels in the order of ``levels[f]``, reference
first)::

    w_f[j, :] = z - mean(z),   z ~ iid Normal(0, s) over the levels of f

so the deviations sum to zero over the levels within an item. This is exactly PyMC's
``ZeroSumNormal(sigma=s)`` over the level axis, the model's parametrisation, so ``s`` is
comparable to a fitted ``item_group_sd`` (each deviation's own sd is ``s * sqrt((L - 1) / L)``).
A rater with level ``l_f`` of each interaction factor meets the item effect
``v[j, d] + sum_f w_f[j, l_f]``.

The deviations come from their own generator, ``np.random.default_rng([seed, 11])``, so a
survey without interactions draws every other value exactly as before.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.errors import DataError

#: Deviations of one survey: dimension -> factor -> array (n_items, n_levels of the factor).
Deviations = dict[str, dict[str, np.ndarray]]
#: Second entry of the deviations' seed sequence, ``[seed, STREAM]``.
STREAM = 11


def check_interactions(interactions: object, dimensions: Sequence[str],
                       factors: Sequence[str]) -> None:
    """Raise :class:`DataError` naming the first bad key or sd of ``interactions``.

    Parameters
    ----------
    interactions : object
        Should be a mapping dimension -> {factor: sd}.
    dimensions : sequence of str
        The survey's dimensions.
    factors : sequence of str
        The rater factors an interaction may name.
    """
    if not isinstance(interactions, Mapping):
        raise DataError(f"interactions: expected a mapping dimension -> {{factor: sd}}, got "
                        f"{type(interactions).__name__}")
    for dim, sds in interactions.items():
        if dim not in dimensions:
            raise DataError(f"interactions[{dim!r}]: unknown dimension {dim!r}; dimensions are "
                            f"{', '.join(dimensions)}")
        if not isinstance(sds, Mapping):
            raise DataError(f"interactions[{dim!r}]: expected a mapping factor -> sd, got "
                            f"{sds!r}")
        for factor, sd in sds.items():
            if factor not in factors:
                raise DataError(f"interactions[{dim!r}][{factor!r}]: unknown factor "
                                f"{factor!r}; factors are {', '.join(factors)}")
            if (isinstance(sd, bool) or not isinstance(sd, numbers.Real)
                    or not math.isfinite(sd) or sd < 0):
                raise DataError(f"interactions[{dim!r}][{factor!r}]: sd must be a finite "
                                f"number >= 0, got {sd!r}")


def draw_deviations(seed: int, interactions: Mapping[str, Mapping[str, float]],
                    dimensions: Sequence[str], levels: Mapping[str, Sequence[str]],
                    n_items: int) -> Deviations:
    """Draw the sum-to-zero deviations of every item, dimension and interaction factor.

    Parameters
    ----------
    seed : int
        The survey's seed; the draws use ``np.random.default_rng([seed, STREAM])``.
    interactions : mapping
        Dimension -> {factor: sd} (checked by :func:`check_interactions`).
    dimensions : sequence of str
        Dimensions in the survey's order; they and the factors (in the order of ``levels``)
        fix the order of the draws, so the result does not depend on the mapping's order.
    levels : mapping
        Levels per factor, reference first.
    n_items : int
        Number of items.

    Returns
    -------
    dict
        Dimension -> factor -> array (n_items, len(levels[factor])) whose rows sum to zero;
        only dimensions with at least one interaction factor appear.
    """
    rng = np.random.default_rng([seed, STREAM])
    out: Deviations = {}
    for dim in dimensions:
        sds = interactions.get(dim, {})
        for factor in levels:
            if factor not in sds:
                continue
            z = float(sds[factor]) * rng.standard_normal((n_items, len(levels[factor])))
            out.setdefault(dim, {})[factor] = z - z.mean(axis=1, keepdims=True)
    return out


def rating_offsets(deviations: Mapping[str, np.ndarray], raters: pd.DataFrame,
                   levels: Mapping[str, Sequence[str]], rater_index: np.ndarray,
                   item_index: np.ndarray) -> np.ndarray:
    """Return ``sum_f w_f[item, level_f(rater)]`` of each rating of one dimension.

    Parameters
    ----------
    deviations : mapping
        Factor -> array (n_items, n_levels) of the dimension (may be empty).
    raters : DataFrame
        One row per rater, a column per factor.
    levels : mapping
        Levels per factor, reference first.
    rater_index, item_index : int arrays (n_ratings,)
        Row of ``raters`` and item of each rating.

    Returns
    -------
    ndarray (n_ratings,)
    """
    out = np.zeros(len(rater_index))
    for factor, w in deviations.items():
        code = pd.Index(list(levels[factor])).get_indexer(raters[factor].astype(str))
        out += w[item_index, code[rater_index]]
    return out


def for_contrasts(deviations: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Return one dimension's deviations as ``item_deviations`` of a standardised contrast.

    The arrays get the leading draw axis (S = 1) that
    :func:`disagree.ordinal.standardised_contrasts` expects; no deviations give None.
    """
    return {f: w[None] for f, w in deviations.items()} or None


def record(interactions: Mapping[str, Mapping[str, float]], deviations: Deviations,
           item_ids: Sequence[str], levels: Mapping[str, Sequence[str]]) -> dict:
    """JSON-ready truth of the interactions: the sds and every deviation (6 decimals).

    Returns
    -------
    dict
        ``{"interactions": {dim: {factor: sd}}, "item_deviations": {dim: {factor:
        {"item_id": [...], "<level>": [...], ...}}}}``.
    """
    sds = {d: {f: float(s) for f, s in fs.items()} for d, fs in interactions.items()}
    table = {d: {f: {"item_id": list(item_ids),
                     **{str(lv): np.round(w[:, i], 6).tolist()
                        for i, lv in enumerate(levels[f])}}
                 for f, w in fs.items()}
             for d, fs in deviations.items()}
    return {"interactions": sds, "item_deviations": table}
