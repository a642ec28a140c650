"""Figure 2 with a real instruction model on the CPU: SmolLM2-135M-Instruct, LoRA, 3 seeds.

Runs ``disagree figure2 configs/cpu-smollm2-figure2.yaml`` (with the overrides below) on the
bundled survey and prints:

1. the Figure 2 table (``survey``, ``preference``, ``model`` rows; the panel judge with the
   MiniLM encoder scores each model's sampled completions to the 12 held-out prompts);
2. the posterior judge's reranking view of the same models (each model's implicit reward
   ``beta * (log pi - log pi_ref)`` ranks the held-out prompts' rated responses; the row is
   the soft labels weighted by the softmax of the rewards, ``score_mix``);
3. how well the panel ranks held-out survey responses it never saw (their ratings are in the
   fit, not in the panel's training prompts): Spearman correlation over the 60 held-out
   responses and the share of same-prompt response pairs it orders as the fit's soft labels
   do, for the population and the comparison's two groups;
4. how its scores spread over the completions, before training (the base model) and after
   (each trained model), next to their spread over the held-out survey responses;
5. a dozen completions of the base model and of the first group's seed-0 model (the same
   seeded completions the judge scored), side by side;
6. wall time of each part and in all, and peak memory (this process and its worker processes).

The fit (``--fit``, default ``fits/figure2``) is made first when the folder has none (the
command of the config's header, 2 chains: a few minutes), and not counted in the study's time.

Run (the full design: 2 cores, two runs at a time)::

    .venv/bin/python benchmarks/real_model_figure2.py --fit fits/figure2

or reduced, on one core::

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/real_model_figure2.py \
        --workers 1 --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "cpu-smollm2-figure2.yaml"
FIT_COMMAND = ["fit", "data/ratings.parquet", "--dimensions", "toxicity,emotional_awareness",
               "--factors", "gender,politics,ethnicity", "--interactions",
               "toxicity:gender,emotional_awareness:politics,emotional_awareness:ethnicity",
               "--chains", "2"]


class SharedReference:
    """Implicit rewards with the reference model's log-probabilities computed once per input."""

    def __init__(self) -> None:
        self.cache: dict[tuple, np.ndarray] = {}

    def rewards(self, policy, prompts, responses):
        from disagree.evaluate.policy import sequence_logprobs

        opts = {"chat": policy.chat, "max_length": policy.max_length,
                "truncation_mode": policy.truncation_mode, "batch_size": 16}
        key = (policy.reference_path, tuple(prompts), tuple(responses))
        if key not in self.cache:
            self.cache[key] = sequence_logprobs(policy.reference_path, prompts, responses, **opts)
        mine = sequence_logprobs(policy.model_path, prompts, responses, **opts)
        return policy.beta * (mine - self.cache[key])


class CachedPolicy:
    """A :class:`Policy` whose reference log-probabilities come from a :class:`SharedReference`."""

    def __init__(self, policy, shared: SharedReference) -> None:
        self.policy, self.shared = policy, shared

    def implicit_rewards(self, prompts, responses, *, batch_size=16, device=None):
        return self.shared.rewards(self.policy, list(prompts), list(responses))


def peak_gib() -> tuple[float, float]:
    """Peak RSS of this process and of its largest finished child, GiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return own, kids


def pair_agreement(scores: np.ndarray, truth: np.ndarray, prompts: np.ndarray) -> float:
    """Share of same-prompt pairs (truth not tied) that ``scores`` orders as ``truth`` does."""
    agree = total = 0
    for p in np.unique(prompts):
        idx = np.flatnonzero(prompts == p)
        for i in range(len(idx)):
            for j in range(i + 1, len(idx)):
                t = np.sign(truth[idx[i]] - truth[idx[j]])
                if t == 0:
                    continue
                total += 1
                agree += np.sign(scores[idx[i]] - scores[idx[j]]) == t
    return agree / total


def high_of(probs: np.ndarray) -> np.ndarray:
    from disagree.data.scale import high_threshold

    return 100 * probs[:, high_threshold(probs.shape[1]) - 1:].sum(axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--fit", default="fits/figure2")
    parser.add_argument("--out", default=None, help="study folder (default: the config's)")
    parser.add_argument("--steps", type=int, default=None, help="max_steps of every run")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--completions", type=int, default=None, help="completions a prompt")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--all-comparisons", action="store_true",
                        help="the paper's three comparisons instead of the config's")
    parser.add_argument("--no-rerank", action="store_true", help="skip the posterior view")
    parser.add_argument("--reuse", action="store_true",
                        help="read a finished study's figure2.csv instead of judging again")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from disagree.cli import main as cli
    from disagree.data.groups import format_group
    from disagree.evaluate import figure2
    from disagree.evaluate.config import PAPER_COMPARISONS, load_figure2_config
    from disagree.evaluate.figure2 import Figure2Result, build_judge, key, model_side
    from disagree.evaluate.generate import generate
    from disagree.evaluate.heldout import held_out_items, ratings_of_fit
    from disagree.evaluate.judges import make_judge
    from disagree.evaluate.policy import Policy
    from disagree.model import load_fit

    started = time.perf_counter()
    times: dict[str, float] = {}
    if not (Path(args.fit) / "model.json").is_file():
        t = time.perf_counter()
        cli([*FIT_COMMAND, "--out", args.fit])
        times["fit (not in the study's time)"] = time.perf_counter() - t
    raw = yaml.safe_load(Path(args.config).read_text())
    raw["fit"] = args.fit
    if args.out:
        raw["out"] = args.out
    training = raw["train"]["training"]
    if args.steps:
        training.update(max_steps=args.steps, save_steps=args.steps)
    if args.workers:
        raw["workers"] = args.workers
    generation = raw["judge"].setdefault("generation", {})
    if args.completions:
        generation["n"] = args.completions
    if args.max_new_tokens:
        generation["max_new_tokens"] = args.max_new_tokens
    if args.all_comparisons:
        raw["comparisons"] = [c.model_dump() for c in PAPER_COMPARISONS]
    cfg = load_figure2_config(raw)
    print(f"study: {len(cfg.comparisons)} comparison(s) x 2 groups x {len(cfg.seeds)} seeds, "
          f"{training['max_steps']} steps of {training['per_device_train_batch_size']} pairs, "
          f"workers {cfg.workers}; generation {cfg.judge.generation}", flush=True)

    t0 = time.perf_counter()
    study_start = t0

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - study_start:7.0f} s] {line}", flush=True)

    out = cfg.out.absolute()
    if args.reuse and (out / "figure2.csv").is_file() and (out / "study.json").is_file():
        result = Figure2Result(out, pd.read_csv(out / "figure2.csv"),
                               pd.read_csv(out / "scores.csv"), None, None)
        print(f"reusing the finished study in {out} (its time is not in this run's)")
    else:
        result = figure2(cfg, say=say)
        times["figure2 (train, generate, judge)"] = time.perf_counter() - t0
    print("\n== Figure 2 (panel judge, MiniLM encoder) ==")
    print(result.summary(), flush=True)

    fit = load_fit(cfg.fit)
    table, ratings = ratings_of_fit(cfg.ratings, cfg.fit, out)  # the study's own table
    cfg = cfg.model_copy(update={"ratings": ratings})
    items = held_out_items(table, cfg.split, cfg.split_seed)
    runs = {k: [Path(p) for p in v] for k, v in json.loads(
        (result.out / "study.json").read_text())["runs"].items()}
    report: dict = {"figure2": result.figure2.to_dict("records")}

    if not args.no_rerank:
        t0 = time.perf_counter()
        shared = SharedReference()
        frames = []
        for c in cfg.comparisons:
            judge = make_judge("posterior", fit=fit, dimension=c.dimension)
            for which in ("first", "second"):
                for seed, run in zip(cfg.seeds, runs[key(c.group(which), c.dimension)],
                                     strict=True):
                    policy = CachedPolicy(Policy.from_run(run), shared)
                    frames.append(judge.score(policy, items).assign(
                        comparison=c.label, side=which, seed=seed))
        scores = pd.concat(frames, ignore_index=True)
        rerank = model_side(scores, cfg.comparisons, cfg.bootstrap.n, cfg.bootstrap.seed,
                            "score_mix")
        times["posterior reranking view"] = time.perf_counter() - t0
        print("\n== Reranking view (posterior judge, score_mix; model rows only) ==")
        print(rerank[["comparison", "estimate", "lower", "upper", "n"]].round(2)
              .to_string(index=False), flush=True)
        report["rerank"] = rerank.to_dict("records")

    t0 = time.perf_counter()
    c = cfg.comparisons[0]
    panel = build_judge(cfg, fit, c.dimension)  # the same seeded scorer the study trained
    posterior = make_judge("posterior", fit=fit, dimension=c.dimension)
    rated = items[items["item_id"].isin(posterior.labels(list(items["item_id"])).index)]
    print(f"\n== Panel on {len(rated)} held-out survey responses of {rated['prompt_id'].nunique()}"
          f" prompts it never saw ({c.dimension}): against the fit's soft labels ==")
    ranking = []
    for group in (None, c.group("first"), c.group("second")):
        mine = make_judge("panel", scorer=panel.scorer, dimension=c.dimension, group=group)
        theirs = make_judge("posterior", fit=fit, dimension=c.dimension, group=group)
        a, b = mine.score_items(rated), theirs.score_items(rated)
        row = {"unit": format_group(group),
               "spearman": spearmanr(a, b).statistic,
               "pair_agreement": pair_agreement(a, b, rated["prompt_id"].to_numpy()),
               "panel_sd": float(np.std(a)), "posterior_sd": float(np.std(b))}
        ranking.append(row)
    ranking = pd.DataFrame(ranking)
    print(ranking.round(3).to_string(index=False))
    report["panel_ranking"] = ranking.to_dict("records")

    settings = panel.generation
    prompts = items.drop_duplicates("prompt_id")
    policies = {"base (before)": Policy.base("smollm2-135m-instruct", chat=True)}
    for which in ("first", "second"):  # each group's seed-0 model, as the judge sampled it
        run = runs[key(c.group(which), c.dimension)][0]
        policies[f"{run.name} (after)"] = Policy.from_run(run)
    spread, shown = [], {}
    for label, policy in policies.items():
        shown[label] = texts = generate(policy, list(prompts["prompt"]), settings)
        flat = [(p, t) for p, ts in zip(prompts["prompt"], texts, strict=True) for t in ts]
        high = high_of(panel.scorer.predict_proba(flat, c.dimension))
        words = np.array([len(t.split()) for _, t in flat])
        spread.append({"texts": label, "mean": high.mean(), "sd": high.std(),
                       "within_prompt_sd": high.reshape(len(prompts), -1).std(axis=1).mean(),
                       "min": high.min(), "max": high.max(), "words": words.mean()})
    survey = panel.score_items(rated)
    spread.append({"texts": "held-out survey responses", "mean": survey.mean(),
                   "sd": survey.std(), "within_prompt_sd": pd.Series(survey).groupby(
                       rated["prompt_id"].to_numpy()).std(ddof=0).mean(),
                   "min": survey.min(), "max": survey.max(),
                   "words": rated["response"].str.split().str.len().mean()})
    spread = pd.DataFrame(spread)
    print("\n== Panel P(high) (pp) over completions and over the survey's responses ==")
    print(spread.round(2).to_string(index=False))
    report["spread"] = spread.to_dict("records")

    print("\n== A dozen completions, before (base) and after (first group, seed 0) ==")
    labels = list(shown)
    for i, prompt in enumerate(prompts["prompt"]):
        print(f"\nPROMPT: {prompt}")
        for label in labels:
            print(textwrap.indent(textwrap.fill(f"{label}: {shown[label][i][0]!r}", 100),
                                  "  "))
    report["completions"] = {k: v for k, v in shown.items()}
    times["panel checks and completions"] = time.perf_counter() - t0

    wall = time.perf_counter() - started
    own, kids = peak_gib()
    print("\n== Time and memory ==")
    for k, v in times.items():
        print(f"{k:<40} {v:8.0f} s")
    print(f"{'wall in all':<40} {wall:8.0f} s")
    print(f"peak RSS: this process {own:.2f} GiB, largest worker {kids:.2f} GiB")
    report.update(times=times, wall_s=wall, peak_rss_gib={"main": own, "workers": kids},
                  config=cfg.model_dump(mode="json"))
    (result.out / "benchmark.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
