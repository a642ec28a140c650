"""ADVI and NUTS against the truth on a Kumar-shaped survey small enough for NUTS.

The survey has the Kumar-sized survey's density (``benchmarks/scale.py --kumar``: six prompts
of five responses a rater, so 30 ratings a rater and about 4.8 an item, one dimension) at a
fraction of its size (``--fraction 0.1``: 1,728 raters, 2,152 prompts, 51,840 ratings). It is
simulated without group-by-item interactions (``interactions={}``), so the fitted model is the
true one and its intervals can be checked against the truth.

Each fit (``--fits``: ``advi``, ``nuts`` with centred zero-sum item effects, ``nuts-nc`` with
non-centred ones) runs in this process; its time is the whole call of :func:`disagree.model.fit`
(compile, sampling, diagnostics). Per fit and parameter group (the coefficients, the two sds,
the item and the rater effects) the script prints the bias (mean of estimate - truth), the
RMSE and the share of 90% and 95% central intervals that hold the truth. Item and rater effects
are compared centred (the model pins their mean on the cut points). Then, for ADVI against the
first NUTS fit, ``benchmarks/approx_accuracy.py``'s table: mean differences in NUTS sds and
sd ratios. ``--design study`` fits the study's design instead (toxicity only, 18.25 ratings an
item): where ``fit`` samples item effects centred (``CENTRE_ITEM_AT``).

Run: ``.venv/bin/python benchmarks/kumar_subsample.py --seeds 1,2 --out /tmp/kumar_sub``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from approx_accuracy import compare  # noqa: E402

from disagree.data import simulate_survey  # noqa: E402
from disagree.model import Fit, fit  # noqa: E402
from disagree.model.draws import flat_draws  # noqa: E402

KUMAR = {"n_raters": 17_280, "n_prompts": 21_520, "prompts_per_rater": 6}
FACTORS = ["gender", "politics", "ethnicity"]
FITS = {"advi": {"sampler": "advi", "draws": 2000},
        "nuts": {"sampler": "nutpie", "item_centred": True},
        "nuts-nc": {"sampler": "nutpie", "item_centred": False}}


def survey(seed: int, fraction: float, design: str):
    """The Kumar-density survey at ``fraction`` of the size (or the study's), no interactions."""
    shape = ({k: round(v * fraction) if k != "prompts_per_rater" else v
              for k, v in KUMAR.items()} if design == "kumar" else {})
    return simulate_survey(seed=seed, dimensions=("toxicity",), interactions={}, **shape)


def truth_table(truth: dict, fitted: Fit) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per parameter group: (draws x elements, true values), effects centred."""
    post = fitted.idata.posterior
    true_beta = {f"{e['factor']}[{e['level']}]": e["log_odds"] for e in truth["effects"]
                 if e["dimension"] == "toxicity"}
    labels = list(post["beta"].coords["factor_level"].values)
    out = {"coefficients": (flat_draws(post, "beta", 0),
                            np.array([true_beta[lab] for lab in labels])),
           "rater sd": (flat_draws(post, "rater_sd"), np.array([truth["rater_sd"]["toxicity"]])),
           "item sd": (flat_draws(post, "item_sd"),
                       np.array([np.std(truth["item_effects"]["toxicity"])]))}
    for name, var, who in (("item effects", "item_effect", "item"),
                           ("rater effects", "rater_effect", "rater")):
        true = pd.Series(truth[f"{who}_effects"]["toxicity"],
                         index=truth[f"{who}_effects"][f"{who}_id"])
        ids = post[var].coords[who].values
        draws = flat_draws(post, var, 0)
        out[name] = (draws - draws.mean(axis=1, keepdims=True),
                     (true - true.mean()).loc[ids].to_numpy())
    return out


def accuracy(draws: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Bias, RMSE and 90% / 95% interval coverage of the truth."""
    mean = draws.mean(axis=0)
    row = {"n": true.size, "bias": float(np.mean(mean - true)),
           "rmse": float(np.sqrt(np.mean((mean - true) ** 2)))}
    for level in (0.90, 0.95):
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        row[f"cover {level:.0%}"] = float(np.mean((lo <= true) & (true <= hi)))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="1")
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--design", choices=["kumar", "study"], default="kumar",
                   help="study: the study's toxicity ratings instead (18 an item, 5 a rater)")
    p.add_argument("--fits", default="advi,nuts,nuts-nc")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/kumar_sub"))
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rows, runs = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        sv = survey(seed, args.fraction, args.design)
        reference = {e["factor"]: e["reference"] for e in sv.truth["effects"]}
        dirs = {}
        for name in args.fits.split(","):
            dirs[name] = args.out / f"seed{seed}" / name
            t0 = time.perf_counter()
            f = fit(sv.table, FACTORS, reference={k: reference[k] for k in FACTORS},
                    chains=args.chains, seed=seed, progress=False, out_dir=dirs[name],
                    **FITS[name])
            d = f.diagnostics
            runs.append({"seed": seed, "fit": name, "seconds": round(time.perf_counter() - t0, 1),
                         "ok": d["ok"], "rhat max": d["rhat_max"],
                         "bulk ESS min": d["ess_bulk_min"], "ratings": len(sv.ratings)})
            print(json.dumps(runs[-1]), flush=True)
            for group, (draws, true) in truth_table(sv.truth, f).items():
                rows.append({"seed": seed, "fit": name, "parameters": group,
                             **accuracy(draws, true)})
        if "advi" in dirs and len(dirs) > 1:
            nuts = next(n for n in dirs if n != "advi")
            print(f"\nseed {seed}: advi against {nuts}, in {nuts}'s posterior sds")
            print(compare(dirs["advi"], dirs[nuts]).round(3).to_string(index=False))
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print("\n" + pd.DataFrame(runs).to_string(index=False))
        table = pd.DataFrame(rows).groupby(["fit", "parameters"], sort=False).agg(
            n=("n", "sum"), bias=("bias", "mean"), rmse=("rmse", "mean"),
            cover90=("cover 90%", "mean"), cover95=("cover 95%", "mean"))
        print("\n" + table.round(3).to_string())


if __name__ == "__main__":
    main()
