"""Does a group's model represent its own group? The diagonal advantage on simulated truth.

A survey where liberal and conservative raters truly order the responses differently on
emotional awareness (a politics x response interaction whose deviations follow the responses'
wording, ``interaction_traits=1``, so a model can learn them from text), and where women and men
do not (no gender interaction). One tiny model per group and seed, trained on that group's soft
pairs, judged on held-out prompts; the alignment matrix's diagonal advantage should be positive
with an interval excluding zero for politics and near zero for gender.

    python benchmarks/alignment_advantage.py --out /tmp/advantage [--seeds 0 1 2] [--steps 60] \
        [--sd 1.5] [--method dpo-soft|dpo|dpo-importance]

Prints the fit's item_group_sd, the Figure 2 table, the alignment matrix and the advantage, with
the wall time; everything is also in ``OUT/figure2/``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from disagree.data import save_ratings, simulate_survey
from disagree.evaluate import figure2
from disagree.model import fit, load_fit
from disagree.train.tiny import TINY_TRAINING

DIMENSION = "emotional_awareness"


def main() -> None:
    """Run the study and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("advantage"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--sd", type=float, default=1.5, help="politics interaction sd")
    parser.add_argument("--survey-seed", type=int, default=0)
    parser.add_argument("--method", default="dpo-soft",
                        choices=["dpo", "dpo-soft", "dpo-importance"])
    args = parser.parse_args()
    start = time.perf_counter()
    survey = simulate_survey(seed=args.survey_seed, dimensions=(DIMENSION,),
                             interactions={DIMENSION: {"politics": args.sd}},
                             interaction_traits=1.0)
    ratings = save_ratings(survey.table, args.out / "ratings.parquet")
    if not (args.out / "fit" / "model.json").is_file():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="fit diagnostics")
            fit(survey.table, ["gender", "politics"], {"gender": "female", "politics": "liberal"},
                interactions=["gender", "politics"], out_dir=args.out / "fit", progress=False)
    model = load_fit(args.out / "fit")
    sd = model.idata.posterior["item_group_sd"].stack(sample=("chain", "draw"))
    for factor in ("gender", "politics"):
        draws = sd.sel(dimension=DIMENSION, factor=factor)
        print(f"item_group_sd {factor}: {float(draws.mean()):.3f} "
              f"[{float(draws.quantile(0.025)):.3f}, {float(draws.quantile(0.975)):.3f}]")
    training = {**TINY_TRAINING, "max_steps": args.steps, "save_steps": args.steps}
    result = figure2({
        "out": str(args.out / "figure2"), "ratings": str(ratings), "fit": str(args.out / "fit"),
        "comparisons": [
            {"factor": "politics", "first": "liberal", "second": "conservative",
             "dimension": DIMENSION},
            {"factor": "gender", "first": "female", "second": "male", "dimension": DIMENSION}],
        "seeds": args.seeds, "split": [0.6, 0.2, 0.2],
        "train": {"method": args.method, "model": "tiny", "threads": 1, "training": training}})
    pd.set_option("display.width", 200)
    print(result.figure2.drop(columns=["factor", "first", "second", "judge"]).round(3)
          .to_string(index=False))
    acc = result.alignment[result.alignment["metric"] == "weighted_accuracy"]
    print(acc.pivot(index="model_group", columns="judge_group", values="estimate").round(3)
          .to_string())
    print(result.advantage.round(4).to_string(index=False))
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
