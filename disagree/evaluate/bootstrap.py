"""Intervals of the evaluation that count training seeds and prompts as sources of noise.

A trained model's score on a held-out prompt varies with the prompt *and* with the training
run (its seed), and the two are crossed: every seed's model is scored on the same prompts.
Every model-side interval therefore comes from a two-level bootstrap:

* the *seed level*: training seeds resampled with replacement (prompts kept), which measures
  how much the estimate would move with other training runs;
* the *prompt level*: prompts resampled with replacement (seeds kept), shared by every model
  in the comparison (a paired bootstrap), which measures how much it would move with other
  prompts.

Each level's replicate variance is scaled by ``n / (n - 1)`` (the bootstrap's variance of a
mean of ``n`` units is the population variance over ``n``, which understates the sampling
variance by that factor: with three seeds by a third), the two are added, and the interval is
``estimate +- t(df) * se`` with Welch-Satterthwaite degrees of freedom (the seed level has
``S - 1``, the prompt level ``P - 1``). A percentile interval of the resampled seeds cannot be
trusted with few seeds: with three, all three seed means fall on one side of zero a quarter of
the time under the null, and the percentile interval then excludes zero
(``benchmarks/evaluation_coverage.py`` measures both; the tests check the coverage of
this one by simulation).

With fewer than :data:`MIN_SEEDS` training seeds the seed level cannot be estimated: the
interval is NaN (the estimate stands alone) and :attr:`Interval.n_seeds` says why. A side
without training noise (the un-tuned base model) is ``fixed``.

A case to check by hand (``tests/test_evaluation_intervals.py``): one side, three seeds by two
prompts, ``[[1, 3], [2, 4], [3, 5]]``. The seed means are 2, 3, 4 (sample variance 1), the
prompt means 2 and 4 (sample variance 2), so ``se**2 = 1/3 + 2/2 = 4/3`` and
``df = (4/3)**2 / ((1/3)**2 / 2 + 1**2 / 1) = 32/19``; the interval is
``3 +- t(32/19) * sqrt(4/3)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: The fewest training seeds an interval rests on.
MIN_SEEDS = 3


@dataclass(frozen=True)
class Interval:
    """An estimate, its interval and the replicates of the two levels.

    ``replicates`` has shape ``(2, n_boot)``: the statistic with the seeds resampled (prompts
    kept), then with the prompts resampled (seeds kept). ``n_seeds`` is the fewest seeds of a
    trained side; ``lower`` and ``upper`` are NaN when it is below :data:`MIN_SEEDS`.
    """

    estimate: float
    lower: float
    upper: float
    n: int
    replicates: np.ndarray
    n_seeds: int = 0
    se: float = float("nan")
    df: float = float("nan")


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling counts, shape ``(n_boot, n)``, each row summing to ``n``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


@dataclass(frozen=True)
class Resampling:
    """One bootstrap's weights: ``seeds`` (n_boot, S) and ``prompts`` (n_boot, P), rows sum to 1."""

    seeds: np.ndarray
    prompts: np.ndarray

    @classmethod
    def draw(cls, n_seeds: int, n_prompts: int, n_boot: int, seed: int) -> Resampling:
        """Draw the weights of ``n_boot`` replicates (seeded)."""
        rng = np.random.default_rng(seed)
        prompts = resample_counts(n_prompts, n_boot, rng) / n_prompts
        return cls(resample_counts(n_seeds, n_boot, rng) / n_seeds, prompts)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Replicates of the mean of ``values`` (S, P, ...) at each level: (2, n_boot, ...).

        A side with one seed (``S = 1``) keeps it at the seed level.
        """
        n_seeds = values.shape[0]
        seeds = self.seeds if n_seeds == self.seeds.shape[1] else np.ones((len(self.seeds), 1))
        if seeds.shape[1] != n_seeds:
            raise ValueError(f"a side has {n_seeds} seeds; the resampling has "
                             f"{self.seeds.shape[1]} (or 1)")
        by_seed = np.tensordot(seeds, values.mean(axis=1), axes=(1, 0))
        by_prompt = np.tensordot(self.prompts, values.mean(axis=0), axes=(1, 0))
        return np.stack([by_seed, by_prompt])


def crossed_interval(estimate: float, replicates: np.ndarray, n_seeds: int, n_prompts: int,
                     ci: float = 0.95, n: int = 0) -> Interval:
    """Combine the two levels' replicates into ``estimate +- t(df) * se`` (module docstring).

    Parameters
    ----------
    estimate : float
    replicates : array (2, n_boot)
        Seed-level and prompt-level replicates of the statistic.
    n_seeds : int
        Seeds of the trained side with the fewest (0 or 1 for none: no interval).
    n_prompts : int
    ci : float
        Probability mass of the interval.
    n : int
        Recorded as :attr:`Interval.n`.
    """
    reps = np.asarray(replicates, dtype=float)
    if n_seeds < MIN_SEEDS or not np.isfinite(estimate):
        return Interval(float(estimate), np.nan, np.nan, int(n), reps, int(n_seeds))
    with np.errstate(invalid="ignore", divide="ignore"):
        var_seed = np.nanvar(reps[0]) * n_seeds / (n_seeds - 1)
        var_prompt = np.nanvar(reps[1]) * n_prompts / max(n_prompts - 1, 1)
    se = float(np.sqrt(var_seed + var_prompt))
    parts = var_seed**2 / (n_seeds - 1) + var_prompt**2 / max(n_prompts - 1, 1)
    df = float(se**4 / parts) if parts > 0 else np.inf
    half = float(stats.t.ppf((1 + ci) / 2, df)) * se if se > 0 else 0.0
    return Interval(float(estimate), float(estimate) - half, float(estimate) + half, int(n),
                    reps, int(n_seeds), se, df)


def trained_seeds(sides: Sequence[np.ndarray], fixed: Sequence[int] = ()) -> int:
    """Return the fewest seeds of the sides not listed in ``fixed`` (the un-tuned ones)."""
    counts = [s.shape[0] for k, s in enumerate(sides) if k not in fixed]
    return min(counts) if counts else MIN_SEEDS


def draw_for(sides: Sequence[np.ndarray], n_boot: int, seed: int) -> Resampling:
    """Resampling weights for sides of seeds x prompts: seeds paired by index across sides.

    Sides must have the same prompts (columns) and either one seed or the same number of seeds
    as the side with the most.
    """
    prompts = {s.shape[1] for s in sides}
    if len(prompts) != 1:
        raise ValueError(f"every side needs the same prompts: {sorted(prompts)} columns")
    n_seeds = max(s.shape[0] for s in sides)
    bad = [s.shape[0] for s in sides if s.shape[0] not in (1, n_seeds)]
    if bad:
        raise ValueError(f"sides have {sorted({s.shape[0] for s in sides})} seeds; expected "
                         f"one or the same number on every side")
    return Resampling.draw(n_seeds, prompts.pop(), n_boot, seed)


def bootstrap_difference(first: np.ndarray, second: np.ndarray, n_boot: int = 2000,
                         seed: int = 0, ci: float = 0.95, fixed: Sequence[int] = ()
                         ) -> Interval:
    """Difference of means ``first - second`` over seeds and prompts, with its interval.

    Parameters
    ----------
    first, second : array (seeds, prompts)
        Scores of each side's models (one row per seed; seeds of the same index are resampled
        together) on the same prompts (same columns).
    n_boot : int
        Replicates.
    seed : int
        Seed of the resampling.
    ci : float
        Probability mass of the interval.
    fixed : sequence of int
        Sides (0: first, 1: second) without training noise, such as the un-tuned base model.

    Returns
    -------
    Interval
        ``n`` is the number of prompts times the seeds of both sides.
    """
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    boot = draw_for([first, second], n_boot, seed)
    reps = boot.sums(first) - boot.sums(second)
    return crossed_interval(float(first.mean() - second.mean()), reps,
                            trained_seeds([first, second], fixed), first.shape[1], ci,
                            first.shape[1] * (first.shape[0] + second.shape[0]))


def ratio_interval(first: np.ndarray, second: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   ci: float = 0.95, fixed: Sequence[int] = ()) -> Interval:
    """Ratio of the means ``first / second`` (seeds x prompts each), resampled as above.

    When the denominator's own interval includes zero (or cannot be formed), the ratio's
    confidence set is unbounded (as Fieller's is): the interval is then ``[-inf, inf]``.
    """
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    boot = draw_for([first, second], n_boot, seed)
    num, den = boot.sums(first), boot.sums(second)
    n_seeds = trained_seeds([first, second], fixed)
    n = first.size + second.size
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = crossed_interval(float(first.mean() / second.mean()), num / den, n_seeds,
                                 first.shape[1], ci, n)
    if np.isnan(ratio.lower):
        return ratio
    denominator = crossed_interval(float(second.mean()), den, n_seeds, first.shape[1], ci)
    if not denominator.lower > 0 and not denominator.upper < 0:
        return Interval(ratio.estimate, -np.inf, np.inf, n, ratio.replicates, n_seeds)
    return ratio


def mean_interval(values: np.ndarray, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
                  fixed: bool = False) -> Interval:
    """Mean of a seeds x prompts array, with its two-level interval (``fixed``: no training)."""
    values = np.atleast_2d(values)
    boot = Resampling.draw(values.shape[0], values.shape[1], n_boot, seed)
    return crossed_interval(float(values.mean()), boot.sums(values),
                            MIN_SEEDS if fixed else values.shape[0], values.shape[1], ci,
                            values.size)


def bootstrap_ratios(numerators: np.ndarray, denominators: np.ndarray, n_boot: int = 2000,
                     seed: int = 0, n_seeds: Sequence[int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Ratio estimates ``sum num / sum den`` of several cells, resampling seeds and prompts.

    Parameters
    ----------
    numerators, denominators : array (seeds, prompts, cells)
        Per seed, prompt and cell, the sums that make the cell's ratio. A cell with fewer seeds
        than the array holds (the un-tuned base model: one) has zeros in the other rows; pass
        ``n_seeds``. The same seeds and prompts are resampled for every cell, so differences
        of cells get joint intervals.
    n_boot, seed
        Replicates and the resampling's seed.
    n_seeds : sequence of int, optional
        Seeds of each cell (default all rows).

    Returns
    -------
    estimates : array (cells,)
    replicates : array (2, n_boot, cells)
        Seed-level and prompt-level replicates (see :class:`Resampling`).
    """
    n_rows, n_prompts, n_cells = numerators.shape
    full = (np.full(n_cells, n_rows) if n_seeds is None else np.asarray(n_seeds)) == n_rows
    boot = Resampling.draw(n_rows, n_prompts, n_boot, seed)
    reps = []
    for level in range(2):
        sums = []
        for values in (numerators, denominators):
            if level == 0:  # a cell with one seed keeps it
                sums.append(np.where(full, boot.seeds @ values.sum(axis=1),
                                     values.sum(axis=(0, 1))))
            else:
                sums.append(boot.prompts @ values.sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            reps.append(sums[0] / sums[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = numerators.sum(axis=(0, 1)) / denominators.sum(axis=(0, 1))
    return estimates, np.stack(reps)


def interval(estimate: float, replicates: np.ndarray, ci: float = 0.95,
             n: int = 0) -> Interval:
    """Return the equal-tailed percentile interval of ``replicates`` (posterior draws, say).

    For draws of a posterior (or draws combined with resampled prompts), not for few seeds.
    """
    lower, upper = np.nanquantile(replicates, [(1 - ci) / 2, (1 + ci) / 2])
    return Interval(float(estimate), float(lower), float(upper), int(n),
                    np.asarray(replicates))
