"""How far an approximate fit (ADVI) is from NUTS on the same ratings, in NUTS posterior sds.

For each parameter group (coefficients, cut points, rater sd, item sd, item effects, rater
effects) it prints the largest and the median |mean_approx - mean_nuts| / sd_nuts over the
group's elements, and the range and median of sd_approx / sd_nuts (mean-field ADVI is known to
understate posterior sds); then the standardised contrasts (``relative_pct``) of both fits side
by side.

Run (two fit directories of the same survey, e.g. from ``benchmarks/scale.py``):
``.venv/bin/python benchmarks/approx_accuracy.py /tmp/scale10/fit /tmp/scale10n/fit``
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from disagree.model import load_fit
from disagree.model.draws import flat_draws

GROUPS = {"beta": "coefficients", "cutpoints": "cut points", "rater_sd": "rater sd",
          "item_sd": "item sd", "item_effect": "item effects", "rater_effect": "rater effects"}


def moments(post, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of every element of ``name`` (draws read lazily)."""
    draws = flat_draws(post, name)
    return draws.mean(axis=0).ravel(), draws.std(axis=0, ddof=1).ravel()


def compare(approx_dir: str, nuts_dir: str) -> pd.DataFrame:
    """One row per parameter group: standardised mean errors and sd ratios."""
    approx, nuts = load_fit(approx_dir).idata.posterior, load_fit(nuts_dir).idata.posterior
    rows = []
    for name, label in GROUPS.items():
        if name not in approx or name not in nuts:
            continue
        (m_a, s_a), (m_n, s_n) = moments(approx, name), moments(nuts, name)
        z, ratio = np.abs(m_a - m_n) / s_n, s_a / s_n
        rows.append({"parameters": label, "n": z.size, "max |dmean|/sd": z.max(),
                     "median |dmean|/sd": np.median(z), "sd ratio min": ratio.min(),
                     "sd ratio median": np.median(ratio), "sd ratio max": ratio.max()})
    return pd.DataFrame(rows)


def contrasts(approx_dir: str, nuts_dir: str) -> pd.DataFrame:
    """``relative_pct`` estimates and 95% intervals of both fits."""
    keys = ["dimension", "factor", "level"]
    out = []
    for label, path in (("approx", approx_dir), ("nuts", nuts_dir)):
        table = load_fit(path).contrasts()
        table = table[table["measure"] == "relative_pct"].set_index(keys)
        out.append(table[["estimate", "lower", "upper"]].add_prefix(f"{label}_"))
    return pd.concat(out, axis=1).round(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("approx", help="fit directory of the approximate fit")
    p.add_argument("nuts", help="fit directory of the NUTS fit of the same ratings")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(compare(args.approx, args.nuts).round(3).to_string(index=False))
        print()
        print(contrasts(args.approx, args.nuts).to_string())


if __name__ == "__main__":
    main()
