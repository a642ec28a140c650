"""The three pair-building strategies, on validated inputs: ``majority``, ``all`` and ``soft``.

Depends on numpy and pandas only; :mod:`disagree.pairs.build` checks the arguments, selects the
ratings (dimensions, group, scale) or computes the posterior pair preferences, and hands them
here. Every function returns the kept pairs as a DataFrame with the columns ``prompt_id,
chosen_id, rejected_id, weight, unit`` (unsorted) and a dict of counts for the manifest.

Directions. ``sign[d]`` is +1 where a higher rating is better on dimension ``d`` and -1 where a
lower one is; a response's *score* on several dimensions is ``sum_d w_d * sign[d] * rating_d``
and the response with the higher score is ``chosen``.

Candidate pairs are every unordered pair of distinct responses (items) of the same prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: Decimals to which multi-dimension scores are rounded before comparing (float sums of
#: weighted ratings that are equal in exact arithmetic must compare equal).
SCORE_DECIMALS = 9
TIE_RULES = ("worse", "drop")


def preference_probability(p_a: np.ndarray, p_b: np.ndarray,
                           lower_is_better: bool = True) -> np.ndarray:
    """Probability that response ``a`` is better than ``b``, ties counted half.

    With independent ratings ``Y_a ~ Categorical(p_a)`` and ``Y_b ~ Categorical(p_b)``, returns
    ``P(a strictly better) + 0.5 * P(Y_a = Y_b)``, i.e. ``0.5 * (1 + P(Y_a < Y_b) - P(Y_a >
    Y_b))`` where lower is better (signs swapped where higher is better). The weights of
    ``(a, b)`` and ``(b, a)`` therefore sum to 1, and identical distributions give 0.5.

    Applied to a unit's soft labels (predictive distributions marginal over the rater
    effect), this compares two *different* random raters of the unit; the weights of soft
    pairs are for one rater rating both responses instead
    (:func:`disagree.labels.pair_preferences`).

    Parameters
    ----------
    p_a, p_b : array (..., K)
        Category probabilities (each row sums to 1).
    lower_is_better : bool
        Direction of the dimension.

    Returns
    -------
    array (...)
        Values in [0, 1].
    """
    p_a, p_b = np.asarray(p_a, dtype=float), np.asarray(p_b, dtype=float)
    cdf_b = np.cumsum(p_b, axis=-1)
    less = np.sum(p_a * (cdf_b[..., -1:] - cdf_b), axis=-1)  # P(Y_a < Y_b)
    greater = np.sum(p_a * (cdf_b - p_b), axis=-1)  # P(Y_a > Y_b)
    diff = less - greater if lower_is_better else greater - less
    return np.clip(0.5 * (1.0 + diff), 0.0, 1.0)


def response_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """Every unordered pair of responses of the same prompt.

    Parameters
    ----------
    items : DataFrame
        Columns ``item_id`` and ``prompt_id``.

    Returns
    -------
    DataFrame
        ``prompt_id, item_a, item_b`` with ``item_a < item_b``.
    """
    left = items[["item_id", "prompt_id"]].rename(columns={"item_id": "item_a"})
    right = items[["item_id", "prompt_id"]].rename(columns={"item_id": "item_b"})
    both = left.merge(right, on="prompt_id")
    both = both[both["item_a"] < both["item_b"]]
    return both[["prompt_id", "item_a", "item_b"]].reset_index(drop=True)


def majority_pairs(ratings: pd.DataFrame, items: pd.DataFrame, weights: Mapping[str, float],
                   sign: Mapping[str, int], ties: str = "worse", unit: str = "population",
                   ) -> tuple[pd.DataFrame, dict]:
    """One pair per response pair of a prompt whose majority labels differ; weight 1.

    The label of a response on a dimension is the most frequent rating (the mode). When
    several ratings are equally frequent (a tied majority), ``ties="worse"`` takes the worst
    of them by the dimension's direction (the highest toxicity, the lowest helpfulness: a
    response is never credited with a quality that half of its raters deny), and
    ``ties="drop"`` leaves the response without a label on that dimension, so its pairs are
    dropped. With several dimensions the labels are combined into the weighted score.

    Parameters
    ----------
    ratings : DataFrame
        ``rater_id, item_id, dimension, rating`` of the selected raters and dimensions.
    items : DataFrame
        ``item_id, prompt_id`` of the candidate responses.
    weights : mapping
        Weight per dimension.
    sign : mapping
        +1 (higher is better) or -1 (lower is better) per dimension.
    ties : {"worse", "drop"}
        Tie rule.
    unit : str
        Value of the ``unit`` column.

    Returns
    -------
    pairs : DataFrame
        ``prompt_id, chosen_id, rejected_id, weight, unit``.
    counts : dict
        ``response_pairs`` (candidates), ``kept``, ``dropped`` by reason (``same_label``,
        ``tied_majority``, ``unrated``), ``tied_responses`` per dimension and
        ``kept_with_tie_broken_label``.
    """
    dims = list(weights)
    n = ratings.groupby(["item_id", "dimension", "rating"], sort=False).size()
    modes = n[n == n.groupby(level=[0, 1]).transform("max")].reset_index(name="n")
    modes["goodness"] = modes["rating"] * modes["dimension"].map(sign)
    modes["n_modes"] = modes.groupby(["item_id", "dimension"])["rating"].transform("size")
    label = modes.sort_values("goodness", kind="stable").drop_duplicates(
        ["item_id", "dimension"], keep="first")
    tied = label["n_modes"] > 1
    tied_responses = {d: int(((label["dimension"] == d) & tied).sum()) for d in dims}
    if ties == "drop":
        label = label[~tied]
    wide = label.set_index(["item_id", "dimension"])[["rating", "n_modes"]].unstack("dimension")
    ids = items["item_id"]
    ratings_wide = wide["rating"].reindex(index=ids, columns=dims)
    score = _score(ratings_wide.to_numpy(float), weights, sign, dims)
    was_tied = (wide["n_modes"].reindex(index=ids, columns=dims) > 1).any(axis=1).to_numpy()
    rated = ratings[["item_id", "dimension"]].drop_duplicates()
    has_all = rated.groupby("item_id")["dimension"].nunique().reindex(ids).fillna(0) == len(dims)
    cand = response_pairs(items)
    pos = pd.Index(ids)
    ia, ib = pos.get_indexer(cand["item_a"]), pos.get_indexer(cand["item_b"])
    s_a, s_b = score[ia], score[ib]
    missing = np.isnan(s_a) | np.isnan(s_b)
    complete = has_all.to_numpy()
    is_unrated = ~(complete[ia] & complete[ib])
    same = ~missing & (s_a == s_b)
    keep = ~missing & ~same
    a_better = s_a > s_b
    pairs = _oriented(cand[keep], a_better[keep], np.ones(int(keep.sum())), unit)
    counts = {
        "response_pairs": len(cand), "kept": int(keep.sum()),
        "dropped": {"same_label": int(same.sum()),
                    "tied_majority": int((missing & ~is_unrated).sum()),
                    "unrated": int(is_unrated.sum())},
        "tie_rule": ties, "tied_responses": tied_responses,
        "kept_with_tie_broken_label": int((keep & (was_tied[ia] | was_tied[ib])).sum()),
    }
    return pairs, counts


def all_pairs(ratings: pd.DataFrame, items: pd.DataFrame, weights: Mapping[str, float],
              sign: Mapping[str, int]) -> tuple[pd.DataFrame, dict]:
    """One pair per rater and response pair the rater rated differently; weight 1.

    A rater's score of a response is the weighted score of the rater's own ratings; a
    rater-response needs a rating on every selected dimension (else it is dropped and
    counted as ``incomplete``). Duplicates (several raters with the same preference) are kept
    on purpose; the ``unit`` column is ``"rater:<rater_id>"``.

    Parameters
    ----------
    ratings : DataFrame
        ``rater_id, item_id, dimension, rating`` of the selected raters and dimensions.
    items : DataFrame
        ``item_id, prompt_id`` of the candidate responses.
    weights, sign : mapping
        As in :func:`majority_pairs`.

    Returns
    -------
    pairs : DataFrame
    counts : dict
        ``rater_comparisons`` (candidates), ``kept``, ``dropped`` (``same_label``),
        ``incomplete_rater_responses``, ``duplicates`` (kept pairs repeating an earlier
        ``(prompt, chosen, rejected)``), ``distinct_pairs`` and ``conflicting_response_pairs``
        (response pairs preferred both ways by different raters).
    """
    dims = list(weights)
    ratings = ratings[ratings["item_id"].isin(items["item_id"])]
    wide = ratings.set_index(["rater_id", "item_id", "dimension"])["rating"].unstack(
        "dimension").reindex(columns=dims)
    score = _score(wide.to_numpy(float), weights, sign, dims)
    complete = ~np.isnan(score)
    per = wide.index.to_frame(index=False)[complete]
    per["score"] = score[complete]
    per = per.merge(items[["item_id", "prompt_id"]], on="item_id")
    both = per.merge(per, on=["rater_id", "prompt_id"], suffixes=("_a", "_b"))
    both = both[both["item_id_a"] < both["item_id_b"]]
    cand = both.rename(columns={"item_id_a": "item_a", "item_id_b": "item_b"})
    s_a, s_b = cand["score_a"].to_numpy(), cand["score_b"].to_numpy()
    keep = s_a != s_b
    units = "rater:" + cand["rater_id"].astype(str)
    pairs = _oriented(cand[keep], (s_a > s_b)[keep], np.ones(int(keep.sum())),
                      units[keep].to_numpy(dtype=object))
    key = pairs[["prompt_id", "chosen_id", "rejected_id"]]
    distinct = key.drop_duplicates()
    c = distinct["chosen_id"].to_numpy(dtype=object)
    r = distinct["rejected_id"].to_numpy(dtype=object)
    unordered = pd.DataFrame({"a": np.where(c < r, c, r), "b": np.where(c < r, r, c)})
    counts = {
        "rater_comparisons": len(cand), "kept": int(keep.sum()),
        "dropped": {"same_label": int((~keep).sum())},
        "incomplete_rater_responses": int((~complete).sum()),
        "duplicates": len(pairs) - len(distinct), "distinct_pairs": len(distinct),
        "conflicting_response_pairs": int(unordered.duplicated().sum()),
    }
    return pairs, counts


def soft_pairs(candidates: pd.DataFrame, preferences: Mapping[str, np.ndarray],
               weights: Mapping[str, float], margin: float) -> tuple[pd.DataFrame, dict]:
    """Every response pair of a prompt for every unit, weighted by the posterior preference.

    The weight of a pair on one dimension is the probability that one rater of the unit,
    rating both responses, rates ``item_a`` better, ties counted half
    (:func:`disagree.labels.pair_preferences`); with several dimensions it is the weighted
    average of the per-dimension probabilities (``sum_d w_d P_d / sum_d w_d``). Each pair is
    oriented so that ``weight >= 0.5`` (``chosen`` is the response more likely preferred) and
    pairs with ``|weight - 0.5| < margin`` are dropped.

    Parameters
    ----------
    candidates : DataFrame
        ``prompt_id, item_a, item_b, unit``: one row per unit and response pair.
    preferences : mapping of dimension to array
        Per dimension, the probability that ``item_a`` is preferred, one value per row of
        ``candidates`` (the dimension's direction already applied).
    weights : mapping
        Weight per dimension.
    margin : float
        Minimum distance of a kept weight from 0.5.

    Returns
    -------
    pairs : DataFrame
    counts : dict
        ``unit_response_pairs`` (candidates: units x response pairs), ``units``, ``kept``,
        ``dropped`` (``margin``) and ``weight_quantiles`` of the kept pairs.
    """
    total = sum(weights.values())
    w = np.zeros(len(candidates))
    for d, weight in weights.items():
        p = np.asarray(preferences[d], dtype=float)
        if p.shape != w.shape:
            raise ValueError(f"preferences on {d}: {p.shape[0]} values for {len(w)} candidates")
        w += weight / total * p
    keep = np.abs(w - 0.5) >= margin
    a_better = w >= 0.5
    weight = np.where(a_better, w, 1.0 - w)[keep]
    pairs = _oriented(candidates[keep], a_better[keep], weight,
                      candidates["unit"].to_numpy(dtype=object)[keep])
    qs = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
    quantiles = {f"q{int(q * 100):02d}": float(np.quantile(weight, q)) if len(weight) else None
                 for q in qs}
    counts = {"unit_response_pairs": len(candidates), "units": int(candidates["unit"].nunique()),
              "kept": int(keep.sum()), "dropped": {"margin": int((~keep).sum())},
              "weight_quantiles": quantiles}
    return pairs, counts


def _score(ratings: np.ndarray, weights: Mapping[str, float], sign: Mapping[str, int],
           dims: Sequence[str]) -> np.ndarray:
    """Weighted, direction-signed score of rows of ratings (columns ``dims``; NaN if any is)."""
    coef = np.array([weights[d] * sign[d] for d in dims], dtype=float)
    return np.round(ratings @ coef, SCORE_DECIMALS)


def _oriented(cand: pd.DataFrame, a_better: np.ndarray, weight: np.ndarray,
              unit: str | np.ndarray) -> pd.DataFrame:
    """Kept candidate pairs as ``prompt_id, chosen_id, rejected_id, weight, unit``."""
    a, b = cand["item_a"].to_numpy(dtype=object), cand["item_b"].to_numpy(dtype=object)
    return pd.DataFrame({
        "prompt_id": cand["prompt_id"].to_numpy(dtype=object),
        "chosen_id": np.where(a_better, a, b), "rejected_id": np.where(a_better, b, a),
        "weight": np.asarray(weight, dtype=float),
        "unit": np.broadcast_to(np.asarray(unit, dtype=object), len(cand)),
    })
