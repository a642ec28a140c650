"""Coverage of the evaluation's model-side 95% intervals under a null comparison.

Two groups' models are equal in truth; each model's score on a held-out prompt is a training-
seed effect + a prompt effect (shared by both groups' models, as the prompts are) + noise. For
each regime of sds and number of seeds, many simulated studies are scored, and the share of
intervals that cover zero is printed for

* ``t (disagree)``: :func:`disagree.evaluate.bootstrap.bootstrap_difference`, seed and prompt
  levels bootstrapped, each variance scaled by ``n / (n - 1)``, ``t`` with Satterthwaite df;
* ``percentile``: the equal-tailed percentile interval of a bootstrap that resamples seeds and
  prompts together (the hierarchical bootstrap read naively).

Run: ``.venv/bin/python benchmarks/evaluation_coverage.py --sims 1000`` (about a minute).
"""

from __future__ import annotations

import argparse

import numpy as np

from disagree.evaluate.bootstrap import Resampling, bootstrap_difference

REGIMES = {"seeds dominate": (1.0, 0.1, 0.3), "prompts dominate": (0.1, 1.0, 0.3),
           "balanced": (0.5, 0.5, 0.5), "noise dominates": (0.1, 0.1, 1.0)}


def one_study(rng: np.random.Generator, sds: tuple[float, float, float], n_seeds: int,
              n_prompts: int, k: int) -> tuple[bool, bool]:
    """Whether the two intervals of one simulated null study cover zero."""
    sd_seed, sd_prompt, sd_noise = sds
    prompt = sd_prompt * rng.standard_normal((1, n_prompts))
    a, b = (sd_seed * rng.standard_normal((n_seeds, 1)) + prompt
            + sd_noise * rng.standard_normal((n_seeds, n_prompts)) for _ in range(2))
    iv = bootstrap_difference(a, b, n_boot=500, seed=k)
    boot = Resampling.draw(n_seeds, n_prompts, 500, k)
    joint = np.einsum("bs,sp,bp->b", boot.seeds, a - b, boot.prompts)
    lower, upper = np.quantile(joint, [0.025, 0.975])
    return bool(iv.lower <= 0 <= iv.upper), bool(lower <= 0 <= upper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--seeds", default="3,5,10")
    args = parser.parse_args()
    print(f"null coverage of 95% intervals, {args.sims} studies each, {args.prompts} prompts")
    print(f"{'regime':<18} {'seeds':>5} {'t (disagree)':>13} {'percentile':>11}")
    for name, sds in REGIMES.items():
        for n_seeds in map(int, args.seeds.split(",")):
            rng = np.random.default_rng(0)
            hits = np.array([one_study(rng, sds, n_seeds, args.prompts, k)
                             for k in range(args.sims)])
            print(f"{name:<18} {n_seeds:>5} {hits[:, 0].mean():>13.3f} "
                  f"{hits[:, 1].mean():>11.3f}", flush=True)


if __name__ == "__main__":
    main()
