"""Cut points anchored at the median rating against PyMC's ``ordered``, over many surveys.

One-dimension surveys of the study's design (1,095 raters x 25 responses) from the simulator
with ``--seeds``, their cut points shifted by ``--shift`` (negative: the lowest category rare),
each fitted twice in this process (2 chains x 1,000 draws after 1,000 tuning steps, the
survey's seed): ``cutpoints_anchored=True`` (the default, :mod:`disagree.model.cutpoints`)
and ``False``. Per fit: bulk ESS of each cut point, of the slowest coefficient and of the
slowest of everything ``ok`` judges; then, per quantity, the median and range over the seeds
and in how many the anchored fit is ahead. ESS only: both fits of a survey share a process,
so their times are not comparable (the whole-process comparison is ``benchmarks/fit_speed.py
cutpoints``).

Run: ``.venv/bin/python benchmarks/cutpoint_mixing.py [--shift -2.5] [--seeds 1-10]``.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import arviz as az

FACTORS = ["gender", "politics", "ethnicity", "country"]
MEASURES = {"lowest cut point": lambda r: r["cuts"][0],
            "slowest cut point": lambda r: min(r["cuts"]),
            "slowest coefficient": lambda r: r["beta"], "slowest of all": lambda r: r["all"]}


def one(seed: int, shift: float, anchored: bool) -> dict:
    """Fit one survey one way; its ESS figures."""
    from disagree.data import simulate_survey
    from disagree.model import fit

    table = simulate_survey(seed=seed, dimensions=("toxicity",), prompts_per_rater=5,
                            cut_shift={"toxicity": shift}).table
    r = fit(table, FACTORS, chains=2, draws=1000, tune=1000, seed=seed, progress=False,
            cutpoints_anchored=anchored)
    post = r.idata.posterior
    return {"cuts": [float(v) for v in az.ess(post["cutpoints"])["cutpoints"].values.ravel()],
            "beta": float(az.ess(post["beta"])["beta"].min()),
            "all": r.diagnostics["ess_bulk_min"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shift", type=float, default=-2.5)
    p.add_argument("--seeds", default="1-10", help="first-last simulator seeds")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    first, last = (int(v) for v in args.seeds.split("-"))
    runs = []
    print(f"{'seed':>4} {'cut points':<9} {'ESS of each cut point':<28}{'coef':>7}{'all':>7}")
    for seed in range(first, last + 1):
        pair = {}
        for anchored in (True, False):
            pair[anchored] = r = one(seed, args.shift, anchored)
            cuts = " ".join(f"{v:>6.0f}" for v in r["cuts"])
            print(f"{seed:>4} {'anchored' if anchored else 'ordered':<9} {cuts:<28}"
                  f"{r['beta']:>7.0f}{r['all']:>7.0f}", flush=True)
        runs.append(pair)
    print(f"\n{len(runs)} surveys, cut points shifted by {args.shift:+}: median (range)")
    for name, get in MEASURES.items():
        a, o = ([get(pair[k]) for pair in runs] for k in (True, False))
        ahead = sum(x > y for x, y in zip(a, o, strict=True))
        print(f"{name:<20} anchored {statistics.median(a):>6.0f} ({min(a):.0f}-{max(a):.0f})"
              f"  ordered {statistics.median(o):>6.0f} ({min(o):.0f}-{max(o):.0f})"
              f"  anchored ahead in {ahead} of {len(runs)}")


if __name__ == "__main__":
    main()
