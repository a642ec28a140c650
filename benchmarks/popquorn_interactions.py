"""POPQUORN offensiveness: group-by-item interactions and reference-free level effects.

Parts (each prints its own table; fits are saved under ``--out`` and reused on a re-run):

* ``interactions``: the model without interactions, with interactions on race and on gender;
  ``item_group_sd`` with 95% intervals, the PSIS-LOO comparison, and the five comments on which
  Black and White annotators disagree most (ids and numbers only: the texts are offensive).
* ``reference``: does the choice of the age reference change an implied contrast? The contrast
  60-64 minus 25-29 (log-odds) from fits with reference 18-24 and with reference 25-29, for
  independent dummies (``effects="dummy"``, Normal(0, 1) each) and pooled level effects
  (``effects="pooled"``), with Monte Carlo standard errors.

Run: ``.venv/bin/python benchmarks/popquorn_interactions.py [interactions] [reference]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np

from disagree.data import load_popquorn
from disagree.model import fit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "popquorn" / \
    "offensiveness.csv"
FACTORS = ["gender", "race", "age", "education"]
REFERENCE = {"gender": "Woman", "race": "White", "age": "25-29",
             "education": "College degree"}
BLACK = "Black or African American"


def fitted(table, out: Path, name: str, **options):
    """Fit (or reuse the fit in ``out/name``) and print one line about it."""
    start = time.perf_counter()
    result = fit(table, FACTORS, {**REFERENCE, **options.pop("reference", {})},
                 out_dir=out / name, progress=False, **options)
    d = result.diagnostics
    print(f"  {name}: ok={d['ok']} R-hat max {d['rhat_max']:.3f} min bulk ESS "
          f"{d['ess_bulk_min']:.0f} divergences {d['divergences']} seconds {d['seconds']} "
          f"(this run {time.perf_counter() - start:.0f} s)", flush=True)
    if "extension" in d:
        print(f"    {d['extension']['note']}")
    return result


def interactions(table, out: Path) -> None:
    from disagree.labels import group_disagreement
    from disagree.model import compare, format_comparison

    until_ok = {"max_draws": 4000}  # 1000 draws give the interaction sds a bulk ESS of 100-160
    fits = {"none": fitted(table, out, "none", **until_ok),
            "race": fitted(table, out, "race", interactions=["race"], **until_ok),
            "gender": fitted(table, out, "gender", interactions=["gender"], **until_ok)}
    for name in ("race", "gender"):
        sd = fits[name].idata.posterior["item_group_sd"].isel(dimension=0, factor=0)
        lo, hi = np.quantile(sd.values, [0.025, 0.975])
        print(f"item_group_sd[{name}] = {float(sd.mean()):.3f} [{lo:.3f}, {hi:.3f}]")
    print(format_comparison(compare(fits)))
    items = group_disagreement(fits["race"], "race", "offensiveness", levels=[BLACK])
    top = items[items["level"] == BLACK].head(5)
    print("comments on which Black and White annotators disagree most (P(rating >= 4), "
          "percentage points):")
    print(top[["rank", "item_id", "p_high", "diff_pp", "diff_pp_lower",
               "diff_pp_upper"]].round(3).to_string(index=False))
    white = items[(items["level"] == "White") & items["item_id"].isin(top["item_id"])]
    print(white[["item_id", "p_high", "p_high_lower", "p_high_upper"]].round(3)
          .to_string(index=False))


def reference(table, out: Path) -> None:
    for effects in ("dummy", "pooled"):
        draws = {}
        for ref in ("18-24", "25-29"):
            res = fitted(table, out, f"age-ref-{ref}-{effects}", effects=effects,
                         reference={"age": ref})
            beta = res.idata.posterior["beta"].isel(dimension=0)
            b60 = beta.sel(factor_level="age[60-64]")
            draws[ref] = b60 - beta.sel(factor_level="age[25-29]") if ref == "18-24" else b60
        for ref, x in draws.items():
            mcse = float(az.mcse(x.to_dataset(name="x"))["x"])
            print(f"{effects:>7}, reference {ref}: 60-64 minus 25-29 = {float(x.mean()):+.3f} "
                  f"(sd {float(x.std()):.3f}, MCSE {mcse:.3f})")
        a, b = draws.values()
        se = np.hypot(float(az.mcse(a.to_dataset(name="x"))["x"]),
                      float(az.mcse(b.to_dataset(name="x"))["x"]))
        diff = float(a.mean()) - float(b.mean())
        print(f"{effects:>7}: difference {diff:+.3f} = {diff / se:+.1f} combined MCSE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["interactions", "reference"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("fits/popquorn-study"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    table = load_popquorn(args.data)
    if "reference" in args.parts:
        reference(table, args.out)
    if "interactions" in args.parts:
        interactions(table, args.out)


if __name__ == "__main__":
    main()
