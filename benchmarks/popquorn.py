"""Fit POPQUORN offensiveness with gender, race, age and education; print the contrasts.

Reads ``../shared/data/popquorn/offensiveness.csv`` (or the path given). References: the most
common level of each attribute (Woman, White, the most frequent age band, College degree)
unless overridden in REFERENCE below.

Run: ``.venv/bin/python benchmarks/popquorn.py [PATH] [--out FITDIR]``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from disagree.data import load_popquorn
from disagree.model import fit

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "popquorn" / \
    "offensiveness.csv"
REFERENCE = {"gender": "Woman", "race": "White", "age": "25-29",
             "education": "College degree"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=Path("fits/popquorn"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    table = load_popquorn(args.path)
    result = fit(table, list(REFERENCE), REFERENCE, out_dir=args.out, progress=False)
    d = result.diagnostics
    print(f"fit: ok={d['ok']} R-hat max {d['rhat_max']:.4f}, bulk ESS min "
          f"{d['ess_bulk_min']:.0f}, divergences {d['divergences']}, seconds {d['seconds']}")
    c = result.contrasts()
    wide = c.pivot_table(index=["factor", "level", "reference"], columns="measure",
                         values=["estimate", "lower", "upper"], sort=False)
    for (factor, level, ref), row in wide.iterrows():
        cells = "  ".join(f"{m} {row[('estimate', m)]:+6.2f} [{row[('lower', m)]:+6.2f}, "
                          f"{row[('upper', m)]:+6.2f}]" for m in ("log_odds", "relative_pct"))
        print(f"{factor:>9}: {level:<34} vs {ref:<15} {cells}")


if __name__ == "__main__":
    main()
