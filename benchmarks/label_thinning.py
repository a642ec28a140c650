"""What thinning the posterior draws costs group labels in accuracy.

Group labels are posterior means over draws, so labels from ``N`` evenly spaced draws differ
from those of all draws by Monte Carlo error only. This script computes the group labels of a
random subset of items with all draws and with each ``--draws`` value and prints, per value,
the largest and the median absolute difference of the category probabilities and of the
expected rating (``mean``), the latter also in units of its posterior sd (the label's ``sd``
column), and the wall time of each.

Run (a fit directory, e.g. ``benchmarks/scale.py --kumar``'s):
``.venv/bin/python benchmarks/label_thinning.py /tmp/kumar/fit --draws 100,200,500``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from disagree.labels import soft_labels
from disagree.model import load_fit

FACTORS = ["gender", "politics", "ethnicity"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("fit_dir")
    p.add_argument("--draws", default="100,200,500")
    p.add_argument("--items", type=int, default=5000, help="random items labelled")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    fit = load_fit(args.fit_dir)
    ids = np.asarray(fit.idata.posterior.coords["item"].values)
    rng = np.random.default_rng(args.seed)
    items = sorted(rng.choice(ids, size=min(args.items, len(ids)), replace=False).tolist())
    keys = ["item_id", "dimension", *FACTORS]

    def labels(draws: int | None) -> tuple[pd.DataFrame, float]:
        start = time.perf_counter()
        table = soft_labels(fit, "group", FACTORS, items=items, draws=draws)
        return table.sort_values(keys).reset_index(drop=True), time.perf_counter() - start

    full, seconds = labels(None)
    n_all = fit.idata.posterior.sizes["chain"] * fit.idata.posterior.sizes["draw"]
    probs = [c for c in full.columns if c.startswith("p_")]
    print(f"{len(items)} items x {len(full) // len(items)} groups; all {n_all} draws: "
          f"{seconds:.1f} s")
    for draws in (int(d) for d in args.draws.split(",")):
        thin, seconds = labels(draws)
        dp = np.abs(thin[probs].to_numpy() - full[probs].to_numpy())
        dm = np.abs(thin["mean"].to_numpy() - full["mean"].to_numpy())
        z = dm / full["sd"].to_numpy()
        print(f"{draws:5d} draws: {seconds:6.1f} s   |dp| max {dp.max():.4f} median "
              f"{np.median(dp):.4f}   |d mean| max {dm.max():.4f} median {np.median(dm):.4f}"
              f"   in posterior sds: max {z.max():.3f} median {np.median(z):.3f}")


if __name__ == "__main__":
    main()
