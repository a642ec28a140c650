"""Seeded bootstrap intervals over prompts (and seeds) for the evaluation's differences.

Models of two groups are scored on the same held-out prompts, so prompts are resampled once
per replicate and shared by both sides (a paired bootstrap); seeds are resampled within each
side. A replicate's estimate is the difference of the two sides' means over the resampled
seeds and prompts, computed from multinomial resampling counts, so each replicate costs two
small matrix products. The interval is the equal-tailed percentile interval of the
replicates; :attr:`Interval.estimate` is the plain (not resampled) difference.

A case to check by hand: one seed, two prompts whose differences are 1 and 3. A replicate
draws the prompts (1, 1), (1, 3), (3, 1) or (3, 3), each with probability 1/4, so the
replicates are 1, 2 or 3 with probabilities 1/4, 1/2, 1/4, the 95% interval is [1, 3] and the
estimate 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval and replicates."""

    estimate: float
    lower: float
    upper: float
    n: int
    replicates: np.ndarray


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling counts, shape ``(n_boot, n)``, each row summing to ``n``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def bootstrap_difference(first: np.ndarray, second: np.ndarray, n_boot: int = 2000,
                         seed: int = 0, ci: float = 0.95) -> Interval:
    """Difference of means ``first - second`` over seeds and prompts, with its interval.

    Parameters
    ----------
    first, second : array (seeds, prompts)
        Scores of each side's models (one row per seed) on the same prompts (same columns).
    n_boot : int
        Replicates.
    seed : int
        Seed of the resampling.
    ci : float
        Probability mass of the interval.

    Returns
    -------
    Interval
        ``n`` is the number of prompts times the seeds of both sides.
    """
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    reps_a, reps_b = paired_means(first, second, n_boot, seed)
    return interval(float(first.mean() - second.mean()), reps_a - reps_b, ci,
                    first.shape[1] * (first.shape[0] + second.shape[0]))


def ratio_interval(first: np.ndarray, second: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   ci: float = 0.95) -> Interval:
    """Ratio of the means ``first / second`` (seeds x prompts each) with a paired bootstrap.

    Resampled as :func:`bootstrap_difference`. A case to check by hand: one seed, measures
    (1, 3) over (1, 1): the replicates are 1, 2, 3 with probabilities 1/4, 1/2, 1/4, the
    estimate 2 and the 95% interval [1, 3].

    When the interval of the denominator's replicates includes zero, the ratio's confidence
    set is unbounded (as Fieller's is): percentiles of ``a / b`` with ``b`` crossing zero are
    arbitrary, and may even exclude the estimate. The interval is then ``[-inf, inf]``.
    """
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    reps_a, reps_b = paired_means(first, second, n_boot, seed)
    n = first.size + second.size
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = interval(float(first.mean() / second.mean()), reps_a / reps_b, ci, n)
    denominator = interval(float(second.mean()), reps_b, ci)
    if denominator.lower <= 0.0 <= denominator.upper:
        return Interval(ratio.estimate, -np.inf, np.inf, n, ratio.replicates)
    return ratio


def mean_interval(values: np.ndarray, n_boot: int = 2000, seed: int = 0,
                  ci: float = 0.95) -> Interval:
    """Mean of a seeds x prompts array, resampling prompts and (within them) seeds."""
    values = np.atleast_2d(values)
    rng = np.random.default_rng(seed)
    prompts = resample_counts(values.shape[1], n_boot, rng) / values.shape[1]
    return interval(float(values.mean()), replicate_means(values, prompts, rng), ci,
                    values.size)


def paired_means(first: np.ndarray, second: np.ndarray, n_boot: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate means of two seeds x prompts arrays: prompts shared, seeds per side."""
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"both sides need the same prompts: {first.shape[1]} vs "
                         f"{second.shape[1]} columns")
    rng = np.random.default_rng(seed)
    prompts = resample_counts(first.shape[1], n_boot, rng) / first.shape[1]
    return replicate_means(first, prompts, rng), replicate_means(second, prompts, rng)


def replicate_means(values: np.ndarray, prompts: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Replicate means of ``values`` (seeds x prompts), seeds resampled from ``rng``.

    ``prompts`` holds each replicate's prompt weights (n_boot x prompts, rows summing to 1).
    """
    seeds = resample_counts(values.shape[0], len(prompts), rng) / values.shape[0]
    return np.einsum("bs,sp,bp->b", seeds, values, prompts)


def bootstrap_ratios(numerators: np.ndarray, denominators: np.ndarray, n_boot: int = 2000,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ratio estimates ``sum num / sum den`` of several cells, resampling the clusters.

    Parameters
    ----------
    numerators, denominators : array (clusters, cells)
        Per cluster (prompt) and cell, the sums that make the cell's ratio; the same clusters
        are resampled for every cell, so differences of cells get joint intervals.
    n_boot : int
    seed : int

    Returns
    -------
    estimates : array (cells,)
    replicates : array (n_boot, cells)
    """
    counts = resample_counts(numerators.shape[0], n_boot, np.random.default_rng(seed))
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = numerators.sum(0) / denominators.sum(0)
        replicates = (counts @ numerators) / (counts @ denominators)
    return estimates, replicates


def interval(estimate: float, replicates: np.ndarray, ci: float = 0.95,
             n: int = 0) -> Interval:
    """Return the equal-tailed percentile interval of ``replicates`` around ``estimate``."""
    lower, upper = np.nanquantile(replicates, [(1 - ci) / 2, (1 + ci) / 2])
    return Interval(float(estimate), float(lower), float(upper), int(n), replicates)
