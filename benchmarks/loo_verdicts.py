"""LOO verdicts on interactions, old (ratings independent) against new (clustered, by item).

Simulates surveys of the study's shape (1,095 raters, 60 prompts x 5 responses, one prompt a
rater) without group-by-item interactions (``null``) and with a politics-by-item interaction
of sd ``--strength`` on every dimension (``strong``), fits each without interactions and with
``--interactions politics``, and prints per survey: the rating-level elpd difference with
``az.compare``'s SE (the old verdict: supported above 2 SE), the SEs clustered by item, by
rater and two-way, leave-one-item-out (difference, SE, items with Pareto k > 0.7) and the new
verdict with how it was reached. Fits are saved under ``--out`` and reused on a re-run.

Run: ``.venv/bin/python benchmarks/loo_verdicts.py [--seeds 0 1] [--dimensions
emotional_awareness] [--cases null strong] [--out fits/loo-verdicts]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from disagree.data import simulate_survey
from disagree.data.simulate import DIMENSIONS
from disagree.model import compare, compare_text, fit, load_fit
from disagree.model.loo_clusters import SUPPORT_SE

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}


def fitted(table, out: Path, interactions):
    """Fit (or load the fit saved in ``out``), sampling until ok up to 4000 draws."""
    if (out / "model.json").exists():
        return load_fit(out)
    start = time.perf_counter()
    result = fit(table, FACTORS, REFERENCE, interactions=interactions, max_draws=4000,
                 out_dir=out, progress=False)
    d = result.diagnostics
    print(f"  fitted {out.name}: ok={d['ok']} R-hat max {d['rhat_max']:.3f} bulk ESS min "
          f"{d['ess_bulk_min']:.0f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return result


def one(case: str, seed: int, dims: list[str] | None, strength: float, out: Path) -> None:
    options = {} if dims is None else {"dimensions": tuple(dims)}
    interactions = {} if case == "null" else {
        d: {"politics": strength} for d in (dims or DIMENSIONS)}
    survey = simulate_survey(seed=seed, interactions=interactions, **options)
    root = out / f"{case}-{seed}"
    fits = {"base": fitted(survey.table, root / "base", None),
            "politics": fitted(survey.table, root / "politics", ["politics"])}
    start = time.perf_counter()
    table = compare(fits)
    (c,) = table.attrs["comparisons"]
    old_z = c["rating_diff"] / c["dse"]["rating"]
    old = "supported" if old_z > SUPPORT_SE else "not supported"
    se = c["dse"]
    print(f"{case} seed {seed} ({len(survey.ratings):,} ratings; compare "
          f"{time.perf_counter() - start:.0f} s): rating-level difference "
          f"{c['rating_diff']:.1f}; SE independent {se['rating']:.1f}, by item {se['item']:.1f}, "
          f"by rater {se['rater']:.1f}, two-way {se['item_rater']:.1f}; leave-one-item-out "
          f"{c['item_diff']:.1f} +- {c['item_se']:.1f} (Pareto k > 0.7 on {c['item_k_high']} of "
          f"{c['items']} items)")
    print(f"  old: {old} ({old_z:.1f} SE)   new: {c['verdict']} ({c['z']:.1f} SE, {c['by']})")
    print(f"  {compare_text(table)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cases", nargs="+", choices=["null", "strong"],
                        default=["null", "strong"])
    parser.add_argument("--dimensions", nargs="+", default=None,
                        help="fit these dimensions only (default: all five)")
    parser.add_argument("--strength", type=float, default=0.6,
                        help="sd of the politics-by-item deviations of the strong case")
    parser.add_argument("--out", type=Path, default=Path("fits/loo-verdicts"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for seed in args.seeds:
        for case in args.cases:
            one(case, seed, args.dimensions, args.strength, args.out)


if __name__ == "__main__":
    main()
