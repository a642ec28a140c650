"""The group alignment matrix: whose preferences each trained model shares.

For every model (a label with one policy per seed: each group's model, the population's, the
un-tuned base) and every judging group, on the held-out response pairs of one dimension:

``weighted_accuracy``
    The share of pairs on which the policy's implicit preference (the sign of the implicit
    reward margin) points the way the group's posterior preference does, each pair weighted
    by the group's confidence ``|p - 1/2|`` (a tie of the policy counts half), where ``p`` is
    the probability that one rater of the group, rating both responses, prefers the first
    (:func:`disagree.labels.pair_preferences`). 0.5 is no agreement beyond chance.
``log_loss``
    The mean cross-entropy of the policy's preference probability ``sigmoid(margin)``
    against ``p`` (``log 2 = 0.693`` for a model with no preference).

A model's seeds are its training runs: intervals come from the two-level bootstrap of
:mod:`disagree.evaluate.bootstrap` (training seeds, paired by index across models, and prompts,
shared by every cell: :func:`~disagree.evaluate.bootstrap.bootstrap_ratios`), NaN with fewer
than three seeds, so the *diagonal advantage* of two groups A and B (:func:`diagonal_advantage`)
has a joint interval::

    advantage = ((acc(M_A, A) - acc(M_B, A)) + (acc(M_B, B) - acc(M_A, B))) / 2

for accuracy (the log loss with the sign turned, lower being better): how much more a group's
model agrees with its own group than the other group's model does, averaged over the two.

Views: ``all`` weighs every held-out pair alike; ``contested`` (``pair_weights`` of
:func:`contested_weights`) weighs each pair by how much the two groups of a comparison differ
in their probability of preferring its first response, ``|p_A - p_B|``: most pairs are ordered
alike by every group, and on those a group's model cannot show that it learned its own group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.evaluate.bootstrap import MIN_SEEDS, bootstrap_ratios, crossed_interval
from disagree.evaluate.policy import Policy
from disagree.labels import pair_preferences
from disagree.model import Fit
from disagree.pairs import BETTER

METRICS = ("weighted_accuracy", "log_loss")
COLUMNS = ["model_group", "judge_group", "dimension", "metric", "estimate", "lower", "upper",
           "n_pairs", "n_seeds", "view"]
ADVANTAGE_COLUMNS = ["comparison", "first", "second", "dimension", "metric", "estimate",
                     "lower", "upper", "n_seeds", "view"]
_EPS = 1e-6


def group_preferences(fit: Fit, pairs: pd.DataFrame, dimension: str,
                      groups: Mapping[str, Mapping[str, str] | None],
                      draws: int | None = None) -> pd.DataFrame:
    """Posterior preference ``p`` of each judging group on each pair, one column per group.

    Parameters
    ----------
    fit : Fit
    pairs : DataFrame
        ``prompt_id, item_a, item_b`` (see :func:`disagree.evaluate.heldout.response_pairs`).
    dimension : str
    groups : mapping
        Label -> ``{factor: level}`` (``None``: the population of the fit's raters).
    draws : int, optional
        Posterior draws used (default all).

    Returns
    -------
    DataFrame
        ``pairs`` plus one column per group label.
    """
    lower = BETTER.get(dimension, "higher") == "lower"
    out = pairs.copy()
    for label, group in groups.items():
        unit = "group" if group else "population"
        prefs = pair_preferences(fit, pairs[["item_a", "item_b"]], dimension, unit=unit,
                                 group=dict(group) if group else None, lower_is_better=lower,
                                 draws=draws)
        out[label] = prefs["preference"].to_numpy()
    return out


def policy_margins(policy: Policy, items: pd.DataFrame, pairs: pd.DataFrame,
                   batch_size: int = 16) -> np.ndarray:
    """Implicit reward margin ``r(item_a) - r(item_b)`` of ``policy`` on each pair."""
    rewards = pd.Series(policy.implicit_rewards(list(items["prompt"]), list(items["response"]),
                                                batch_size=batch_size),
                        index=items["item_id"].to_numpy())
    return rewards.loc[pairs["item_a"]].to_numpy() - rewards.loc[pairs["item_b"]].to_numpy()


def contested_weights(preferences: pd.DataFrame, first: str, second: str) -> np.ndarray:
    """Weight of each pair in the contested view: ``|p_first - p_second|``."""
    return np.abs(preferences[first].to_numpy() - preferences[second].to_numpy())


def alignment_matrix(preferences: pd.DataFrame, margins: Mapping[str, Sequence[np.ndarray]],
                     judge_groups: Sequence[str], dimension: str, n_boot: int = 2000,
                     seed: int = 0, ci: float = 0.95, *, pair_weights: np.ndarray | None = None,
                     view: str = "all", fixed: Sequence[str] = ("base",)
                     ) -> tuple[pd.DataFrame, dict]:
    """Agreement of every model with every judging group, with two-level intervals.

    Parameters
    ----------
    preferences : DataFrame
        From :func:`group_preferences`: ``prompt_id`` and one column per judging group.
    margins : mapping
        Model label -> one margin array per training seed (aligned with the rows of
        ``preferences``); every trained model has the same number of seeds.
    judge_groups : sequence of str
        Columns of ``preferences`` to judge with.
    dimension : str
        For the table.
    n_boot, seed, ci
        Bootstrap replicates, its seed, the interval's mass.
    pair_weights : array, optional
        A weight per pair (the ``contested`` view); default 1 each.
    view : str
        Written in the ``view`` column.
    fixed : sequence of str
        Models without training noise (the un-tuned base).

    Returns
    -------
    table : DataFrame
        Columns :data:`COLUMNS`, one row per model, judging group and metric.
    replicates : dict
        ``(model, judge, metric) -> (estimate, replicates, seeds)``, for
        :func:`diagonal_advantage`.
    """
    clusters = pd.factorize(preferences["prompt_id"])[0]
    n_clusters = clusters.max() + 1
    n_rows = max(len(seeds) for seeds in margins.values())
    extra = np.ones(len(preferences)) if pair_weights is None else np.asarray(pair_weights)
    cells, nums, dens, counts = [], [], [], []
    for model, seeds in margins.items():
        if len(seeds) not in (1, n_rows):
            raise ValueError(f"model {model!r} has {len(seeds)} seeds; the others {n_rows}")
        for judge in judge_groups:
            p = np.clip(preferences[judge].to_numpy(), _EPS, 1 - _EPS)
            parts = np.zeros((4, n_rows, n_clusters))
            for s, m in enumerate(seeds):
                weight = np.abs(p - 0.5) * extra
                right = np.where(m == 0, 0.5, (np.sign(m) == np.sign(p - 0.5)).astype(float))
                q = np.clip(1 / (1 + np.exp(-m)), _EPS, 1 - _EPS)
                loss = -(p * np.log(q) + (1 - p) * np.log(1 - q))
                for k, values in enumerate((weight * right, weight, loss * extra, extra)):
                    parts[k, s] = np.bincount(clusters, values, n_clusters)
            for metric, num, den in (("weighted_accuracy", parts[0], parts[1]),
                                     ("log_loss", parts[2], parts[3])):
                trained = model not in fixed
                cells.append((model, judge, metric, len(seeds),
                              len(seeds) if trained else MIN_SEEDS))
                nums.append(num)
                dens.append(den)
                counts.append(len(seeds))
    estimates, reps = bootstrap_ratios(np.stack(nums, axis=-1), np.stack(dens, axis=-1), n_boot,
                                       seed, counts)
    rows, replicates = [], {}
    for k, (model, judge, metric, n_seeds, rests_on) in enumerate(cells):
        iv = crossed_interval(estimates[k], reps[:, :, k], rests_on, n_clusters, ci)
        replicates[(model, judge, metric)] = (estimates[k], reps[:, :, k], rests_on)
        rows.append({"model_group": model, "judge_group": judge, "dimension": dimension,
                     "metric": metric, "estimate": iv.estimate, "lower": iv.lower,
                     "upper": iv.upper, "n_pairs": len(preferences), "n_seeds": n_seeds,
                     "view": view})
    return pd.DataFrame(rows, columns=COLUMNS), replicates


def diagonal_advantage(replicates: dict, first: str, second: str, dimension: str,
                       prompts: int, ci: float = 0.95, view: str = "all") -> pd.DataFrame:
    """How much more each of two groups' models agrees with its own group (both metrics).

    Parameters
    ----------
    replicates : dict
        From :func:`alignment_matrix`; ``first`` and ``second`` must be both model and judge
        labels there.
    first, second : str
        The two groups' labels.
    dimension : str
    prompts : int
        Number of held-out prompts (the prompt level's units).
    ci : float
    view : str
        Written in the ``view`` column.

    Returns
    -------
    DataFrame
        Columns :data:`ADVANTAGE_COLUMNS`, one row per metric; positive means each group's
        model represents its own group better.
    """
    rows = []
    for metric in METRICS:
        sign = 1.0 if metric == "weighted_accuracy" else -1.0
        parts = [(first, first, 1), (second, first, -1), (second, second, 1), (first, second, -1)]
        est = sum(s * replicates[(m, j, metric)][0] for m, j, s in parts) * sign / 2
        reps = sum(s * replicates[(m, j, metric)][1] for m, j, s in parts) * sign / 2
        n_seeds = min(replicates[(m, j, metric)][2] for m, j, _ in parts)
        iv = crossed_interval(est, reps, n_seeds, prompts, ci)
        rows.append({"comparison": f"{first} vs {second}", "first": first, "second": second,
                     "dimension": dimension, "metric": metric, "estimate": iv.estimate,
                     "lower": iv.lower, "upper": iv.upper, "n_seeds": n_seeds, "view": view})
    return pd.DataFrame(rows, columns=ADVANTAGE_COLUMNS)
