"""Model-side intervals: training seeds and prompts as two levels (disagree.evaluate.bootstrap)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from disagree.evaluate.alignment import alignment_matrix, diagonal_advantage
from disagree.evaluate.bootstrap import (
    MIN_SEEDS,
    bootstrap_difference,
    bootstrap_ratios,
    mean_interval,
    ratio_interval,
)


def test_the_hand_computed_case_of_the_module_docstring():
    # seed means 2, 3, 4 (variance 1), prompt means 2, 4 (variance 2): se^2 = 1/3 + 1
    iv = mean_interval(np.array([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]]), n_boot=40_000, seed=0)
    se, df = np.sqrt(4 / 3), 32 / 19
    assert iv.estimate == 3.0 and iv.n_seeds == 3 and iv.n == 6
    assert iv.se == pytest.approx(se, rel=0.02) and iv.df == pytest.approx(df, rel=0.03)
    half = stats.t.ppf(0.975, df) * se
    assert (iv.lower, iv.upper) == pytest.approx((3 - half, 3 + half), rel=0.03)
    again = mean_interval(np.array([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]]), n_boot=40_000,
                          seed=0)
    assert (again.lower, again.upper) == (iv.lower, iv.upper)  # seeded


def test_seeds_are_paired_by_index_and_prompts_shared():
    # both sides move together with the seed and the prompt: the difference is exactly 1
    seed_effect = np.array([[0.0], [5.0], [-3.0]])
    prompt_effect = np.array([[1.0, 7.0, -2.0, 4.0]])
    first = seed_effect + prompt_effect + 1.0
    iv = bootstrap_difference(first, seed_effect + prompt_effect, n_boot=500)
    assert iv.estimate == pytest.approx(1.0) and iv.se == pytest.approx(0.0, abs=1e-12)
    assert (iv.lower, iv.upper) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("n_seeds", [1, 2])
def test_fewer_than_three_seeds_give_no_interval(n_seeds):
    values = np.arange(4.0 * n_seeds).reshape(n_seeds, 4)
    iv = bootstrap_difference(values, np.zeros((n_seeds, 4)), n_boot=200)
    assert iv.estimate == pytest.approx(values.mean()) and iv.n_seeds == n_seeds < MIN_SEEDS
    assert np.isnan(iv.lower) and np.isnan(iv.upper)
    # against an un-tuned base (no training noise) the trained side still needs three seeds
    assert np.isnan(bootstrap_difference(values, np.zeros((1, 4)), fixed=[1]).lower)
    fixed = mean_interval(values[:1], n_boot=200, fixed=True)
    assert np.isfinite(fixed.lower)  # a model without training noise: prompts only


def null_coverage(regime: tuple[float, float, float], n_sims: int, n_seeds: int = 3,
                  n_prompts: int = 12, seed: int = 0) -> float:
    """Share of 95% intervals of a null difference that cover zero.

    Each side's score is seed effect + prompt effect (shared by both sides) + noise, with the
    sds of ``regime``; the two groups' models are equal in truth.
    """
    sd_seed, sd_prompt, sd_noise = regime
    rng = np.random.default_rng(seed)
    covered = 0
    for k in range(n_sims):
        prompt = sd_prompt * rng.standard_normal((1, n_prompts))
        sides = [sd_seed * rng.standard_normal((n_seeds, 1)) + prompt
                 + sd_noise * rng.standard_normal((n_seeds, n_prompts)) for _ in range(2)]
        iv = bootstrap_difference(*sides, n_boot=400, seed=k)
        covered += iv.lower <= 0 <= iv.upper
    return covered / n_sims


@pytest.mark.parametrize("regime", [(1.0, 0.1, 0.3), (0.1, 1.0, 0.3), (0.5, 0.5, 0.5)],
                         ids=["seeds dominate", "prompts dominate", "balanced"])
def test_null_intervals_cover_zero_about_95_percent_of_the_time(regime):
    # 400 simulated studies of 3 seeds x 12 prompts: the binomial sd of the share is 0.011
    assert 0.92 <= null_coverage(regime, 400) <= 0.985


def test_a_percentile_interval_over_three_seeds_would_undercover():
    # what the docstring says: with seeds dominating, all three seed means fall on one side of
    # zero a quarter of the time, and a percentile interval then excludes zero
    rng = np.random.default_rng(1)
    misses = 0
    for k in range(300):
        d = rng.standard_normal((3, 1)) + 0.1 * rng.standard_normal((3, 12))
        reps = bootstrap_difference(d, np.zeros((3, 12)), n_boot=400, seed=k).replicates[0]
        lower, upper = np.quantile(reps, [0.025, 0.975])
        misses += not lower <= 0 <= upper
    assert misses / 300 > 0.15


def test_ratio_interval_is_unbounded_when_the_denominator_may_be_zero():
    rng = np.random.default_rng(0)
    num = 2 + rng.standard_normal((3, 10))
    iv = ratio_interval(num, rng.standard_normal((3, 10)), n_boot=300)
    assert (iv.lower, iv.upper) == (-np.inf, np.inf)
    sure = ratio_interval(num, 1 + 0.01 * rng.standard_normal((3, 10)), n_boot=300)
    assert sure.lower < sure.estimate < sure.upper and np.isfinite(sure.upper)


def test_bootstrap_ratios_resample_seeds_and_prompts_jointly_across_cells():
    # 3 seeds x 2 prompts x 2 cells; the second cell is the first doubled over the same
    # resamples, so their ratios agree replicate by replicate
    num = np.arange(12.0).reshape(3, 2, 2)
    num[..., 1] = 2 * num[..., 0]
    den = np.ones((3, 2, 2))
    den[..., 1] = 2
    est, reps = bootstrap_ratios(num, den, n_boot=300, seed=0)
    np.testing.assert_allclose(est, [num[..., 0].mean(), num[..., 0].mean()])
    assert reps.shape == (2, 300, 2)
    np.testing.assert_allclose(reps[..., 0], reps[..., 1])


def test_alignment_intervals_count_seeds_and_the_base_model_has_none_to_count():
    rng = np.random.default_rng(3)
    prefs = pd.DataFrame({"prompt_id": np.repeat(list("abcdefgh"), 3),
                          "A": rng.uniform(size=24), "B": rng.uniform(size=24)})
    margins = {"A": [rng.standard_normal(24) for _ in range(3)],
               "B": [rng.standard_normal(24) for _ in range(3)], "base": [np.zeros(24)]}
    table, reps = alignment_matrix(prefs, margins, ["A", "B"], "toxicity", n_boot=300)
    assert table["lower"].notna().all()
    base = table[table["model_group"] == "base"]
    assert (base["n_seeds"] == 1).all()
    # the base model has no preference: every replicate is exactly 1/2 (accuracy)
    acc = base[base["metric"] == "weighted_accuracy"]
    assert np.allclose(acc[["estimate", "lower", "upper"]].to_numpy(), 0.5)
    adv = diagonal_advantage(reps, "A", "B", "toxicity", prompts=8)
    assert (adv["n_seeds"] == 3).all() and adv["lower"].notna().all()
    two = {k: v[:2] if k != "base" else v for k, v in margins.items()}
    table2, reps2 = alignment_matrix(prefs, two, ["A", "B"], "toxicity", n_boot=300)
    assert table2[table2["model_group"] != "base"]["lower"].isna().all()
    assert diagonal_advantage(reps2, "A", "B", "toxicity", prompts=8)["lower"].isna().all()
