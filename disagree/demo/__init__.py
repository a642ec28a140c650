"""The demo: the whole pipeline on the bundled survey (or your ratings), and its report.

``run(out)`` simulates the default survey, validates and describes it (Figure 1), fits the
joint model with the survey's group-by-item interactions (of the two dimensions of the
headline contrasts and Figure 2, toxicity and emotional awareness, for the bundled survey; of
every dimension of your ratings), compares the headline contrasts with
the simulated truth, finds the responses groups disagree on most, builds soft pairs, trains a
tiny model on them, trains one tiny model per group of the paper's three comparisons (Figure 2
and the group alignment matrix, judged by the posterior), and writes ``report.html``: one
self-contained page with every figure, its tables beside it as CSV. ``disagree demo`` is this
call plus printing. The steps are in :mod:`disagree.demo.steps`, the page in
:mod:`disagree.demo.report`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from disagree.data import RatingTable
from disagree.data.simulate import Survey
from disagree.demo.steps import (
    DEMO_FACTORS,
    Say,
    comparisons_of,
    contrasts_step,
    counter,
    describe_step,
    disagreement_step,
    figure2_step,
    fit_step,
    interactions_of,
    pairs_step,
    simulate_step,
    train_step,
    validate_step,
)
from disagree.model import Fit
from disagree.pairs import PairSet

__all__ = ["DEMO_FACTORS", "DemoResult", "counter", "pairs_step", "run", "train_step"]


@dataclass
class DemoResult:
    """What the demo made: the folder, the data, the fit, the tables, the runs, the seconds."""

    out: Path
    table: RatingTable
    survey: Survey | None = None
    fit: Fit | None = None
    contrasts: pd.DataFrame | None = None
    disagreement: dict[str, pd.DataFrame] | None = None
    pairs: PairSet | None = None
    run_dir: Path | None = None
    figure2: Any = None
    report: Path | None = None
    seconds: float = 0.0


def run(out: str | os.PathLike[str] = "demo", data: str | os.PathLike[str] | None = None, *,
        fit_model: bool = True, train_model: bool = True, sampler: str = "nutpie",
        factors: Sequence[str] | None = None, progress: bool = False,
        say: Say = print) -> DemoResult:
    """Run the demo pipeline into ``out`` and return what it made.

    Parameters
    ----------
    out : path
        Output folder (``data/``, ``describe/``, ``fit/``, ``contrasts.csv``,
        ``disagreement-*.csv``, ``pairs/``, ``train/``, ``figure2/``, ``report.html``).
    data : path, optional
        A ratings file of your own instead of the simulated default survey: there is no truth
        to compare with, and no training when the items have no prompt and response texts.
    fit_model : bool
        Fit the model; without it the demo stops after ``describe``.
    train_model : bool
        After the fit, build soft pairs, train a tiny model and the Figure 2 group models
        (needs the ``train`` extra).
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
    from disagree.demo.report import report_step
    from disagree.demo.steps import reference_levels

    out = Path(out)
    start = time.perf_counter()
    steps = ((10 if train_model else 7) if fit_model else 4) - (data is not None)
    step = counter(steps, say)
    if data is None:
        survey, path = simulate_step(out, step, say)
        table = validate_step(path, survey.config.scale, step, say)
    else:
        survey, path = None, Path(data)
        table = validate_step(path, None, step, say)
    reference = reference_levels(table, factors)
    describe_step(table, out, reference, survey, step, say)
    result = DemoResult(out, table, survey)
    if fit_model:
        # the bundled survey: the dimensions of its headline contrasts and of Figure 2 (the
        # demo's 10 minutes; `disagree fit` fits all five jointly); your data: all of them
        dims = list(dict.fromkeys(d for d, _, _ in survey.headline())) if survey else None
        result.fit = fit_step(table, out, reference, sampler, progress, step, say,
                              interactions_of(survey), dims)
        result.contrasts = contrasts_step(result.fit, out, survey, step, say)
        comparisons = comparisons_of(result.fit)
        result.disagreement = disagreement_step(result.fit, table, out, comparisons, step, say)
        texts = {"prompt_id", "prompt", "response"} <= set(table.items.columns)
        if train_model and texts:
            result.pairs = pairs_step(table, result.fit, out, step, say)
            result.run_dir = train_step(out, step, say)
            result.figure2 = figure2_step(path, out, comparisons, step, say)
        elif train_model:
            say("    no pairs and no training: the items have no prompt_id, prompt and "
                "response columns")
    result.seconds = time.perf_counter() - start
    result.report = report_step(result, step, say)
    say(f"done in {result.seconds:.1f} s; outputs in {out}/, the report in {result.report}")
    return result
