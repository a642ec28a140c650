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

Deviations that follow the responses' traits (``interaction_traits``)
-----------------------------------------------------------------------
With ``interaction_traits = rho`` in [0, 1], a share ``rho`` of each deviation's variance is
carried by the item's latent traits ``t[j]`` (toxicity, helpfulness, stereotyping; standard
normal by construction, so unit variance each, correlated as in the simulator), which also word
the response's text::

    w_f[j, :] = y - mean(y),   y = sqrt(1 - rho) * z[j, :] + sqrt(rho) * (t[j] @ A_f)

``z`` is the iid draw above and ``A_f`` a (3 traits x L levels) matrix of level loadings,
``A_f ~ iid Normal(0, s / sqrt(3))``, drawn once per (dimension, factor): each level has its own
taste for each trait, the same for every item. ``interaction_loadings`` sets ``A_f`` of
some (dimension, factor) pairs instead (the default survey's headline comparisons: see
:mod:`disagree.data.simulate`); the others are drawn as before. Averaged over the loadings,
``t[j] @ A_f`` has variance ``s**2`` (the traits' variances sum to 3), so ``y`` keeps the
variance ``s**2`` of ``z`` for every ``rho``; for one survey's loadings the trait part's
variance scatters around it. With ``rho = 1`` a group's deviation is a linear function of the
response's traits, so a text model can learn a group's taste from the wording and carry it to
unseen prompts; with ``rho = 0`` nothing in the text predicts it (the default survey has 0.8).

The deviations come from their own generator, ``np.random.default_rng([seed, 11])``, and the
loadings from another, ``np.random.default_rng([seed, 12])``, so a survey without interactions
draws every other value exactly as before, and ``rho = 0`` gives exactly the deviations (and
every output) of a survey without the option.
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
#: Level loadings on the traits: dimension -> factor -> array (n_traits, n_levels of the factor).
Loadings = dict[str, dict[str, np.ndarray]]
#: Second entry of the deviations' seed sequence, ``[seed, STREAM]``.
STREAM = 11
#: Second entry of the trait loadings' seed sequence, ``[seed, LOADING_STREAM]``.
LOADING_STREAM = 12
#: Names of the items' latent traits, in the order of the simulator's trait columns.
TRAITS = ("toxicity", "helpfulness", "stereotyping")


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


def check_interaction_traits(value: object) -> None:
    """Raise :class:`DataError` unless ``value`` is a finite number in [0, 1].

    Parameters
    ----------
    value : object
        The share of each deviation's variance carried by the items' traits.
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not 0 <= value <= 1):
        raise DataError(f"interaction_traits must be a finite number in [0, 1], got {value!r}")


def check_loadings(loadings: object, interactions: Mapping[str, Mapping[str, float]],
                   levels: Mapping[str, Sequence[str]]) -> None:
    """Raise :class:`DataError` naming the first bad entry of ``interaction_loadings``.

    Each entry must name a dimension and factor with an interaction, levels of that factor, and
    three finite loadings (one per trait of :data:`TRAITS`).
    """
    if not isinstance(loadings, Mapping):
        raise DataError(f"interaction_loadings must be a mapping dimension -> factor -> level "
                        f"-> {len(TRAITS)} loadings, got {loadings!r}")
    for dim, factors in loadings.items():
        for factor, by_level in factors.items():
            where = f"interaction_loadings[{dim!r}][{factor!r}]"
            if factor not in interactions.get(dim, {}):
                raise DataError(f"{where}: {dim} has no interaction with {factor}; interactions "
                                f"are {dict(interactions)}")
            for level, values in by_level.items():
                if level not in levels[factor]:
                    raise DataError(f"{where}: {level!r} is not a level of {factor} "
                                    f"({', '.join(levels[factor])})")
                array = np.asarray(values, dtype=float)
                if array.shape != (len(TRAITS),) or not np.isfinite(array).all():
                    raise DataError(f"{where}[{level!r}]: expected {len(TRAITS)} finite "
                                    f"loadings ({', '.join(TRAITS)}), got {values!r}")


def draw_loadings(seed: int, interactions: Mapping[str, Mapping[str, float]],
                  dimensions: Sequence[str], levels: Mapping[str, Sequence[str]],
                  fixed: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]] | None = None
                  ) -> Loadings:
    """Draw the level loadings ``A_f`` on the traits of every dimension and interaction factor.

    Parameters
    ----------
    seed : int
        The survey's seed; the draws use ``np.random.default_rng([seed, LOADING_STREAM])``.
    interactions : mapping
        Dimension -> {factor: sd} (checked by :func:`check_interactions`).
    dimensions : sequence of str
        Dimensions in the survey's order; with the factors (in the order of ``levels``) they
        fix the order of the draws, as in :func:`draw_deviations`.
    levels : mapping
        Levels per factor, reference first.
    fixed : mapping, optional
        Dimension -> factor -> level -> loadings that replace the draws of those (dimension,
        factor) pairs (levels not given load 0); the other pairs' draws are unchanged.

    Returns
    -------
    dict
        Dimension -> factor -> array (len(TRAITS), len(levels[factor])) with iid entries
        ``Normal(0, sd / sqrt(len(TRAITS)))``; only dimensions with an interaction appear.
    """
    rng = np.random.default_rng([seed, LOADING_STREAM])
    out: Loadings = {}
    for dim in dimensions:
        sds = interactions.get(dim, {})
        for factor in levels:
            if factor not in sds:
                continue
            scale = float(sds[factor]) / math.sqrt(len(TRAITS))
            out.setdefault(dim, {})[factor] = scale * rng.standard_normal(
                (len(TRAITS), len(levels[factor])))
    for dim, factors in (fixed or {}).items():
        for factor, by_level in factors.items():
            if factor in out.get(dim, {}):
                out[dim][factor] = np.column_stack(
                    [np.asarray(by_level.get(lv, (0.0,) * len(TRAITS)), dtype=float)
                     for lv in levels[factor]])
    return out


def draw_deviations(seed: int, interactions: Mapping[str, Mapping[str, float]],
                    dimensions: Sequence[str], levels: Mapping[str, Sequence[str]],
                    n_items: int, traits: np.ndarray | None = None, share: float = 0.0,
                    loadings: Loadings | None = None) -> Deviations:
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
    traits : ndarray (n_items, len(TRAITS)), optional
        The items' standard-normal latent traits; needed when ``share > 0``.
    share : float
        ``interaction_traits``, the share of each deviation's variance carried by the traits
        (0, the default: the iid deviations alone, bit for bit).
    loadings : dict, optional
        The level loadings of :func:`draw_loadings`; needed when ``share > 0``.

    Returns
    -------
    dict
        Dimension -> factor -> array (n_items, len(levels[factor])) whose rows sum to zero;
        only dimensions with at least one interaction factor appear.
    """
    if share > 0 and (traits is None or loadings is None):
        raise ValueError("share > 0 needs the items' traits and the level loadings")
    rng = np.random.default_rng([seed, STREAM])
    out: Deviations = {}
    for dim in dimensions:
        sds = interactions.get(dim, {})
        for factor in levels:
            if factor not in sds:
                continue
            z = float(sds[factor]) * rng.standard_normal((n_items, len(levels[factor])))
            if share > 0:
                z = (math.sqrt(1.0 - share) * z
                     + math.sqrt(share) * (traits @ loadings[dim][factor]))
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
           item_ids: Sequence[str], levels: Mapping[str, Sequence[str]], share: float = 0.0,
           loadings: Loadings | None = None, traits: np.ndarray | None = None) -> dict:
    """JSON-ready truth of the interactions: the sds and every deviation (6 decimals).

    Parameters
    ----------
    interactions : mapping
        Dimension -> {factor: sd}.
    deviations : dict
        The deviations of :func:`draw_deviations`.
    item_ids : sequence of str
        The items, in the deviations' row order.
    levels : mapping
        Levels per factor, reference first.
    share : float
        ``interaction_traits``; with 0 (the default) the truth is exactly that of a survey
        without the option (no further keys).
    loadings : dict, optional
        The level loadings of :func:`draw_loadings` (recorded when ``share > 0``).
    traits : ndarray (n_items, len(TRAITS)), optional
        The items' latent traits (recorded when ``share > 0``).

    Returns
    -------
    dict
        ``{"interactions": {dim: {factor: sd}}, "item_deviations": {dim: {factor:
        {"item_id": [...], "<level>": [...], ...}}}}``; when ``share > 0`` also
        ``"interaction_traits": share``, ``"interaction_loadings": {dim: {factor: {level:
        {trait: loading}}}}`` and ``"item_traits": {"item_id": [...], "<trait>": [...]}``.
    """
    sds = {d: {f: float(s) for f, s in fs.items()} for d, fs in interactions.items()}
    table = {d: {f: {"item_id": list(item_ids),
                     **{str(lv): np.round(w[:, i], 6).tolist()
                        for i, lv in enumerate(levels[f])}}
                 for f, w in fs.items()}
             for d, fs in deviations.items()}
    out: dict = {"interactions": sds, "item_deviations": table}
    if share > 0:
        if traits is None or loadings is None:
            raise ValueError("share > 0 needs the items' traits and the level loadings")
        out["interaction_traits"] = float(share)
        out["interaction_loadings"] = {
            d: {f: {str(lv): {t: round(float(a[k, i]), 6) for k, t in enumerate(TRAITS)}
                    for i, lv in enumerate(levels[f])}
                for f, a in fs.items()}
            for d, fs in loadings.items()}
        out["item_traits"] = {"item_id": list(item_ids),
                              **{t: np.round(traits[:, k], 6).tolist()
                                 for k, t in enumerate(TRAITS)}}
    return out
