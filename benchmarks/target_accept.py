"""NUTS's target acceptance rate against ESS and time, on surveys of the study's size.

For each survey (one dimension, 1,095 raters, 27,375 ratings; simulator seed and the paper's
group differences times a scale) ``disagree.model.fit`` runs once per target (nutpie, 2 chains
x 1,000 draws after 1,000 tuning steps); the fits of one survey share its compiled model.
Printed: sampling seconds, mean leapfrog steps a draw, divergences, and the min bulk ESS over
every parameter the diagnostics judge (coefficients, cut points, sds) and over the
coefficients.

Run: ``.venv/bin/python benchmarks/target_accept.py --targets 0.8,0.65,0.5
--surveys 0:1,7:0.5,11:2``
"""

from __future__ import annotations

import argparse
import warnings

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", default="0.8,0.65,0.5")
    p.add_argument("--surveys", default="0:1,7:0.5,11:2", help="SEED:SCALE,...")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    from disagree.data import simulate_survey
    from disagree.data.simulate import PAPER_TARGETS
    from disagree.model import fit

    for survey in args.surveys.split(","):
        seed, scale = int(survey.split(":")[0]), float(survey.split(":")[1])
        targets = {k: v * scale for k, v in PAPER_TARGETS.items() if k.startswith("toxicity|")}
        table = simulate_survey(seed=seed, dimensions=("toxicity",), prompts_per_rater=5,
                                targets=targets).table
        for target in (float(t) for t in args.targets.split(",")):
            result = fit(table, FACTORS, REFERENCE, draws=1000, tune=1000, chains=2, seed=0,
                         progress=False, target_accept=target)
            rows = result.diagnostics["parameters"]
            stats = result.idata.sample_stats
            print(f"survey {survey} target {target}: "
                  f"sampling {result.diagnostics['seconds']['sampling']:.1f} s, "
                  f"steps {float(stats.n_steps.mean()):.1f}, "
                  f"divergences {int(stats.diverging.sum())}, "
                  f"min bulk ESS all {min(r['ess_bulk'] for r in rows):.0f}, coefficients "
                  f"{min(r['ess_bulk'] for r in rows if r['parameter'].startswith('beta')):.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
