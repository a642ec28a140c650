"""The paper's three headline contrasts, fitted on the bundled default survey, next to the truth.

Fits the joint five-dimension model (default sampler) with gender, politics, ethnicity and
country, and prints relative_pct (and pp) with 95% intervals for male vs female toxicity,
conservative vs liberal and Black vs White emotional awareness, beside data/truth.json.

Run: ``.venv/bin/python benchmarks/headline.py [--out FITDIR]``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from disagree.data import load_default_survey
from disagree.data.simulate import PAPER_TARGETS, REFERENCE, default_survey_path
from disagree.model import fit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("fits/default"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    factors = ["gender", "politics", "ethnicity", "country"]
    result = fit(load_default_survey(), factors, {f: REFERENCE[f] for f in factors},
                 out_dir=args.out, progress=False)
    truth = json.loads((default_survey_path().parent / "truth.json").read_text())
    true = {(c["dimension"], c["level"], c["measure"]): c["estimate"] for c in truth["contrasts"]}
    d = result.diagnostics
    print(f"fit: ok={d['ok']} R-hat max {d['rhat_max']:.4f}, bulk ESS min "
          f"{d['ess_bulk_min']:.0f}, divergences {d['divergences']}, seconds {d['seconds']}")
    table = result.contrasts()
    for key in PAPER_TARGETS:
        dim, factor, level = key.split("|")
        for measure in ("relative_pct", "pp", "log_odds"):
            row = table[(table.dimension == dim) & (table.level == level)
                        & (table.measure == measure)].iloc[0]
            t = true.get((dim, level, measure)) if measure != "log_odds" else next(
                e["log_odds"] for e in truth["effects"]
                if (e["dimension"], e["level"]) == (dim, level))
            print(f"{dim:>20} {level:>12} vs {row.reference:<8} {measure:>12}: "
                  f"{row.estimate:+7.2f} [{row.lower:+7.2f}, {row.upper:+7.2f}]   truth {t:+7.2f}")


if __name__ == "__main__":
    main()
