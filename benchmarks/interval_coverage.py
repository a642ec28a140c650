"""Coverage of the 95% intervals over many simulated surveys of the paper's shape.

For each seed, every coefficient of every dimension is drawn at random (Normal(0, 0.4)), a
survey of 1,095 raters x 5 responses x the chosen dimensions is simulated, the joint model is
fitted with the default sampler, and each effect's true value is checked against its 95%
interval, for ``log_odds`` and ``relative_pct``. Prints the empirical coverage (target 0.93 to
0.97) and the mean absolute error of ``relative_pct``.

With ``--interactions politics=0.6,...`` every dimension also gets group-by-item deviations of
those sds and the model is fitted with those interactions; the coverage of ``item_group_sd``
(against the generating sd) is reported too. ``--effects pooled`` fits the reference-free
pooled level effects instead of independent dummies. ``--seeds-from`` shifts the seeds.

Results are appended to a JSON-lines file as each data set finishes, so an interrupted run
resumes where it stopped.

Run: ``.venv/bin/python benchmarks/interval_coverage.py --datasets 20 --out coverage.jsonl``
(``--interactions politics=0.6,ethnicity=0.5 --out coverage-inter.jsonl``).
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


def one_dataset(seed: int, dims: tuple[str, ...], draws: int,
                interactions: dict[str, float], effects: str) -> list[dict]:
    """Simulate, fit and compare one data set; returns one row per effect and measure."""
    rng = np.random.default_rng(10_000 + seed)
    levels = SurveyConfig()._levels()
    effects_true = {f"{d}|{f}|{lv}": float(rng.normal(0, 0.4))
                    for d in dims for f in COVARIATES for lv in levels[f][1:]}
    survey = simulate_survey(seed=seed, dimensions=dims, effects=effects_true, targets={},
                             interactions={d: dict(interactions) for d in dims})
    reference = {f: REFERENCE[f] for f in COVARIATES}
    result = fit(survey.table, COVARIATES, reference, draws=draws, tune=draws, seed=seed,
                 progress=False, interactions=list(interactions) or None, effects=effects)
    truth = pd.concat([
        pd.DataFrame(survey.truth["effects"]).assign(measure="log_odds")
        .rename(columns={"log_odds": "truth"}),
        pd.DataFrame(survey.truth["contrasts"]).rename(columns={"estimate": "truth"}),
    ])
    keys = ["dimension", "factor", "level", "measure"]
    merged = result.contrasts().merge(truth[keys + ["truth"]], on=keys)
    if interactions:
        sd = result.idata.posterior["item_group_sd"]
        rows = [{"dimension": d, "factor": f, "level": "", "measure": "item_group_sd",
                 "estimate": float(sd.sel(dimension=d, factor=f).mean()),
                 "lower": float(sd.sel(dimension=d, factor=f).quantile(0.025)),
                 "upper": float(sd.sel(dimension=d, factor=f).quantile(0.975)),
                 "truth": value} for d in dims for f, value in interactions.items()]
        merged = pd.concat([merged, pd.DataFrame(rows)], ignore_index=True)
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
    parser.add_argument("--interactions", default="",
                        help="factor=sd,... of the group-by-item deviations (every dimension)")
    parser.add_argument("--effects", choices=["dummy", "pooled"], default="dummy")
    parser.add_argument("--seeds-from", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    dims = tuple(args.dimensions.split(","))
    interactions = {k: float(v) for k, v in (part.split("=") for part in
                                              args.interactions.split(",") if part)}
    done = set()
    if args.out.exists():
        done = {json.loads(line)["seed"] for line in args.out.read_text().splitlines() if line}
    seeds = range(args.seeds_from, args.seeds_from + args.datasets)
    for seed in seeds:
        if seed in done:
            continue
        start = time.perf_counter()
        rows = one_dataset(seed, dims, args.draws, interactions, args.effects)
        with args.out.open("a") as fh:  # one complete line per row; a crash loses one seed
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
        print(f"seed {seed}: {len(rows)} intervals, {time.perf_counter() - start:.0f} s",
              flush=True)
    res = pd.DataFrame([json.loads(line) for line in args.out.read_text().splitlines()])
    res = res[res["seed"].isin(seeds)]
    print(f"\n{res['seed'].nunique()} data sets, dimensions: {', '.join(dims)}, "
          f"all fits ok: {bool(res.groupby('seed')['ok'].first().all())}")
    for measure in ("log_odds", "relative_pct", "pp", "item_group_sd"):
        sub = res[res["measure"] == measure]
        if not len(sub):
            continue
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
