"""How often chains that have mixed still give R-hat above 1.01, one quantity and a family.

``ok`` (``disagree.model.diagnostics``) asks every rater and item effect for R-hat <= 1.01.
With thousands of effects, some could pass 1.01 by chance alone. This measures that chance
for chains that have mixed by construction: every chain a stationary AR(1) series of the same
standard normal distribution (``rho = 0`` is independent draws), ``--n`` quantities at a time,
ArviZ's rank-normalised split R-hat and bulk ESS. Per configuration: the median bulk ESS, the
share of quantities above 1.01, and the count expected by chance among the study's 1,095
rater effects and among the ten-times fit's 69,750 rater and item effects.

Run: ``.venv/bin/python benchmarks/rhat_chance.py [--n 20000] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import warnings

import arviz as az
import numpy as np
import xarray as xr

CONFIGS = [(2, 1000), (4, 1000), (2, 2000)]  # (chains, draws a chain)
RHOS = (0.0, 0.5, 0.8)
FAMILIES = {"1,095 effects": 1_095, "69,750 effects": 69_750}


def ar1(rng: np.random.Generator, chains: int, draws: int, n: int, rho: float) -> np.ndarray:
    """Return ``(chains, draws, n)`` stationary AR(1) draws with standard normal margins."""
    noise = rng.normal(size=(chains, draws, n))
    out = np.empty_like(noise)
    out[:, 0] = noise[:, 0]
    scale = np.sqrt(1.0 - rho**2)
    for t in range(1, draws):
        out[:, t] = rho * out[:, t - 1] + scale * noise[:, t]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="quantities per configuration")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    print(f"{'chains x draws':<16}{'rho':>5}{'median ESS':>11}{'P(R-hat > 1.01)':>17}"
          + "".join(f"{name:>17}" for name in FAMILIES))
    for chains, draws in CONFIGS:
        for rho in RHOS:
            ds = xr.Dataset({"x": (("chain", "draw", "q"),
                                   ar1(rng, chains, draws, args.n, rho))})
            rhat = az.rhat(ds)["x"].values
            ess = az.ess(ds, method="bulk")["x"].values
            share = float((rhat > 1.01).mean())
            print(f"{f'{chains} x {draws}':<16}{rho:>5.1f}{np.median(ess):>11.0f}{share:>17.5f}"
                  + "".join(f"{share * size:>17.1f}" for size in FAMILIES.values()), flush=True)


if __name__ == "__main__":
    main()
