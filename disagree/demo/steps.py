"""The demo pipeline: simulate -> validate -> describe -> fit -> contrasts -> pairs -> train.

``run(out)`` runs the whole pipeline on the bundled default survey (or on a user's ratings
with ``data=``) and returns a :class:`DemoResult`; ``disagree demo`` is this call plus
printing. Each step is a function of its own taking and returning plain objects, so that a
later stage (the evaluation) can run the same steps and add its own. Progress goes to
``say`` (``print`` by default), one numbered line per step and indented details.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from disagree._io import write_table
from disagree.data import RatingTable, load_ratings, simulate_survey
from disagree.data.simulate import REFERENCE, Survey, default_survey_path
from disagree.describe import describe, raw_differences
from disagree.model import Fit, fit
from disagree.pairs import PairSet, make_pairs

Say = Callable[[str], None]
#: The factors of the demo's model of the bundled survey.
DEMO_FACTORS = ("gender", "politics", "ethnicity", "country")


@dataclass
class DemoResult:
    """What the demo made: the folder, the data, the fit, the pairs, the run, the seconds."""

    out: Path
    table: RatingTable
    survey: Survey | None = None
    fit: Fit | None = None
    contrasts: pd.DataFrame | None = None
    pairs: PairSet | None = None
    run_dir: Path | None = None
    seconds: float = 0.0


def run(out: str | os.PathLike[str] = "demo", data: str | os.PathLike[str] | None = None, *,
        fit_model: bool = True, train_model: bool = True, sampler: str = "nutpie",
        factors: Sequence[str] | None = None, progress: bool = False,
        say: Say = print) -> DemoResult:
    """Run the demo pipeline into ``out`` and return what it made.

    Parameters
    ----------
    out : path
        Output folder (``data/``, ``describe/``, ``fit/``, ``contrasts.csv``, ``pairs/``,
        ``train/``).
    data : path, optional
        A ratings file of your own instead of the simulated default survey: there is no truth
        to compare with, and no training when the items have no prompt and response texts.
    fit_model : bool
        Fit the model (about a minute); without it the demo stops after ``describe``.
    train_model : bool
        After the fit, build soft pairs and train a tiny model (needs the ``train`` extra).
    sampler : str
        Sampler of the fit (see :func:`disagree.model.fit`).
    factors : sequence of str, optional
        Factors of the model (default: those of the bundled survey, or every rater attribute
        with 2 to 12 levels of your data).
    progress : bool
        Show the sampler's progress display.
    say : callable
        Receives each line of progress.

    Returns
    -------
    DemoResult
    """
    out = Path(out)
    start = time.perf_counter()
    steps = ((7 if train_model else 5) if fit_model else 3) - (data is not None)
    step = counter(steps, say)
    if data is None:
        survey, path = simulate_step(out, step, say)
        table = validate_step(path, survey.config.scale, step, say)
    else:
        survey = None
        table = validate_step(Path(data), None, step, say)
    reference = _reference(table, factors)
    describe_step(table, out, reference, survey, step, say)
    result = DemoResult(out, table, survey)
    if fit_model:
        result.fit = fit_step(table, out, reference, sampler, progress, step, say)
        result.contrasts = contrasts_step(result.fit, out, survey, step, say)
        if train_model:
            texts = {"prompt_id", "prompt", "response"} <= set(table.items.columns)
            result.pairs = pairs_step(table, result.fit, out, step, say) if texts else None
            result.run_dir = train_step(out, step, say) if texts else None
            if not texts:
                say("    no pairs and no training: the items have no prompt_id, prompt and "
                    "response columns")
    result.seconds = time.perf_counter() - start
    say(f"done in {result.seconds:.1f} s; outputs in {out}/")
    return result


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
        same = bundled.read_bytes() == path.read_bytes()
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
             progress: bool, step: Say, say: Say) -> Fit:
    """Fit the joint model of every dimension (reused when ``out/fit`` already has it)."""
    step(f"fit: joint model of the {len(table.dimensions)} dimensions, factors "
         f"{', '.join(reference)} ({sampler})")
    result = fit(table, list(reference), reference, sampler=sampler, out_dir=out / "fit",
                 progress=progress)
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


# --- pieces --------------------------------------------------------------------------------

def counter(total: int, say: Say, start: int = 1) -> Say:
    """Return a ``step(text)`` that says ``"<n>/<total> text"``, counting from ``start``."""
    count = iter(range(start, total + 1))
    return lambda text: say(f"{next(count)}/{total} {text}")


def _reference(table: RatingTable, factors: Sequence[str] | None) -> dict[str, str]:
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
