"""Coverage of the 95% intervals over many simulated surveys of the paper's shape.

For each seed, every coefficient of every dimension is drawn at random (Normal(0, 0.4)), a
survey of 1,095 raters x 5 responses x the chosen dimensions is simulated, the joint model is
fitted with the default sampler, and each effect's true value is checked against its 95%
interval, for ``log_odds`` and ``relative_pct``. Prints the empirical coverage (target 0.93 to
0.97) and the mean absolute error of ``relative_pct``.

Results are appended to a JSON-lines file as each data set finishes, so an interrupted run
resumes where it stopped.

Run: ``.venv/bin/python benchmarks/coverage.py --datasets 20 --out coverage.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from disagree.data import simulate_survey
from disagree.data.simulate import DIMENSIONS, REFERENCE, SurveyConfig
from disagree.model import fit

COVARIATES = ["gender", "politics", "ethnicity", "country"]


def one_dataset(seed: int, dims: tuple[str, ...], draws: int) -> list[dict]:
    """Simulate, fit and compare one data set; returns one row per effect and measure."""
    rng = np.random.default_rng(10_000 + seed)
    levels = SurveyConfig()._levels()
    effects = {f"{d}|{f}|{lv}": float(rng.normal(0, 0.4))
               for d in dims for f in COVARIATES for lv in levels[f][1:]}
    survey = simulate_survey(seed=seed, dimensions=dims, effects=effects, targets={})
    reference = {f: REFERENCE[f] for f in COVARIATES}
    result = fit(survey.table, COVARIATES, reference, draws=draws, tune=draws, seed=seed,
                 progress=False)
    truth = pd.concat([
        pd.DataFrame(survey.truth["effects"]).assign(measure="log_odds")
        .rename(columns={"log_odds": "truth"}),
        pd.DataFrame(survey.truth["contrasts"]).rename(columns={"estimate": "truth"}),
    ])
    keys = ["dimension", "factor", "level", "measure"]
    merged = result.contrasts().merge(truth[keys + ["truth"]], on=keys)
    merged["covered"] = (merged["lower"] <= merged["truth"]) & (merged["truth"] <= merged["upper"])
    merged["seed"] = seed
    merged["ok"] = result.diagnostics["ok"]
    return merged.to_dict(orient="records")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--dimensions", default=",".join(DIMENSIONS))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("coverage.jsonl"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    dims = tuple(args.dimensions.split(","))
    done = set()
    if args.out.exists():
        done = {json.loads(line)["seed"] for line in args.out.read_text().splitlines() if line}
    for seed in range(args.datasets):
        if seed in done:
            continue
        start = time.perf_counter()
        rows = one_dataset(seed, dims, args.draws)
        with args.out.open("a") as fh:  # one complete line per row; a crash loses one seed
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
        print(f"seed {seed}: {len(rows)} intervals, {time.perf_counter() - start:.0f} s",
              flush=True)
    res = pd.DataFrame([json.loads(line) for line in args.out.read_text().splitlines()])
    res = res[res["seed"] < args.datasets]
    print(f"\n{res['seed'].nunique()} data sets, dimensions: {', '.join(dims)}, "
          f"all fits ok: {bool(res.groupby('seed')['ok'].first().all())}")
    for measure in ("log_odds", "relative_pct", "pp"):
        sub = res[res["measure"] == measure]
        cov = sub["covered"].mean()
        se = np.sqrt(cov * (1 - cov) / len(sub))
        print(f"coverage of 95% intervals, {measure:>12}: {cov:.3f} (+- {se:.3f}, "
              f"{len(sub)} intervals)")
    rel = res[res["measure"] == "relative_pct"]
    mae = np.abs(rel["estimate"] - rel["truth"]).mean()
    print(f"mean absolute error of relative_pct: {mae:.2f} percentage points "
          f"(mean |truth| {np.abs(rel['truth']).mean():.1f})")


if __name__ == "__main__":
    main()
