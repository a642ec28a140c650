"""``make_pairs``: check the inputs, pick the ratings or pair preferences, build, split, record.

Depends on :mod:`disagree.data` (ratings, scale conversion), :mod:`disagree.model` (loading a
fit), :mod:`disagree.labels` (pair preferences) and the sibling modules
:mod:`disagree.pairs.strategies` and :mod:`disagree.pairs.pairset`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import sha256_file, versions
from disagree.data.groups import POPULATION, format_group
from disagree.data.ratings import RatingTable
from disagree.data.scale import to_scale as convert_scale
from disagree.data.splits import SPLITS, check_fractions, split_prompts
from disagree.errors import DataError, ModelError, renamed
from disagree.labels import PREFERENCE, pair_preferences
from disagree.model.fitting import Fit, load_fit
from disagree.pairs.pairset import COLUMNS, FORMAT, PairSet
from disagree.pairs.strategies import (
    TIE_RULES,
    all_pairs,
    majority_pairs,
    response_pairs,
    soft_pairs,
)

STRATEGIES = ("majority", "all", "soft")
UNITS = ("population", "group", "rater")
#: Default direction of the known dimensions.
BETTER = {"toxicity": "lower", "stereotypical_bias": "lower", "emotional_awareness": "higher",
          "sensitivity": "higher", "helpfulness": "higher"}
TEXT_COLUMNS = ("prompt_id", "prompt", "response")


def make_pairs(table: RatingTable, fit: Fit | str | os.PathLike[str] | None = None, *,
               dimension: str | Sequence[str] | Mapping[str, float] = "toxicity",
               strategy: str = "majority", unit: str | None = None,
               group: Mapping[str, str] | None = None, to_scale: int | None = None,
               margin: float = 0.0, better: Mapping[str, str] | None = None,
               split: Sequence[float] | None = (0.8, 0.1, 0.1), seed: int = 0,
               ties: str = "worse", draws: int | None = None,
               scale: int | None = None) -> PairSet:
    """Build preference pairs between responses to the same prompt.

    Parameters
    ----------
    table : RatingTable
        Ratings whose items have the attributes ``prompt_id``, ``prompt`` and ``response``.
    fit : Fit or path, optional
        The fit of these ratings (or its directory); required for ``strategy="soft"``. Its
        data hash must equal ``table.data_hash`` (or, with ``scale``, that of the converted
        table); given as a directory, the SHA-256 of its ``posterior.nc`` is recorded too.
    dimension : str, sequence of str or mapping of str to float
        The dimension, several dimensions (equal weights) or dimensions with positive weights.
        Several dimensions are combined per pair: ``majority`` and ``all`` compare the weighted
        sums of direction-signed ratings (``sum_d w_d * sign_d * rating_d``, ``sign_d = +1``
        where higher is better); ``soft`` takes the weighted average of the per-dimension
        preference probabilities.
    strategy : {"majority", "all", "soft"}
        ``majority``: one pair per response pair whose majority labels differ, weight 1.
        ``all``: one pair per rater who rated both responses differently, weight 1,
        duplicates kept. ``soft``: every response pair, weighted by the posterior probability
        that one rater of the unit, rating both responses, rates ``chosen`` better (ties
        half; the rater's effect is the same for both ratings, see
        :func:`disagree.labels.pair_preferences`); a group's weights use its own
        group-by-item deviations when the fit has interactions.
    unit : {"population", "group", "rater"}, optional
        Whose preference ``soft`` weights: the population of the fit's raters, the ``group``,
        or each rater of the fit (one pair per rater and response pair). Default: ``group``
        when ``group`` is given, else ``population``. ``majority`` accepts ``population`` or
        ``group``; ``all`` is always per rater.
    group : mapping, optional
        Restrict to one group of raters, e.g. ``{"politics": "conservative"}``: the raters
        with these factor levels (``majority``, ``all``, ``soft`` with ``unit="rater"``) or
        the group's soft labels (``soft``, whose factors must be among the fit's factors).
    to_scale : {2, 3, 5}, optional
        Convert the ratings to this many categories first (:func:`disagree.data.to_scale`);
        for ``soft`` it must equal the fit's scale.
    margin : float
        ``soft`` only: drop pairs whose weight is within ``margin`` of 0.5 (counted). The
        default 0 keeps every pair: the near-indifferent pairs are what soft-target DPO learns
        indifference from, and what makes importance weights differ from plain DPO's.
    better : mapping, optional
        ``"lower"`` or ``"higher"`` per dimension; defaults in :data:`BETTER`, and required
        for any other dimension.
    split : (train, validation, test) fractions, optional
        Prompts (all of the table's, sorted) are shuffled with ``seed`` and cut at these
        fractions, so no prompt is in two splits and a prompt's split does not depend on the
        strategy or dimension. ``None``: every pair in ``train``.
    seed : int
        Seed of the split.
    ties : {"worse", "drop"}
        ``majority`` only: a tied majority takes the worse of the tied ratings, or leaves the
        response unlabelled (its pairs dropped); tied responses are counted either way.
    draws : int, optional
        ``soft`` only: posterior draws used for the weights (default all).
    scale : int, optional
        Deprecated name of ``to_scale``.

    Returns
    -------
    PairSet

    Raises
    ------
    DataError
        Bad arguments, ratings without the text columns, an unknown group, an empty result.
    ModelError
        No fit for ``soft``, a fit made from other ratings, a dimension or group factor not in
        the fit, or a scale different from the fit's.
    """
    scale = renamed(to_scale, scale, "scale", "to_scale")
    weights, sign, better_used = _dimensions(dimension, better, table)
    unit = _check_options(strategy, unit, group, margin, ties, scale)
    fractions = (1.0, 0.0, 0.0) if split is None else check_fractions(split)
    fit, posterior_sha = _resolve_fit(fit)
    original_hash = table.data_hash
    if scale is not None:
        table = convert_scale(table, scale)
    if fit is not None:
        _check_fit(fit, original_hash, table.data_hash, list(weights))
    items = _items(table)
    raters = _group_raters(table, group)
    unit_label = format_group(group)
    ratings = table.ratings[table.ratings["dimension"].isin(list(weights))
                            & table.ratings["item_id"].isin(items["item_id"])]
    if raters is not None:
        ratings = ratings[ratings["rater_id"].isin(raters)]
    if strategy == "majority":
        pairs, counts = majority_pairs(ratings, items, weights, sign, ties, unit_label)
    elif strategy == "all":
        pairs, counts = all_pairs(ratings, items, weights, sign)
    else:
        candidates, prefs = _soft_preferences(fit, weights, sign, items, unit, group, raters,
                                              scale, draws)
        pairs, counts = soft_pairs(candidates, prefs, weights, margin)
    if not len(pairs):
        raise DataError(_why_empty(strategy, counts, weights, group, margin))
    frame = _frame(pairs, table, items, "+".join(weights), strategy)
    assignment = split_prompts(items["prompt_id"], fractions, seed)
    frame["split"] = frame["prompt_id"].astype(str).map(assignment)
    manifest = _manifest(table, fit, original_hash, posterior_sha, frame, counts, {
        "strategy": strategy, "dimensions": weights, "better": better_used, "unit": unit,
        "group": dict(group) if group else None, "to_scale": scale, "margin": margin,
        "ties": ties if strategy == "majority" else None, "draws": draws,
        "split": dict(zip(SPLITS, fractions, strict=True)) if split is not None else None,
        "seed": seed}, assignment, split is not None)
    return PairSet(frame, manifest)


# --- checks --------------------------------------------------------------------------------

def _dimensions(dimension: str | Sequence[str] | Mapping[str, float],
                better: Mapping[str, str] | None, table: RatingTable,
                ) -> tuple[dict[str, float], dict[str, int], dict[str, str]]:
    """Weights, signs (+1 higher is better) and directions of the chosen dimensions."""
    if isinstance(dimension, str):
        weights = {dimension: 1.0}
    elif isinstance(dimension, Mapping):
        weights = {str(d): w for d, w in dimension.items()}
    else:
        weights = {str(d): 1.0 for d in dimension}
    if not weights:
        raise DataError("dimension: no dimension given; the table has "
                        f"{', '.join(table.dimensions)}")
    bad = {d: w for d, w in weights.items()
           if not isinstance(w, int | float | np.number) or not np.isfinite(w) or w <= 0}
    if bad:
        raise DataError(f"dimension weights must be positive numbers; got {bad}")
    unknown = [d for d in weights if d not in table.dimensions]
    if unknown:
        raise DataError(f"dimension {', '.join(map(repr, unknown))} not in the ratings; "
                        f"dimensions are {', '.join(table.dimensions)}")
    directions = {**BETTER, **dict(better or {})}
    missing = [d for d in weights if d not in directions]
    if missing:
        raise DataError(f"better: no direction for dimension {', '.join(map(repr, missing))}; "
                        "give better={dimension: 'lower' or 'higher'}")
    wrong = {d: directions[d] for d in weights if directions[d] not in ("lower", "higher")}
    if wrong:
        raise DataError(f"better: {wrong}; expected 'lower' or 'higher'")
    sign = {d: 1 if directions[d] == "higher" else -1 for d in weights}
    return {d: float(w) for d, w in weights.items()}, sign, {d: directions[d] for d in weights}


def _check_options(strategy: str, unit: str | None, group: Mapping[str, str] | None,
                   margin: float, ties: str, scale: int | None) -> str:
    """Validate the strategy options; return the unit."""
    if strategy not in STRATEGIES:
        raise DataError(f"strategy={strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if unit is None:
        unit = "rater" if strategy == "all" else ("group" if group else "population")
    if unit not in UNITS:
        raise DataError(f"unit={unit!r}; choose one of {', '.join(UNITS)}")
    if unit == "group" and not group:
        raise DataError("unit='group' needs group={factor: level}, "
                        "e.g. group={'politics': 'conservative'}")
    if group and unit == "population":
        raise DataError(f"group={dict(group)!r} with unit='population': use unit='group' "
                        "(or leave unit out)")
    allowed = {"majority": ("population", "group"), "all": ("rater",),
               "soft": UNITS}[strategy]
    if unit not in allowed:
        raise DataError(f"unit={unit!r} is not used with strategy={strategy!r}; "
                        f"use {' or '.join(allowed)}")
    if not isinstance(margin, int | float) or not 0 <= margin < 0.5:
        raise DataError(f"margin={margin!r}; expected a number in [0, 0.5)")
    if ties not in TIE_RULES:
        raise DataError(f"ties={ties!r}; choose one of {', '.join(TIE_RULES)}")
    if scale is not None and (not isinstance(scale, int | np.integer) or scale < 2):
        raise DataError(f"to_scale={scale!r}; expected an integer number of categories "
                        "such as 2, 3 or 5")
    return unit


def _resolve_fit(fit: Fit | str | os.PathLike[str] | None) -> tuple[Fit | None, str | None]:
    """Load a fit given as a directory; SHA-256 of its posterior file when known.

    ``load_fit`` has checked the posterior against the SHA-256 in ``model.json``, so that one
    is taken; only a fit written before the hash was recorded is hashed here.
    """
    if fit is None or isinstance(fit, Fit):
        return fit, None
    loaded = load_fit(fit)
    return loaded, (loaded.info.get("posterior_sha256")
                    or sha256_file(Path(fit) / "posterior.nc"))


def _check_fit(fit: Fit, original_hash: str, scaled_hash: str, dims: list[str]) -> None:
    """Check that the fit comes from these ratings and models the chosen dimensions."""
    made_from = fit.info.get("data_hash")
    if made_from not in (original_hash, scaled_hash):
        raise ModelError(f"fit was made from different ratings (hash {str(made_from)[:12]} != "
                         f"{original_hash[:12]} of the ratings given); refit or pass the "
                         "ratings it was made from")
    missing = [d for d in dims if d not in fit.spec.dimensions]
    if missing:
        raise ModelError(f"dimension {', '.join(map(repr, missing))} not in the fit; the fit "
                         f"models {', '.join(fit.spec.dimensions)}")


def _items(table: RatingTable) -> pd.DataFrame:
    """``item_id, prompt_id`` of the responses, after checking the text columns."""
    missing = [c for c in TEXT_COLUMNS if c not in table.items.columns]
    if missing:
        raise DataError(f"{table.source}: preference pairs need the item column(s) "
                        f"{', '.join(missing)} (prompt id, prompt text and response text); "
                        f"item attributes are: {', '.join(table.items.columns) or '(none)'}")
    items = table.items[list(TEXT_COLUMNS)]
    blank = items.index[items.isna().any(axis=1)]
    if len(blank):
        raise DataError(f"{table.source}: {len(blank)} item(s) lack a prompt_id, prompt or "
                        f"response: {', '.join(map(str, blank[:8]))}")
    texts = items.groupby("prompt_id")["prompt"].nunique()
    if (texts > 1).any():
        bad = texts.index[texts > 1]
        raise DataError(f"{table.source}: column prompt differs between the responses of "
                        f"prompt_id {', '.join(map(str, bad[:8]))}; one prompt id, one text")
    return pd.DataFrame({"item_id": items.index.astype(str).to_numpy(dtype=object),
                         "prompt_id": items["prompt_id"].astype(str).to_numpy(dtype=object)})


def _group_raters(table: RatingTable, group: Mapping[str, str] | None) -> pd.Index | None:
    """Ids of the raters in ``group`` (None: everyone); errors name the valid levels."""
    if not group:
        return None
    keep = np.ones(len(table.raters), dtype=bool)
    for factor, level in group.items():
        if factor not in table.raters.columns:
            raise DataError(f"group factor {factor!r} is not a rater attribute; rater "
                            f"attributes are {', '.join(table.raters.columns)}")
        values = table.raters[factor].astype(str)
        levels = sorted(values.dropna().unique())
        if str(level) not in levels:
            raise DataError(f"group level {factor}={level!r} does not exist; levels of "
                            f"{factor!r} are {', '.join(levels)}")
        keep &= (values == str(level)).to_numpy()
    return table.raters.index[keep]


def _soft_preferences(fit: Fit | None, weights: Mapping[str, float], sign: Mapping[str, int],
                      items: pd.DataFrame, unit: str, group: Mapping[str, str] | None,
                      raters: pd.Index | None, scale: int | None, draws: int | None,
                      ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Candidates (``prompt_id, item_a, item_b, unit``) and, per dimension, P(a preferred)."""
    if fit is None:
        raise ModelError("strategy='soft' needs a fit: make_pairs(table, fit, ...) with a Fit "
                         "or a fit directory")
    if scale is not None and scale != fit.spec.scale:
        raise ModelError(f"to_scale={scale} but the fit models a {fit.spec.scale}-point scale; "
                         "soft pairs need the fit's scale (fit the converted ratings)")
    fit_items = {str(j) for j in fit.idata.posterior.coords["item"].values}
    absent = sorted(set(items["item_id"]) - fit_items)
    if absent:
        raise ModelError(f"item(s) {', '.join(absent[:5])} not in the fit; was it made with "
                         "dimensions=... that these items were never rated on?")
    kwargs: dict[str, Any] = {"unit": unit, "draws": draws}
    if unit == "group":
        kwargs["group"] = dict(group)
    elif unit == "rater" and raters is not None:
        fit_raters = {str(r) for r in fit.idata.posterior.coords["rater"].values}
        kwargs["raters"] = [str(r) for r in raters if str(r) in fit_raters]
    cand = response_pairs(items)
    prefs, frame = {}, cand
    for d in weights:
        frame = pair_preferences(fit, cand, d, lower_is_better=sign[d] < 0, **kwargs)
        prefs[d] = frame[PREFERENCE].to_numpy(float)
    if unit == "group":
        label: Any = format_group(group)
    elif unit == "rater":
        label = ("rater:" + frame["rater_id"].astype(str)).to_numpy(dtype=object)
    else:
        label = POPULATION
    candidates = frame[["prompt_id", "item_a", "item_b"]].assign(unit=label)
    return candidates, prefs


# --- output --------------------------------------------------------------------------------

def _frame(pairs: pd.DataFrame, table: RatingTable, items: pd.DataFrame, dimension: str,
           strategy: str) -> pd.DataFrame:
    """Attach texts and labels; sort rows deterministically; the columns of COLUMNS."""
    pairs = pairs.sort_values(["prompt_id", "chosen_id", "rejected_id", "unit"],
                              kind="stable").reset_index(drop=True)
    text = table.items["response"].set_axis(table.items.index.astype(str))
    prompt = table.items.set_axis(table.items.index.astype(str))["prompt"]
    prompt_of = prompt.groupby(items.set_index("item_id")["prompt_id"]).first()
    n = len(pairs)
    frame = pd.DataFrame({
        "prompt": prompt_of.reindex(pairs["prompt_id"]).to_numpy(dtype=object),
        "chosen": text.reindex(pairs["chosen_id"]).to_numpy(dtype=object),
        "rejected": text.reindex(pairs["rejected_id"]).to_numpy(dtype=object),
        "weight": pairs["weight"].to_numpy(float),
        "prompt_id": pairs["prompt_id"].to_numpy(dtype=object),
        "chosen_id": pairs["chosen_id"].to_numpy(dtype=object),
        "rejected_id": pairs["rejected_id"].to_numpy(dtype=object),
        "dimension": np.full(n, dimension, dtype=object),
        "strategy": np.full(n, strategy, dtype=object),
        "unit": pairs["unit"].to_numpy(dtype=object),
        "split": np.full(n, SPLITS[0], dtype=object),
    })
    return frame[list(COLUMNS)]


def _manifest(table: RatingTable, fit: Fit | None, original_hash: str, posterior_sha: str | None,
              frame: pd.DataFrame, counts: dict, options: dict,
              assignment: Mapping[str, str], split_used: bool) -> dict:
    """Return the manifest: inputs, options, counts, splits and versions (no timestamps)."""
    by_split = {name: {"pairs": int((frame["split"] == name).sum()),
                       "prompts": int(frame.loc[frame["split"] == name, "prompt_id"].nunique())}
                for name in SPLITS}
    prompts = {name: sorted(p for p, s in assignment.items() if s == name) for name in SPLITS}
    return {
        "format": FORMAT,
        "columns": list(COLUMNS),
        "strategy": options["strategy"], "dimension": "+".join(options["dimensions"]),
        "unit": options["unit"], "seed": options["seed"],
        "inputs": {
            "ratings_source": table.source if table.source else None,
            "ratings_hash": original_hash,
            "scaled_ratings_hash": table.data_hash if options["to_scale"] is not None else None,
            "fit_data_hash": fit.info.get("data_hash") if fit is not None else None,
            "fit_posterior_sha256": posterior_sha,
            "fit_sampler": fit.info.get("sampler") if fit is not None else None,
            "fit_interactions": list(fit.spec.interactions) if fit is not None else None,
            "fit_effects": fit.spec.effects if fit is not None else None,
        },
        "options": options,
        "counts": {**counts, "pairs": len(frame),
                   "prompts_with_pairs": int(frame["prompt_id"].nunique()),
                   "by_split": by_split},
        "splits": prompts if split_used else None,
        "versions": versions("disagree-toolkit", "numpy", "pandas"),
    }


def _why_empty(strategy: str, counts: dict, weights: Mapping[str, float],
               group: Mapping[str, str] | None, margin: float) -> str:
    """Return a message that says why no pair was made."""
    dims = " + ".join(weights)
    who = f" among raters with {format_group(group)}" if group else ""
    dropped = counts.get("dropped", {})
    if strategy == "majority":
        if not counts["response_pairs"]:
            return "no pairs: no prompt has two or more responses"
        return (f"no pairs: no prompt has two responses with different majority labels on "
                f"{dims}{who} ({counts['response_pairs']} response pairs: "
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in dropped.items()) + ")")
    if strategy == "all":
        return (f"no pairs: no rater{who} rated two responses of one prompt differently on "
                f"{dims} ({counts['rater_comparisons']} rater comparisons, "
                f"{dropped.get('same_label', 0)} with the same rating)")
    if not counts["unit_response_pairs"]:
        return "no pairs: no prompt has two or more responses (or the unit has no rater)"
    return (f"no pairs: all {counts['unit_response_pairs']} response pairs have a soft weight "
            f"within margin={margin} of 0.5 on {dims}; lower the margin")
