"""Honest uncertainty for LOO comparisons of ratings that come in clusters (items, raters).

Ratings are not independent: an item's ratings share its item effect and group-by-item
deviations, a rater's share the rater effect. The standard error of an elpd difference that
treats the ratings as independent (``az.compare``'s ``dse``) is then too small where the gains
of one model over another come in clusters, as an interaction's do (all the ratings of one
item by one group). This module gives :func:`~disagree.model.loo.compare` three things:

* **Cluster-robust standard errors** of a pointwise elpd difference ``d_i``: sum ``d_i``
  within each cluster ``c`` (``D_c``), then ``SE = sqrt(C * var(D_c))`` over the ``C``
  clusters (the same form as ``az.compare``'s ``sqrt(N * var(d_i))``, with clusters in place
  of ratings), by item and by rater, and two-way by item and rater (Cameron, Gelbach and
  Miller 2011: ``V_item + V_rater - V_item&rater``, at least the larger one-way variance).
* **Leave-one-item-out** PSIS-LOO (:func:`cluster_loo`): ``az.loo`` over the log-likelihood
  summed within each item, which estimates ``log p(y_item | y_rest)`` for a whole item left
  out at once. Where an item's ratings carry much information about its own effects, the
  importance weights are heavy-tailed (Pareto k above 0.7) and the estimate is unreliable;
  :func:`judge` then falls back on the rating-level difference with the two-way clustered
  SE, and says so.
* **Nesting on cells**: a fit extends another when its ``(dimension, factor)`` interaction
  cells strictly contain the other's (:func:`extra_cells`), not merely its factors: a
  ``{toxicity: [gender]}`` fit is nested in ``[gender, politics]`` (every dimension), and what
  the larger fit adds is gender on the other dimensions and politics, not politics alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from disagree.errors import ModelError
from disagree.model.spec import ModelSpec

#: Pareto k above which a PSIS-LOO estimate (of one rating or one item) is unreliable.
K_THRESHOLD = 0.7
#: An interaction is "supported" when it improves elpd by more than this many SE.
SUPPORT_SE = 2.0
#: How :func:`judge` reached its verdict (the ``verdict_by`` column of the table).
BY_ITEM_LOO = "leave-one-item-out"
BY_CLUSTERED = "rating-level LOO, SE clustered by item and rater"


def cluster_se(diff: np.ndarray, clusters: Sequence | np.ndarray) -> float:
    """Cluster-robust standard error of ``sum(diff)``: ``sqrt(C * var(D_c))``.

    Parameters
    ----------
    diff : array of float
        Pointwise differences (e.g. of two fits' ``loo_i``), one per rating.
    clusters : array
        The cluster of each rating (item, rater, or a tuple-like key), same length.

    Returns
    -------
    float
        ``sqrt(C * var(D))`` where ``D`` holds the sums of ``diff`` within each of the ``C``
        clusters and ``var`` is the population variance (``ddof=0``, as ``az.compare``'s
        ``dse``); with one rating per cluster this is ``dse``.
    """
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 1 or len(diff) != len(clusters):
        raise ModelError(f"cluster_se: {len(diff)} differences but {len(clusters)} cluster "
                         "labels; expected one label per difference")
    sums = pd.Series(diff).groupby(np.asarray(clusters), sort=False).sum().to_numpy()
    return float(np.sqrt(len(sums) * np.var(sums)))


def clustered_ses(diff: np.ndarray, obs: pd.DataFrame) -> dict[str, float]:
    """Return the standard errors of ``sum(diff)`` by rating, item, rater, and two-way.

    Parameters
    ----------
    diff : array of float
        Pointwise differences, one per row of ``obs``.
    obs : DataFrame
        The observations, with columns ``item`` and ``rater``.

    Returns
    -------
    dict
        ``rating`` (independent ratings), ``item``, ``rater`` (one-way clustered) and
        ``item_rater``: ``sqrt(V_item + V_rater - V_cell)`` with ``cell`` the (item, rater)
        pairs (a rater's ratings of one item on several dimensions), raised to the larger
        one-way variance where the subtraction would give less.
    """
    for col in ("item", "rater"):
        if col not in obs.columns:
            raise ModelError(f"clustered_ses: obs has no {col!r} column; expected item and "
                             "rater columns")
    item, rater = pd.factorize(obs["item"])[0], pd.factorize(obs["rater"])[0]
    cell = item.astype(np.int64) * (int(rater.max(initial=0)) + 1) + rater
    se = {"rating": cluster_se(diff, np.arange(len(diff))),
          "item": cluster_se(diff, obs["item"].to_numpy()),
          "rater": cluster_se(diff, obs["rater"].to_numpy())}
    v_cell = cluster_se(diff, cell) ** 2
    two_way = se["item"] ** 2 + se["rater"] ** 2 - v_cell
    se["item_rater"] = float(np.sqrt(max(two_way, se["item"] ** 2, se["rater"] ** 2)))
    return se


def relative_eff(posterior: xr.Dataset) -> float:
    """Relative efficiency of the draws for PSIS (what ``az.loo`` computes when not given).

    The mean bulk ESS over every posterior value, divided by the number of draws; 1 for a
    single chain.
    """
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_chain == 1:
        return 1.0
    ess = az.ess(posterior, method="mean")
    return float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean()
                 / (n_chain * n_draw))


def cluster_loo(ll: xr.DataArray, clusters: Sequence | np.ndarray, reff: float,
                dim: str = "item") -> az.ELPDData:
    """PSIS-LOO leaving out one cluster at a time (``az.loo`` on the summed log-likelihood).

    Parameters
    ----------
    ll : DataArray
        Pointwise log-likelihood, dims ``(chain, draw, obs)``.
    clusters : array
        The cluster (e.g. item) of each observation.
    reff : float
        Relative efficiency of the draws (:func:`relative_eff`).
    dim : str
        Name of the cluster dimension of the summed log-likelihood.

    Returns
    -------
    arviz.ELPDData
        ``az.loo(..., pointwise=True)``: ``loo_i`` and ``pareto_k`` have one value per
        cluster (sorted by label). ArviZ's warning about high Pareto k is silenced; callers
        count them.
    """
    key = xr.DataArray(np.asarray(clusters), dims="obs", name=dim)
    summed = ll.groupby(key).sum()
    data = az.InferenceData(log_likelihood=xr.Dataset({"rating": summed}))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return az.loo(data, pointwise=True, var_name="rating", reff=reff)


def extra_cells(spec: ModelSpec, base: ModelSpec) -> list[tuple[str, str]] | None:
    """Return the ``(dimension, factor)`` interaction cells ``spec`` adds to ``base``.

    Returns
    -------
    list of (str, str) or None
        ``spec``'s cells that ``base`` lacks, in ``spec.interaction_cells`` order, when
        ``base``'s cells are a strict subset of ``spec``'s and both have the same factors,
        dimensions and ``effects``; else None (no nested comparison).
    """
    mine, theirs = spec.interaction_cells, set(base.interaction_cells)
    if (spec.factors != base.factors or spec.dimensions != base.dimensions
            or spec.effects != base.effects or not theirs < set(mine)):
        return None
    return [c for c in mine if c not in theirs]


def cells_label(cells: Sequence[tuple[str, str]], spec: ModelSpec) -> list[str]:
    """Name interaction cells, in factor order.

    ``factor`` where a factor's cells cover every dimension of ``spec``, else
    ``dimension:factor`` for each cell (the CLI's ``--interactions`` spelling).
    """
    out = []
    for f in [f for f in spec.interactions if any(g == f for _, g in cells)]:
        dims = [d for d, g in cells if g == f]
        out += [f] if set(dims) == set(spec.dimensions) else [f"{d}:{f}" for d in dims]
    return out


def not_nested_note(model: str, spec: ModelSpec, others: dict[str, ModelSpec]) -> str | None:
    """Say why ``model`` gets no verdict although another fit's interaction factors nest in its.

    Returns
    -------
    str or None
        A sentence naming the first such fit and its cells that ``spec`` lacks, or None.
    """
    mine = set(spec.interactions)
    for name, other in others.items():
        if name == model or not set(other.interactions) < mine:
            continue
        missing = [c for c in other.interaction_cells if c not in set(spec.interaction_cells)]
        if missing:
            cells = ", ".join(f"{d}:{f}" for d, f in missing)
            return (f"{model}: no verdict against {name}: its interaction factors extend "
                    f"{name}'s but not its (dimension, factor) cells ({name} has {cells}, "
                    f"{model} does not)")
    return None


def judge(model: str, baseline: str, extra: list[str], rating: tuple[az.ELPDData, az.ELPDData],
          item: tuple[az.ELPDData, az.ELPDData], obs: pd.DataFrame,
          k_threshold: float = K_THRESHOLD) -> dict:
    """Verdict on ``model``'s extra interaction cells against ``baseline``.

    Parameters
    ----------
    model, baseline : str
        The names of the larger fit and of the fit it extends.
    extra : list of str
        Labels of the extra cells (:func:`cells_label`).
    rating : (ELPDData, ELPDData)
        Rating-level PSIS-LOO of ``model`` and ``baseline``.
    item : (ELPDData, ELPDData)
        Leave-one-item-out PSIS-LOO (:func:`cluster_loo`) of ``model`` and ``baseline``.
    obs : DataFrame
        The observations (columns ``item`` and ``rater``), in ``loo_i`` order.
    k_threshold : float
        Pareto k above which an item's leave-one-out estimate is unreliable.

    Returns
    -------
    dict
        ``model, baseline, extra``; ``elpd_diff, se, z`` (the numbers the verdict used),
        ``by`` (:data:`BY_ITEM_LOO` when no item of either fit has Pareto k above
        ``k_threshold``, else :data:`BY_CLUSTERED`); ``rating_diff`` and ``dse`` (rating, item,
        rater and item_rater SEs of the rating-level difference); ``item_diff``, ``item_se``,
        ``items`` and ``item_k_high`` (items with high k in either fit); ``verdict``
        (``supported`` when ``z`` exceeds :data:`SUPPORT_SE`, else ``not supported``).
    """
    d_rating = rating[0].loo_i.values - rating[1].loo_i.values
    ses = clustered_ses(d_rating, obs)
    d_item = item[0].loo_i.values - item[1].loo_i.values
    item_se = float(np.sqrt(len(d_item) * np.var(d_item)))
    k_high = int(((item[0].pareto_k.values > k_threshold)
                  | (item[1].pareto_k.values > k_threshold)).sum())
    if k_high == 0:
        by, diff, se = BY_ITEM_LOO, float(d_item.sum()), item_se
    else:
        by, diff, se = BY_CLUSTERED, float(d_rating.sum()), ses["item_rater"]
    z = diff / se if se > 0 else float("nan")
    return {"model": model, "baseline": baseline, "extra": extra, "elpd_diff": diff, "se": se,
            "z": z, "by": by, "rating_diff": float(d_rating.sum()), "dse": ses,
            "item_diff": float(d_item.sum()), "item_se": item_se, "items": len(d_item),
            "item_k_high": k_high,
            "verdict": "supported" if z > SUPPORT_SE else "not supported"}


def sentence(c: dict, k_threshold: float = K_THRESHOLD) -> str:
    """One line for a :func:`judge` result: the verdict, its numbers and how it was reached."""
    who = " + ".join(c["extra"]) + (" (jointly)" if len(c["extra"]) > 1 else "")
    numbers = f"elpd difference {c['elpd_diff']:.1f} +- {c['se']:.1f}, {c['z']:.1f} SE, "
    if c["by"] == BY_ITEM_LOO:
        numbers += (f"leaving out one item at a time (PSIS-LOO over {c['items']} items, Pareto "
                    f"k <= {k_threshold:g} on every item)")
    else:
        numbers += (f"rating-level LOO with the SE clustered by item and rater (SE "
                    f"{c['dse']['rating']:.1f} if ratings were independent); leave-one-item-out "
                    f"unreliable: Pareto k > {k_threshold:g} on {c['item_k_high']} of "
                    f"{c['items']} items")
    numbers += f"; {c['model']} vs {c['baseline']}"
    if c["verdict"] == "supported":
        return f"{who}: the data support groups disagreeing about items ({numbers})"
    return (f"{who}: the data do not support groups disagreeing about items; the simpler model "
            f"is as good within {SUPPORT_SE:g} SE ({numbers})")
