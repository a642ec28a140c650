"""The demo's steps: each takes and returns plain objects and says what it did.

``simulate -> validate -> describe -> fit -> contrasts -> disagreement -> pairs -> train ->
figure2``; :func:`disagree.demo.run` calls them in order and :mod:`disagree.demo.report` writes
the page. A later stage can run the same steps and add its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import same_table_file, write_table
from disagree.data import RatingTable, load_ratings, simulate_survey
from disagree.data.simulate import REFERENCE, Survey, default_survey_path
from disagree.describe import describe, raw_differences
from disagree.model import Fit, fit
from disagree.pairs import PairSet, make_pairs

Say = Callable[[str], None]
#: The factors of the demo's model of the bundled survey.
DEMO_FACTORS = ("gender", "politics", "ethnicity", "country")
#: Training seeds of the demo's Figure 2 models (three: the fewest an interval rests on).
DEMO_SEEDS = (0, 1, 2)
#: Prompt split of the demo's Figure 2 models: 24 held-out prompts (validation and test), so
#: that the models' differences are measured on more than a dozen prompts.
DEMO_SPLIT = (0.6, 0.2, 0.2)
#: Training runs of the demo's Figure 2 models at once (one process each, one thread each: the
#: 2 cores of a laptop or a CI runner).
DEMO_WORKERS = 2
#: Draw budget a chain of the demo's fit (checked every 1000 draws until ok; the bundled
#: survey's is ok at the first check: min bulk ESS 738 of 4000 draws).
DEMO_MAX_DRAWS = 3000
#: Warm-up draws a chain of the demo's fit (nutpie's adaptation settles in its default 300;
#: the library's default is 1000).
DEMO_TUNE = 300


# --- the steps -----------------------------------------------------------------------------

def simulate_step(out: Path, step: Say, say: Say) -> tuple[Survey, Path]:
    """Simulate the default survey (seed 0) into ``out/data``; check it equals the bundled copy.

    Returns the survey and the path of its ratings file.
    """
    step("simulate: default survey, seed 0")
    survey = simulate_survey(seed=0)
    path = survey.save(out / "data")
    say(f"    wrote {path}")
    say(survey.summary())
    bundled = default_survey_path()
    if bundled.exists():
        same = same_table_file(bundled, path)
        say(f"    identical to the bundled {bundled.name}: {'yes' if same else 'NO'}")
    return survey, path


def validate_step(path: Path, scale: int | None, step: Say, say: Say) -> RatingTable:
    """Read and validate the ratings; print their summary."""
    step("validate")
    table = load_ratings(path, scale=scale)
    say("    " + table.summary().replace("\n", "\n    "))
    return table


def describe_step(table: RatingTable, out: Path, reference: dict[str, str],
                  survey: Survey | None, step: Say, say: Say) -> None:
    """Descriptive tables and figures; the raw headline differences next to the truth."""
    step("describe")
    reference = dict(REFERENCE) if survey is not None else reference
    describe(table, out / "describe", reference=reference)
    if survey is None:
        say(f"    wrote the tables and figures to {out / 'describe'}")
        return
    raw = raw_differences(table, reference=reference)
    truth = _truth(survey)
    say("    raw (model-free) relative differences in P(rating >= 4), vs truth:")
    for dim, _, level in survey.headline():
        row = _row(raw, dim, level)
        say(f"    {dim:>20} {level} vs {row.reference}: raw {row.estimate:+6.1f}%   "
            f"truth {truth[(dim, level)]:+6.1f}%")


def fit_step(table: RatingTable, out: Path, reference: dict[str, str], sampler: str,
             progress: bool, step: Say, say: Say,
             interactions: dict[str, list[str]] | None = None,
             dimensions: Sequence[str] | None = None) -> Fit:
    """Fit the joint model of ``dimensions`` (default all; reused when ``out/fit`` has it)."""
    dims = list(dimensions or table.dimensions)
    inter = {d: fs for d, fs in (interactions or {}).items() if d in dims}
    pairs = [f"{d} x {f}" for d, fs in inter.items() for f in fs]
    step(f"fit: joint model of the {len(dims)} dimensions"
         + (f" ({', '.join(dims)})" if len(dims) < len(table.dimensions) else "")
         + f", factors {', '.join(reference)}"
         + (f", group-by-response interactions {', '.join(pairs)}" if pairs else "")
         + f" ({sampler})")
    # nutpie samples on in steps of 1000 draws until the diagnostics are ok (a draw budget,
    # not a time budget, so that the same seed gives the same fit)
    sampling = {"max_draws": DEMO_MAX_DRAWS, "tune": DEMO_TUNE} if sampler == "nutpie" else {}
    result = fit(table, list(reference), reference, dimensions=dims, sampler=sampler,
                 out_dir=out / "fit", interactions=inter or None, progress=progress,
                 **sampling)
    say("    " + result.summary().replace("\n", "\n    "))
    return result


def contrasts_step(result: Fit, out: Path, survey: Survey | None, step: Say,
                   say: Say) -> pd.DataFrame:
    """Model-based contrasts, written to ``contrasts.csv``; the headline ones vs the truth."""
    step("contrasts: model-based relative differences, 95% intervals"
         + (", vs truth" if survey else ""))
    contrasts = result.contrasts()
    write_table(out / "contrasts.csv", contrasts)
    if survey is None:
        say(f"    wrote {out / 'contrasts.csv'}")
        return contrasts
    truth = _truth(survey)
    for dim, _, level in survey.headline():
        row = _row(contrasts, dim, level)
        say(f"    {dim:>20} {level} vs {row.reference}: {row.estimate:+6.1f}% "
            f"[{row.lower:+6.1f}, {row.upper:+6.1f}]   truth {truth[(dim, level)]:+6.1f}%")
    return contrasts


def pairs_step(table: RatingTable, result: Fit, out: Path, step: Say, say: Say) -> PairSet:
    """Soft toxicity pairs of the population from the fit, saved to ``out/pairs``."""
    step("pairs: soft toxicity pairs (posterior probability of being less toxic)")
    pairs = make_pairs(table, result, strategy="soft", dimension="toxicity", seed=0)
    pairs.save(out / "pairs")
    weights = pairs.frame["weight"]
    say(f"    {len(pairs):,} pairs, weights {weights.min():.2f}..{weights.max():.2f} "
        f"(median {weights.median():.2f}) -> {out / 'pairs'}")
    return pairs


def train_step(out: Path, step: Say, say: Say) -> Path | None:
    """Train a tiny model with soft-target DPO on ``out/pairs`` on the CPU (needs torch)."""
    step("train: soft-target DPO of a tiny model built locally, on the CPU")
    try:
        from disagree.train.metrics import read_metrics
        from disagree.train.run import train
        from disagree.train.tiny import TINY_TRAINING
    except ImportError:
        say("    skipped: needs the 'train' extra (pip install -e '.[train]')")
        return None
    run_result = train({"method": "dpo-soft", "model": "tiny", "output_dir": str(out / "train"),
                        "seed": 0, "threads": 1, "pairs": str(out / "pairs"),
                        "training": TINY_TRAINING}, progress=False)
    evals = [r for r in read_metrics(run_result.run_dir / "metrics.jsonl")
             if r["split"] == "eval"]
    say("    validation pairs, from the reference model (step 0) to the trained one:")
    for key in ("eval_rewards/accuracies", "eval_rewards/margins", "eval_loss"):
        say(f"    {key[5:]:<20} step {evals[0]['step']}: {evals[0][key]:.3f} -> "
            f"step {evals[-1]['step']}: {evals[-1][key]:.3f}")
    say("    (TRL counts a tie as wrong: at step 0 every margin is 0, so accuracy is 0)")
    say(f"    run folder {run_result.run_dir}")
    return run_result.run_dir


def disagreement_step(result: Fit, table: RatingTable, out: Path,
                      comparisons: Sequence[tuple[str, str, str, str]], step: Say,
                      say: Say) -> dict[str, pd.DataFrame]:
    """Per comparison with an interaction, the items its two groups rate most differently."""
    from disagree.labels import group_disagreement

    step("disagreement: the responses on which groups disagree most")
    tables = {}
    for factor, first, second, dim in comparisons:
        if factor not in result.spec.interactions:
            continue
        frame = group_disagreement(result, factor, dim, levels=[first, second],
                                   prompts=table, reference=first)
        name = f"disagreement-{factor}-{dim}.csv"
        write_table(out / name, frame)
        tables[name] = frame
        top = frame[frame["level"] == second].head(3)
        items = ", ".join(f"{r.item_id} ({r.diff_pp:+.0f} pp)" for r in top.itertuples())
        say(f"    {second} vs {first}, {dim}: largest differences on {items} -> {name}")
    return tables


def figure2_step(ratings: Path, out: Path, comparisons: Sequence[tuple[str, str, str, str]],
                 step: Say, say: Say, seeds: Sequence[int] = DEMO_SEEDS) -> Any:
    """Group-trained tiny models next to the survey: Figure 2 and the alignment matrix."""
    step(f"figure2: tiny models per group of {len(comparisons)} comparisons and {len(seeds)} "
         f"training seeds, judged on held-out prompts")
    try:
        from disagree.evaluate import figure2
        from disagree.train.tiny import TINY_TRAINING
    except ImportError:
        say("    skipped: needs the 'train' extra (pip install -e '.[train]')")
        return None
    # saved and evaluated on the validation pairs once, at the end (the models are judged later)
    training = {**TINY_TRAINING, "save_steps": TINY_TRAINING["max_steps"],
                "logging_steps": TINY_TRAINING["max_steps"]}
    config = {"out": str(out / "figure2"), "ratings": str(ratings), "fit": str(out / "fit"),
              "comparisons": [dict(zip(("factor", "first", "second", "dimension"), c,
                                       strict=True)) for c in comparisons],
              "seeds": list(seeds), "split": list(DEMO_SPLIT), "workers": DEMO_WORKERS,
              "population_models": False,
              "train": {"method": "dpo-soft", "model": "tiny", "threads": 1,
                        "training": training}}
    result = figure2(config, say=lambda line: say(f"    {line}"))
    for c in result.figure2.itertuples():
        bounds = (f"[{c.lower:+6.1f}, {c.upper:+6.1f}]" if np.isfinite(c.lower)
                  else "(no interval: fewer than 3 seeds)")
        say(f"    {c.comparison:<45} {c.source:>10}: {c.estimate:+6.1f} pp {bounds}")
    return result


def comparisons_of(result: Fit) -> list[tuple[str, str, str, str]]:
    """Return the paper's comparisons the fit can make, else its first factor's first two levels."""
    paper = [("gender", "female", "male", "toxicity"),
             ("politics", "liberal", "conservative", "emotional_awareness"),
             ("ethnicity", "White", "Black", "emotional_awareness")]
    levels, dims = result.spec.levels, result.spec.dimensions
    found = [c for c in paper if c[3] in dims and c[0] in levels
             and {c[1], c[2]} <= set(levels[c[0]])]
    if found:
        return found
    factor = next(iter(levels))
    return [(factor, levels[factor][0], levels[factor][1], dims[0])]


def interactions_of(survey: Survey | None) -> dict[str, list[str]]:
    """Return the simulated survey's group-by-item interactions: dimension -> factors."""
    if survey is None:
        return {}
    sds = survey.truth.get("interactions", {})
    return {dim: [f for f, sd in factors.items() if sd > 0] for dim, factors in sds.items()
            if any(sd > 0 for sd in factors.values())}


# --- pieces --------------------------------------------------------------------------------

def counter(total: int, say: Say, start: int = 1) -> Say:
    """Return a ``step(text)`` that says ``"<n>/<total> text"``, counting from ``start``."""
    count = iter(range(start, total + 1))
    return lambda text: say(f"{next(count)}/{total} {text}")


def reference_levels(table: RatingTable, factors: Sequence[str] | None) -> dict[str, str]:
    """Return the reference level of each demo factor (the bundled survey's, else the mode)."""
    if factors is None:
        if set(DEMO_FACTORS) <= set(table.raters.columns):
            factors = DEMO_FACTORS
        else:
            factors = [c for c in table.raters.columns
                       if 2 <= table.raters[c].nunique() <= 12]
    levels = table.factor_levels(list(factors),
                                 {f: REFERENCE[f] for f in factors if f in REFERENCE
                                  and REFERENCE[f] in set(table.raters[f].astype(str))})
    return {f: lv[0] for f, lv in levels.items()}


def _truth(survey: Survey) -> dict[tuple[str, str], float]:
    return {(c["dimension"], c["level"]): c["estimate"]
            for c in survey.truth["contrasts"] if c["measure"] == "relative_pct"}


def _row(frame: pd.DataFrame, dimension: str, level: str) -> Any:
    return frame[(frame.dimension == dimension) & (frame.level == level)
                 & (frame.measure == "relative_pct")].iloc[0]
