"""The paper's experiment grid: each cell a training run plus its evaluation.

:func:`run_grid` runs a :class:`~disagree.evaluate.grid_config.GridConfig`: every variant of
every experiment (disagreement handling, rating scale, optimiser, group...) is trained once
per seed (:mod:`disagree.evaluate.executors`; finished cells are reused, an interrupted grid
resumes) and judged on the held-out prompts by the posterior judge
(:mod:`disagree.evaluate.judges`) against the un-tuned control, the base model, which prefers
no response and so scores each prompt's mean soft label. Per prompt, the measure of a
dimension is

``reduction`` (lower is better, e.g. toxicity)
    control minus model, in percentage points of the probability of a high rating;
``gain`` (higher is better, e.g. emotional awareness)
    model minus control.

``results.csv`` has one row per experiment, variant, seed, dimension, unit and measure: the
mean over the held-out prompts with a bootstrap interval over prompts, and a row with seed
``all`` pooling the seeds (interval over seeds and prompts), with the cell's ``config_hash``.
``summary.csv`` has the paper's comparisons as ratios ``first / second`` of two variants'
pooled measures, with a paired bootstrap interval (prompts resampled jointly, seeds within
each side) and the paper's value; ``figure-<experiment>.png`` draws each experiment in the
manner of the paper's Figures 3 to 5 (a bar per variant with its interval, a dot per seed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import write_figure, write_json, write_table
from disagree.data.groups import parse_group
from disagree.errors import EvaluateError
from disagree.evaluate.bootstrap import mean_interval, ratio_interval
from disagree.evaluate.executors import CellJob, judge_scores, run_jobs, score_key, status
from disagree.evaluate.grid_config import (
    Cell,
    GridComparison,
    GridConfig,
    GridInputs,
    expand_cells,
    load_grid_config,
    unit_label,
)
from disagree.evaluate.heldout import held_out_items
from disagree.evaluate.policy import Policy
from disagree.model import Fit, load_fit

#: Columns of results.csv and summary.csv.
RESULT_COLUMNS = ["experiment", "variant", "seed", "dimension", "unit", "measure", "estimate",
                  "lower", "upper", "n", "config_hash"]
SUMMARY_COLUMNS = ["comparison", "experiment", "first", "second", "dimension", "unit",
                   "measure", "estimate", "lower", "upper", "n", "first_estimate",
                   "second_estimate", "paper"]
MEASURES = {"lower": "reduction", "higher": "gain"}
#: Experiments whose comparisons have default paper values.
PAPER_VALUES = (
    ("disagreement", "all", "majority", "toxicity", 1.53),
    ("scale", "5-point", "binary", "toxicity", 1.22),
    ("optimiser", "dpo", "grpo", "toxicity", 8.0),
    ("optimiser", "dpo", "grpo", "emotional_awareness", 3.0),
)
Say = Callable[[str], None]


@dataclass
class GridResult:
    """What :func:`run_grid` wrote: the folder, the tables and the cells."""

    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    cells: list[Cell]


def run_grid(config: GridConfig | str | os.PathLike[str] | Mapping[str, Any], *,
             say: Say = print) -> GridResult:
    """Run (or resume) a grid, then write results.csv, summary.csv and the figures.

    Parameters
    ----------
    config : GridConfig, path or mapping
        The grid (see :mod:`disagree.evaluate.grid_config`).
    say : callable
        Receives one line per step.

    Returns
    -------
    GridResult
    """
    cfg = config if isinstance(config, GridConfig) else load_grid_config(config)
    out = cfg.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    inputs = GridInputs.load(cfg)
    fit = load_fit(cfg.fit)
    check_evaluations(cfg, fit)
    cells = expand_cells(cfg, inputs)
    jobs = [CellJob.of(c, cfg, inputs.ratings) for c in cells]
    done = sum(status(j) == "complete" for j in jobs)
    say(f"grid: {len(cfg.experiments)} experiments x {len(cfg.seeds)} seeds, {len(cells)} "
        f"distinct cells, {done} complete; executor {cfg.executor.name}")
    cache = {"fit": fit, "items": held_out_items(inputs.table, cfg.split, cfg.split_seed)}
    records = run_jobs(jobs, cfg.executor, say, cache)
    controls = control_scores(cfg, cache, cells)
    measures = measure_table(cfg, cells, records, controls)
    results = grid_results(cfg, measures)
    summary = grid_summary(cfg, measures)
    write_table(out / "results.csv", results)
    write_table(out / "summary.csv", summary)
    for name, fig in plot_grid(results).items():
        write_figure(out / f"figure-{name}.png", fig)
    write_json(out / "grid.json", {
        "config": cfg.model_dump(mode="json"),
        "cells": {c.key: {"digest": c.digest, "entries": [list(e) for e in c.entries]}
                  for c in cells}})
    say(f"wrote {out}/results.csv, summary.csv, figure-*.png ({len(cells)} cells)")
    return GridResult(out, results, summary, cells)


def check_evaluations(cfg: GridConfig, fit: Fit) -> None:
    """Raise :class:`EvaluateError` for an evaluated dimension or unit the fit lacks."""
    for exp in cfg.experiments:
        for dim in cfg.dimensions_of(exp):
            if dim not in fit.spec.dimensions:
                raise EvaluateError(f"experiments.{exp}.dimensions: {dim!r} is not in the fit "
                                    f"({', '.join(fit.spec.dimensions)})")
        for unit in cfg.units_of(exp):
            for factor, level in (parse_group(unit) if unit != "population" else {}).items():
                if str(level) not in map(str, fit.spec.levels.get(factor, [])):
                    raise EvaluateError(f"experiments.{exp}.units: {unit!r} is not a group of "
                                        f"the fit (factors {', '.join(fit.spec.levels)})")


def control_scores(cfg: GridConfig, cache: dict[str, Any],
                   cells: list[Cell]) -> dict[tuple[str, str], pd.Series]:
    """Score the un-tuned control on every (dimension, unit): ``prompt_id -> score``.

    ``cache`` holds ``fit``, ``items`` and the judges (see
    :func:`~disagree.evaluate.executors.judge_scores`).
    """
    out = {}
    for dim, unit in dict.fromkeys(e for c in cells for e in c.evaluations):
        scores = judge_scores(Policy.base("base"), [(dim, unit)], cache,
                              cfg.judge.batch_size)[score_key(dim, unit)]
        out[(dim, unit)] = pd.Series(scores[cfg.judge.column], index=scores["prompt_id"])
    return out


def measure_table(cfg: GridConfig, cells: list[Cell], records: Mapping[str, dict],
                  controls: Mapping[tuple[str, str], pd.Series]) -> dict[tuple, Any]:
    """Per (experiment, variant, dimension, unit): the seeds x prompts measures and hashes."""
    by_entry = {e: c.key for c in cells for e in c.entries}
    table: dict[tuple, Any] = {}
    for exp in cfg.experiments:
        for variant in cfg.experiments[exp].variants:
            for dim in cfg.dimensions_of(exp):
                sign = 1.0 if cfg.direction(dim) == "higher" else -1.0
                for unit in cfg.units_of(exp):
                    control = controls[(dim, unit)]
                    rows, keys = [], []
                    for seed in cfg.seeds:
                        key = by_entry[(exp, variant, seed)]
                        s = records[key]["scores"][score_key(dim, unit)]
                        model = pd.Series(s[cfg.judge.column], index=s["prompt_id"])
                        rows.append(sign * (model.loc[control.index].to_numpy()
                                            - control.to_numpy()))
                        keys.append(key)
                    table[(exp, variant, dim, unit)] = (np.array(rows), keys)
    return table


def default_comparisons(cfg: GridConfig) -> tuple[GridComparison, ...]:
    """Return the paper's comparisons among the experiments and variants of ``cfg``.

    ``all / majority`` (toxicity), ``5-point / binary`` (toxicity), ``dpo / grpo`` (toxicity
    and emotional awareness), and for an experiment named ``group``, each variant whose pairs
    (or reward) name a group over ``population``, judged by that group.
    """
    out = []
    for exp, first, second, dim, paper in PAPER_VALUES:
        e = cfg.experiments.get(exp)
        if e and first in e.variants and second in e.variants and dim in cfg.dimensions_of(exp):
            out.append(GridComparison(experiment=exp, first=first, second=second, dimension=dim,
                                      paper=paper))
    group = cfg.experiments.get("group")
    if group and "population" in group.variants:
        for name, variant in group.variants.items():
            found = (variant.get("pairs") or {}).get("group") or \
                (variant.get("reward") or {}).get("group")
            if name == "population" or not found:
                continue
            unit = unit_label(found)
            for dim in cfg.dimensions_of("group"):
                if unit in cfg.units_of("group"):
                    out.append(GridComparison(experiment="group", first=name,
                                              second="population", dimension=dim, unit=unit))
    return tuple(out)


def grid_results(cfg: GridConfig, measures: Mapping[tuple, Any]) -> pd.DataFrame:
    """Build results.csv: per seed (interval over prompts) and pooled (``seed`` ``all``)."""
    boot = cfg.bootstrap
    rows = []
    for (exp, variant, dim, unit), (values, keys) in measures.items():
        base = {"experiment": exp, "variant": variant, "dimension": dim, "unit": unit,
                "measure": MEASURES[cfg.direction(dim)]}
        for i, seed in enumerate(cfg.seeds):
            iv = mean_interval(values[i], boot.n, boot.seed)
            rows.append({**base, "seed": str(seed), "estimate": iv.estimate, "lower": iv.lower,
                         "upper": iv.upper, "n": iv.n, "config_hash": keys[i]})
        iv = mean_interval(values, boot.n, boot.seed)
        rows.append({**base, "seed": "all", "estimate": iv.estimate, "lower": iv.lower,
                     "upper": iv.upper, "n": iv.n, "config_hash": ";".join(keys)})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def grid_summary(cfg: GridConfig, measures: Mapping[tuple, Any],
                 comparisons: tuple[GridComparison, ...] | None = None) -> pd.DataFrame:
    """Build summary.csv: each comparison's ratio of pooled measures, interval, paper value."""
    if comparisons is None:
        comparisons = cfg.comparisons if cfg.comparisons is not None else \
            default_comparisons(cfg)
    rows = []
    for c in comparisons:
        first = measures[(c.experiment, c.first, c.dimension, c.unit)][0]
        second = measures[(c.experiment, c.second, c.dimension, c.unit)][0]
        iv = ratio_interval(first, second, cfg.bootstrap.n, cfg.bootstrap.seed)
        rows.append({"comparison": c.label, "experiment": c.experiment, "first": c.first,
                     "second": c.second, "dimension": c.dimension, "unit": c.unit,
                     "measure": MEASURES[cfg.direction(c.dimension)], "estimate": iv.estimate,
                     "lower": iv.lower, "upper": iv.upper, "n": iv.n,
                     "first_estimate": float(first.mean()),
                     "second_estimate": float(second.mean()), "paper": c.paper})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def plot_grid(results: pd.DataFrame) -> dict[str, Any]:
    """Draw one figure per experiment: a bar per variant (pooled, with its interval), seeds.

    Parameters
    ----------
    results : DataFrame
        ``results.csv``.

    Returns
    -------
    dict
        Experiment name -> matplotlib figure, one panel per dimension and unit.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    frame = results.assign(seed=results["seed"].astype(str))
    for exp, rows in frame.groupby("experiment", sort=False):
        panels = list(dict.fromkeys(zip(rows["dimension"], rows["unit"], rows["measure"],
                                        strict=True)))
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.6, 3.4),
                                 squeeze=False)
        for ax, (dim, unit, measure) in zip(axes[0], panels, strict=True):
            sub = rows[(rows["dimension"] == dim) & (rows["unit"] == unit)]
            pooled = sub[sub["seed"] == "all"]
            x = np.arange(len(pooled))
            ax.bar(x, pooled["estimate"], color="#8fb3d9", edgecolor="#1f5fa8")
            ax.errorbar(x, pooled["estimate"], yerr=[pooled["estimate"] - pooled["lower"],
                                                     pooled["upper"] - pooled["estimate"]],
                        fmt="none", ecolor="black", capsize=4, lw=1.2)
            for i, variant in enumerate(pooled["variant"]):
                seeds = sub[(sub["variant"] == variant) & (sub["seed"] != "all")]
                ax.plot(np.full(len(seeds), i), seeds["estimate"], "o", color="#c2561a",
                        markersize=4)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(x, pooled["variant"], rotation=30, ha="right")
            ax.set_ylabel(f"{dim.replace('_', ' ')} {measure} (pp)")
            ax.set_title(unit if unit != "population" else dim.replace("_", " "), fontsize=10)
        fig.suptitle(f"{exp}: vs the un-tuned model (bars: seeds pooled, 95% CI; dots: seeds)",
                     fontsize=10)
        fig.tight_layout()
        figures[str(exp)] = fig
    return figures
