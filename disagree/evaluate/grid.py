"""The paper's experiment grid: each cell a training run plus its evaluation.

:func:`run_grid` runs a :class:`~disagree.evaluate.grid_config.GridConfig`: every variant of
every experiment (disagreement handling, rating scale, optimiser, group...) is trained once
per seed, for the same number of epochs over its own training examples (``budget.epochs``;
:mod:`disagree.evaluate.executors`; finished cells are reused, an interrupted grid resumes),
and judged on the held-out prompts against the un-tuned control, the base model, by each of
the experiment's judges: ``posterior`` (the ``reranking`` view: the policy ranks the survey's
rated responses, and the base model, which prefers none, scores each prompt's mean soft label)
or a judge that scores the policy's own completions (``panel``, ``classifier``: the
``generation`` view, against the base model's completions with the same sampling seed). Per
prompt, the measure of a dimension is

``reduction`` (lower is better, e.g. toxicity)
    control minus model, in percentage points of the probability of a high rating;
``gain`` (higher is better, e.g. emotional awareness)
    model minus control.

``results.csv`` has one row per experiment, variant, seed, judge, dimension, unit and measure:
the mean over the held-out prompts, and a row with seed ``all`` pooling the seeds with the
two-level bootstrap interval of :mod:`disagree.evaluate.bootstrap` (training seeds and
prompts; no interval below three seeds), the budget (``budget``, and what each cell spent:
``steps``, ``epochs``, ``examples``, ``visits``) and the cells' ``config_hash``.
``summary.csv`` has the paper's comparisons of two variants' pooled measures: the difference
``first - second`` and the ratio ``first / second``, each with its paired bootstrap interval,
and the paper's value of the ratio; ``figure-<experiment>.png`` draws each experiment in the
manner of the paper's Figures 3 to 5 (a bar per variant with its interval, a dot per seed).
"""

from __future__ import annotations

import dataclasses
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
from disagree.evaluate.bootstrap import bootstrap_difference, mean_interval, ratio_interval
from disagree.evaluate.executors import CellJob, judge_scores, run_jobs, score_key, status
from disagree.evaluate.grid_cells import Cell, GridInputs, expand_cells
from disagree.evaluate.grid_config import (
    VIEWS,
    GridComparison,
    GridConfig,
    load_grid_config,
    unit_label,
)
from disagree.evaluate.heldout import held_out_items
from disagree.evaluate.policy import Policy
from disagree.model import Fit, load_fit

#: Columns of results.csv and summary.csv.
RESULT_COLUMNS = ["experiment", "variant", "seed", "judge", "view", "dimension", "unit",
                  "measure", "estimate", "lower", "upper", "n", "budget", "steps", "epochs",
                  "examples", "visits", "config_hash"]
SUMMARY_COLUMNS = ["comparison", "experiment", "first", "second", "judge", "view", "dimension",
                   "unit", "measure", "first_estimate", "second_estimate", "difference",
                   "difference_lower", "difference_upper", "ratio", "ratio_lower",
                   "ratio_upper", "paper_ratio", "n", "seeds"]
MEASURES = {"lower": "reduction", "higher": "gain"}
#: The paper's comparisons (experiment, first, second, dimension, ratio reported).
PAPER_VALUES = (
    ("disagreement", "all", "majority", "toxicity", 1.53),
    ("scale", "5-point", "binary", "toxicity", 1.22),
    ("optimiser", "dpo", "grpo", "toxicity", 8.0),
    ("optimiser", "dpo-awareness", "grpo-awareness", "emotional_awareness", 3.0),
)
Say = Callable[[str], None]


@dataclass
class GridResult:
    """What :func:`run_grid` wrote: the folder, the tables and the cells."""

    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    cells: list[Cell]


@dataclass(frozen=True)
class Measures:
    """One (experiment, variant, judge, dimension, unit): seeds x prompts measures, cells."""

    values: np.ndarray
    keys: list[str]
    spent: list[dict[str, Any]]


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
    judges = inputs.judges(cells)
    jobs = [CellJob.of(c, cfg, inputs.ratings, judges) for c in cells]
    done = sum(status(j) == "complete" for j in jobs)
    jobs = [with_shared_pairs(j, inputs) for j in jobs]
    say(f"grid: {len(cfg.experiments)} experiments x {len(cfg.seeds)} seeds, {len(cells)} "
        f"distinct cells, {done} complete; {cfg.budget.epochs:g} epochs each; executor "
        f"{cfg.executor.name}")
    cache = {"fit": fit, "items": held_out_items(inputs.table, cfg.split, cfg.split_seed)}
    records = run_jobs(jobs, cfg.executor, say, cache)
    controls = control_scores(cfg, cache, cells, judges)
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


def with_shared_pairs(job: CellJob, inputs: GridInputs) -> CellJob:
    """Return the job training on pairs made once for all its seeds, if it is to train.

    The cell's hash is that of its ``pairs:`` options; its run reads the shared folder
    (:meth:`~disagree.evaluate.grid_cells.GridInputs.shared_pairs`).
    """
    pairs = job.config.get("pairs")
    if status(job) != "training" or not isinstance(pairs, Mapping):
        return job
    return dataclasses.replace(job, config={**job.config,
                                            "pairs": inputs.shared_pairs(pairs)})


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


def control_scores(cfg: GridConfig, cache: dict[str, Any], cells: list[Cell],
                   judges: Mapping[str, Mapping[str, Any]]) -> dict[tuple, pd.Series]:
    """Score the un-tuned control with the posterior judge: ``prompt_id -> score``.

    The base model prefers no response, so this control is the same for every seed (the
    generating judges' controls are per cell, in ``cell.json``). Keys are evaluations
    ``(judge key, dimension, unit)``.
    """
    out = {}
    for key, dim, unit in dict.fromkeys(e for c in cells for e in c.evaluations):
        if judges[key]["name"] != "posterior":
            continue
        s = judge_scores(Policy.base("base"), [(key, dim, unit)], cache,
                         judges)[score_key(key, dim, unit)]
        out[(key, dim, unit)] = pd.Series(s[cfg.judge.column], index=s["prompt_id"])
    return out


def measure_table(cfg: GridConfig, cells: list[Cell], records: Mapping[str, dict],
                  controls: Mapping[tuple, pd.Series]) -> dict[tuple, Measures]:
    """Per (experiment, variant, judge, dimension, unit): the seeds x prompts measures."""
    by_entry = {e: c.key for c in cells for e in c.entries}
    table: dict[tuple, Measures] = {}
    for exp in cfg.experiments:
        for judge in cfg.judges_of(exp):
            for dim in cfg.dimensions_of(exp):
                sign = 1.0 if cfg.direction(dim) == "higher" else -1.0
                jkey = cfg.judge_key(judge, dim)
                for unit in cfg.units_of(exp):
                    skey = score_key(jkey, dim, unit)
                    column = cfg.judge.column if judge == "posterior" else "score"
                    for variant in cfg.experiments[exp].variants:
                        rows, keys, spent = [], [], []
                        for seed in cfg.seeds:
                            record = records[by_entry[(exp, variant, seed)]]
                            control = (controls[(jkey, dim, unit)] if judge == "posterior"
                                       else series(record["control"][skey], "score"))
                            model = series(record["scores"][skey], column)
                            rows.append(sign * (model.loc[control.index].to_numpy()
                                                - control.to_numpy()))
                            keys.append(record["key"])
                            spent.append(record.get("train", {}))
                        table[(exp, variant, judge, dim, unit)] = Measures(np.array(rows),
                                                                           keys, spent)
    return table


def series(scores: Mapping[str, list], column: str) -> pd.Series:
    """Return a judge's scores of one evaluation as ``prompt_id -> score``."""
    return pd.Series(scores[column], index=scores["prompt_id"])


def default_comparisons(cfg: GridConfig) -> tuple[GridComparison, ...]:
    """Return the paper's comparisons among the experiments and variants of ``cfg``.

    ``all`` vs ``majority`` (toxicity), ``5-point`` vs ``binary`` (toxicity), ``dpo`` vs
    ``grpo`` (toxicity) and ``dpo-awareness`` vs ``grpo-awareness`` (emotional awareness, the
    single-objective cells), and in every experiment with a ``population`` variant, each
    variant whose pairs (or reward) name a group vs ``population``, judged by that group; each
    by every judge of its experiment (the first judge's rows first).
    """
    out = []
    for exp, first, second, dim, paper in PAPER_VALUES:
        e = cfg.experiments.get(exp)
        if e and first in e.variants and second in e.variants and dim in cfg.dimensions_of(exp):
            out += [GridComparison(experiment=exp, first=first, second=second, dimension=dim,
                                   judge=j, paper=paper) for j in cfg.judges_of(exp)]
    for exp, e in cfg.experiments.items():
        if "population" not in e.variants:
            continue
        for name, variant in e.variants.items():
            found = (variant.get("pairs") or {}).get("group") or \
                (variant.get("reward") or {}).get("group")
            if name == "population" or not found or unit_label(found) not in cfg.units_of(exp):
                continue
            out += [GridComparison(experiment=exp, first=name, second="population",
                                   dimension=dim, unit=unit_label(found), judge=j)
                    for j in cfg.judges_of(exp) for dim in cfg.dimensions_of(exp)]
    return tuple(out)


def grid_results(cfg: GridConfig, measures: Mapping[tuple, Measures]) -> pd.DataFrame:
    """Build results.csv: per seed (the prompts' mean) and pooled (``seed`` ``all``)."""
    boot = cfg.bootstrap
    rows = []
    for (exp, variant, judge, dim, unit), m in measures.items():
        base = {"experiment": exp, "variant": variant, "judge": judge, "view": VIEWS[judge],
                "dimension": dim, "unit": unit, "measure": MEASURES[cfg.direction(dim)],
                "budget": f"epochs={cfg.budget.epochs:g}"}
        for i, seed in enumerate(cfg.seeds):
            iv = mean_interval(m.values[i], boot.n, boot.seed)
            rows.append({**base, **spent_columns([m.spent[i]]), "seed": str(seed),
                         "estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper,
                         "n": iv.n, "config_hash": m.keys[i]})
        iv = mean_interval(m.values, boot.n, boot.seed)
        rows.append({**base, **spent_columns(m.spent), "seed": "all", "estimate": iv.estimate,
                     "lower": iv.lower, "upper": iv.upper, "n": iv.n,
                     "config_hash": ";".join(m.keys)})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def spent_columns(spent: list[dict[str, Any]]) -> dict[str, float]:
    """Return ``steps``, ``epochs``, ``examples`` and ``visits``: means over the runs given."""
    out = {}
    for column, key in (("steps", "global_step"), ("epochs", "epochs"),
                        ("examples", "examples"), ("visits", "visits")):
        values = [s[key] for s in spent if s.get(key) is not None]
        out[column] = float(np.mean(values)) if values else np.nan
    return out


def grid_summary(cfg: GridConfig, measures: Mapping[tuple, Measures],
                 comparisons: tuple[GridComparison, ...] | None = None) -> pd.DataFrame:
    """Build summary.csv: each comparison's difference and ratio of pooled measures.

    Both come with paired bootstrap intervals (:func:`~disagree.evaluate.bootstrap.
    bootstrap_difference`, :func:`~disagree.evaluate.bootstrap.ratio_interval`; seeds paired
    by index, prompts shared) and the paper's ratio. A comparison without ``judge`` takes its
    experiment's first judge.
    """
    if comparisons is None:
        comparisons = cfg.comparisons if cfg.comparisons is not None else \
            default_comparisons(cfg)
    boot = cfg.bootstrap
    rows = []
    for c in comparisons:
        judge = c.judge or cfg.judges_of(c.experiment)[0]
        first = measures[(c.experiment, c.first, judge, c.dimension, c.unit)].values
        second = measures[(c.experiment, c.second, judge, c.dimension, c.unit)].values
        diff = bootstrap_difference(first, second, boot.n, boot.seed)
        ratio = ratio_interval(first, second, boot.n, boot.seed)
        rows.append({"comparison": c.label, "experiment": c.experiment, "first": c.first,
                     "second": c.second, "judge": judge, "view": VIEWS[judge],
                     "dimension": c.dimension, "unit": c.unit,
                     "measure": MEASURES[cfg.direction(c.dimension)],
                     "first_estimate": float(first.mean()),
                     "second_estimate": float(second.mean()), "difference": diff.estimate,
                     "difference_lower": diff.lower, "difference_upper": diff.upper,
                     "ratio": ratio.estimate, "ratio_lower": ratio.lower,
                     "ratio_upper": ratio.upper, "paper_ratio": c.paper, "n": diff.n,
                     "seeds": len(cfg.seeds)})
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
        Experiment name -> matplotlib figure, one panel per judge, dimension and unit.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    frame = results.assign(seed=results["seed"].astype(str))
    for exp, rows in frame.groupby("experiment", sort=False):
        panels = list(dict.fromkeys(zip(rows["judge"], rows["dimension"], rows["unit"],
                                        rows["measure"], strict=True)))
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 0.6, 3.6),
                                 squeeze=False)
        for ax, (judge, dim, unit, measure) in zip(axes[0], panels, strict=True):
            sub = rows[(rows["judge"] == judge) & (rows["dimension"] == dim)
                       & (rows["unit"] == unit)]
            pooled = sub[sub["seed"] == "all"]
            x = np.arange(len(pooled))
            ax.bar(x, pooled["estimate"], color="#8fb3d9", edgecolor="#1f5fa8")
            ok = np.isfinite(pooled["lower"].to_numpy()) & np.isfinite(pooled["upper"].to_numpy())
            ax.errorbar(x[ok], pooled["estimate"][ok],
                        yerr=[(pooled["estimate"] - pooled["lower"])[ok],
                              (pooled["upper"] - pooled["estimate"])[ok]],
                        fmt="none", ecolor="black", capsize=4, lw=1.2)
            for i, variant in enumerate(pooled["variant"]):
                seeds = sub[(sub["variant"] == variant) & (sub["seed"] != "all")]
                ax.plot(np.full(len(seeds), i), seeds["estimate"], "o", color="#c2561a",
                        markersize=4)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(x, pooled["variant"], rotation=30, ha="right")
            ax.set_ylabel(f"{dim.replace('_', ' ')} {measure} (pp)")
            who = unit if unit != "population" else dim.replace("_", " ")
            ax.set_title(f"{who}\n{judge} ({VIEWS[judge]})", fontsize=9)
        fig.suptitle(f"{exp}: vs the un-tuned model (bars: seeds pooled, 95% CI from 3 seeds "
                     f"up; dots: seeds)", fontsize=10)
        fig.tight_layout()
        figures[str(exp)] = fig
    return figures
