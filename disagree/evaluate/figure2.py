"""Figure 2: models trained on one group's preferences, next to what the survey says.

:func:`figure2` runs a study from a :class:`~disagree.evaluate.config.Figure2Config`:

1. for every comparison ``first - second`` on a dimension, pairs restricted to each of the two
   groups (``soft`` by default, weighted by that group's posterior preferences), and one model
   per group and seed trained from the same base model (``model: tiny`` is built once for the
   study), settings and prompt split; plus, with ``alignment: true`` and
   ``population_models: true``, one population model per dimension and seed (a row of the
   alignment matrix);
2. every model judged on the held-out prompts (:mod:`disagree.evaluate.judges`);
3. ``figure2.csv``: per comparison three estimates of ``first - second`` in percentage points,
   on the same held-out prompts and, where a judge is involved, with the same judge:

   ``survey``
       the fitted model's difference of the two groups' probability of a high rating over
       every response (how much higher one group *rates*), 95% credible interval;
   ``preference``
       what models that had learned each group's posterior preferences perfectly would score:
       per posterior draw and held-out prompt, the judge's score of each group's favourite
       response (highest, or for a lower-is-better dimension lowest, group probability of a
       high rating), the two groups' difference averaged over the prompts; 95% interval over
       posterior draws and prompts (a draw and a resample of the prompts per replicate). It
       moves only where the groups disagree about *which* response is best, so it is the
       ceiling the models aim at, and it can differ from ``survey`` in size and even sign.
       Averaged over the draws, it weights each response by the posterior probability that it
       is the group's favourite;
   ``model``
       the difference of the two groups' trained models' mean judge scores (the config's
       ``column``: by default, with the posterior judge, each response weighted by the trained
       model's probability that it is the best, the softmax of its implicit rewards; with a
       generating judge, the mean over sampled completions), with an interval
       over training seeds and prompts (:mod:`disagree.evaluate.bootstrap`; none with fewer
       than three seeds, and ``seeds`` says how many it rests on);
4. ``alignment.csv`` and ``advantage.csv``: the group alignment matrix and each comparison's
   diagonal advantage (:mod:`disagree.evaluate.alignment`), and the figures.

Training runs live in ``OUT/runs/<group>-<dimension>-seed<seed>``: a finished run is never
trained again, an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import write_figure, write_json, write_table
from disagree.data import RatingTable, load_ratings
from disagree.data.groups import format_group
from disagree.data.simulate import load_default_survey
from disagree.errors import EvaluateError
from disagree.evaluate.alignment import (
    alignment_matrix,
    contested_weights,
    diagonal_advantage,
    group_preferences,
    policy_margins,
)
from disagree.evaluate.bootstrap import bootstrap_difference, interval, resample_counts
from disagree.evaluate.config import Comparison, Figure2Config, load_figure2_config
from disagree.evaluate.heldout import held_out_items, ratings_of_fit, response_pairs
from disagree.evaluate.judges import make_judge
from disagree.evaluate.plots import plot_alignment, plot_figure2
from disagree.evaluate.policy import Policy
from disagree.labels import level_probabilities
from disagree.model import Fit, contrast_draws, load_fit
from disagree.pairs import BETTER

#: Columns of figure2.csv.
COLUMNS = ["comparison", "source", "estimate", "lower", "upper", "n", "factor", "first",
           "second", "dimension", "judge", "seeds"]
Say = Callable[[str], None]


@dataclass
class Figure2Result:
    """What :func:`figure2` wrote: the folder and the tables."""

    out: Path
    figure2: pd.DataFrame
    scores: pd.DataFrame
    alignment: pd.DataFrame | None
    advantage: pd.DataFrame | None

    def summary(self) -> str:
        """Figure 2's rows as text, and why a model row has no interval when it has none."""
        text = (self.figure2[["comparison", "source", "estimate", "lower", "upper", "n"]]
                .round(2).to_string(index=False))
        if self.figure2["lower"].isna().any():
            seeds = int(self.figure2["seeds"].iloc[0])
            text += (f"\n(no interval on the model rows: they rest on {seeds} training seed(s); "
                     f"an interval that counts training noise needs at least 3)")
        return text


def figure2(config: Figure2Config | str | os.PathLike[str] | Mapping[str, Any], *,
            say: Say = print) -> Figure2Result:
    """Run a Figure 2 study (see the module docstring) and write its tables and figures.

    Parameters
    ----------
    config : Figure2Config, path or mapping
        The study (see :mod:`disagree.evaluate.config`).
    say : callable
        Receives one line per step.

    Returns
    -------
    Figure2Result
    """
    cfg = config if isinstance(config, Figure2Config) else load_figure2_config(config)
    out = cfg.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    table, ratings = ratings_of_fit(cfg.ratings, cfg.fit, out)
    cfg = cfg.model_copy(update={"ratings": ratings})
    fit = load_fit(cfg.fit)
    check_groups(fit, cfg.comparisons)
    items = held_out_items(table, cfg.split, cfg.split_seed)
    say(f"held out: {items['prompt_id'].nunique()} prompts, {len(items)} responses")
    runs = train_models(cfg, out / "runs", say)
    judges: dict[str, Any] = {}
    scores = score_models(cfg, fit, runs, items, say, judges)
    write_table(out / "scores.csv", scores)
    frame = pd.concat([survey_side(fit, cfg.comparisons),
                       preference_side(fit, cfg.comparisons, items, judges, cfg.bootstrap.n,
                                       cfg.bootstrap.seed),
                       model_side(scores, cfg.comparisons, cfg.bootstrap.n, cfg.bootstrap.seed,
                                  cfg.score_column)])
    frame = frame.assign(judge=cfg.judge.name, seeds=len(cfg.seeds))[COLUMNS]
    write_table(out / "figure2.csv", frame)
    for ext in ("png", "pdf"):
        write_figure(out / f"figure2.{ext}", plot_figure2(frame))
    alignment = advantage = None
    if cfg.alignment:
        alignment, advantage = group_alignment(cfg, fit, runs, items, say)
        write_table(out / "alignment.csv", alignment)
        write_table(out / "advantage.csv", advantage)
        for dim in alignment["dimension"].unique():
            write_figure(out / f"alignment-{dim}.png", plot_alignment(alignment, dim))
    write_json(out / "study.json", {"config": cfg.model_dump(mode="json"),
                                    "runs": {k: [str(p) for p in v] for k, v in runs.items()}})
    say(f"wrote {out}/figure2.csv, figure2.png, figure2.pdf"
        + (", alignment.csv, advantage.csv" if cfg.alignment else ""))
    return Figure2Result(out, frame.reset_index(drop=True), scores, alignment, advantage)


def check_groups(fit: Fit, comparisons: tuple[Comparison, ...]) -> None:
    """Raise :class:`EvaluateError` for a factor, level or dimension the fit does not have."""
    levels, dims = fit.spec.levels, fit.spec.dimensions
    for i, c in enumerate(comparisons):
        if c.dimension not in dims:
            raise EvaluateError(f"comparisons[{i}]: dimension {c.dimension!r} is not in the "
                                f"fit ({', '.join(dims)})")
        if c.factor not in levels:
            raise EvaluateError(f"comparisons[{i}]: factor {c.factor!r} is not in the fit "
                                f"({', '.join(levels)})")
        for which in ("first", "second"):
            if getattr(c, which) not in levels[c.factor]:
                raise EvaluateError(f"comparisons[{i}].{which}: {getattr(c, which)!r} is not a "
                                    f"level of {c.factor} ({', '.join(levels[c.factor])})")


def model_groups(comparisons: tuple[Comparison, ...]) -> dict[str, list[dict[str, str] | None]]:
    """Per dimension, the groups that get models: each comparison's two, then the population."""
    groups: dict[str, list[dict[str, str] | None]] = {}
    for c in comparisons:
        for which in ("first", "second"):
            if c.group(which) not in groups.setdefault(c.dimension, []):
                groups[c.dimension].append(c.group(which))
    for dim in groups:
        groups[dim].append(None)
    return groups


def run_name(group: Mapping[str, str] | None, dimension: str, seed: int) -> str:
    """Folder name of a run: ``politics-liberal-emotional_awareness-seed0``."""
    label = "-".join(f"{f}-{v}" for f, v in group.items()) if group else "population"
    return f"{label}-{dimension}-seed{seed}".replace(" ", "_").replace("/", "_")


def train_models(cfg: Figure2Config, runs_dir: Path, say: Say) -> dict[str, list[Path]]:
    """Train (or find finished) every group's and the population's model for every seed.

    The population's models are trained only for the alignment matrix (``cfg.alignment`` and
    ``cfg.population_models``).

    With ``cfg.workers`` > 1 the runs go to that many processes at once; every run has its own
    seed and thread count, so the models are the same bytes either way. The processes are
    spawned, so a script that calls this needs the ``if __name__ == "__main__":`` guard.
    """
    jobs = [(dim, g, s) for dim, groups in model_groups(cfg.comparisons).items()
            for g in groups if g is not None or (cfg.alignment and cfg.population_models)
            for s in cfg.seeds]
    base = shared_base(cfg, runs_dir)
    configs = [train_config(cfg, runs_dir, *job) | base for job in jobs]
    labels = [f"{format_group(g)}, {dim}, seed {s}" for dim, g, s in jobs]
    dirs: list[Path] = []
    if cfg.workers == 1:
        for k, (label, config) in enumerate(zip(labels, configs, strict=True), 1):
            say(f"[{k}/{len(jobs)}] {label}")
            dirs.append(train_run(config))
    else:
        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=context) as pool:
            futures = {pool.submit(train_run, config): label
                       for config, label in zip(configs, labels, strict=True)}
            for k, future in enumerate(as_completed(futures), 1):
                future.result()  # a failed run stops the study here, with its error
                say(f"[{k}/{len(jobs)}] {futures[future]}")
            dirs = [future.result() for future in futures]
    runs: dict[str, list[Path]] = {}
    for (dim, group, _), run_dir in zip(jobs, dirs, strict=True):
        runs.setdefault(key(group, dim), []).append(run_dir)
    return runs


def train_config(cfg: Figure2Config, runs_dir: Path, dim: str,
                 group: Mapping[str, str] | None, seed: int) -> dict[str, Any]:
    """Return the ``disagree train`` config of one group's (or the population's) model and seed."""
    pairs: dict[str, Any] = {"ratings": cfg.ratings, "strategy": cfg.strategy, "dimension": dim,
                             "split": list(cfg.split), "split_seed": cfg.split_seed}
    if cfg.strategy == "soft":
        pairs["fit"] = str(cfg.fit)
    if group:
        pairs["group"] = dict(group)
    return {**cfg.train, "output_dir": str(runs_dir / run_name(group, dim, seed)), "seed": seed,
            "pairs": pairs}


def shared_base(cfg: Figure2Config, runs_dir: Path) -> dict[str, Any]:
    """``model: tiny`` is built once, in ``runs/base-model`` (seed ``split_seed``), for all runs.

    As with a pretrained model, every group's and seed's run then starts from the same weights
    and the seeds differ only in training (data order); without this each seed would build its
    own randomly initialised base. Returns the ``train`` keys to override (none otherwise).
    """
    if cfg.train.get("model") != "tiny":
        return {}
    from disagree.train.tiny import build_tiny_model

    folder = build_tiny_model(runs_dir / "base-model", seed=cfg.split_seed,
                              **cfg.train.get("tiny", {}))
    return {"model": str(folder), "tiny": {}}


def train_run(config: dict[str, Any]) -> Path:
    """Train one run in a worker process and return its folder."""
    from disagree.train import train

    return train(config, progress=False).run_dir


def key(group: Mapping[str, str] | None, dimension: str) -> str:
    """Key of a model in ``runs``: ``politics=liberal|emotional_awareness``."""
    return f"{format_group(group)}|{dimension}"


def score_models(cfg: Figure2Config, fit: Fit, runs: dict[str, list[Path]],
                 items: pd.DataFrame, say: Say, judges: dict[str, Any] | None = None
                 ) -> pd.DataFrame:
    """Judge every group model of every comparison on the held-out prompts (one row each)."""
    frames = []
    judges = {} if judges is None else judges
    for c in cfg.comparisons:
        if c.dimension not in judges:
            judges[c.dimension] = build_judge(cfg, fit, c.dimension)
        for which in ("first", "second"):
            group = c.group(which)
            for seed, run_dir in zip(cfg.seeds, runs[key(group, c.dimension)], strict=True):
                scores = judges[c.dimension].score(Policy.from_run(run_dir), items)
                frames.append(scores.assign(comparison=c.label, side=which,
                                            model_group=format_group(group), seed=seed))
    say(f"judged {len(frames)} models ({cfg.judge.name})")
    return pd.concat(frames, ignore_index=True)


def build_judge(cfg: Figure2Config, fit: Fit, dimension: str) -> Any:
    """Build the judge of ``dimension`` (a panel judge's scorer is trained here if needed)."""
    options = cfg.judge.model_dump(exclude_none=True, exclude={"name"})
    if cfg.judge.name == "posterior":
        return make_judge("posterior", fit=fit, dimension=dimension, **options)
    if cfg.judge.name == "panel" and not isinstance(options.get("scorer"), str):
        from disagree.panel import RatingPanelScorer, split_items

        table = load_table(cfg.ratings)
        train_items, _ = split_items(table, cfg.split, cfg.split_seed)
        options["scorer"] = RatingPanelScorer(**options.get("scorer", {})).fit(table,
                                                                               train_items)
    return make_judge(cfg.judge.name, dimension=dimension, **options)


def survey_side(fit: Fit, comparisons: tuple[Comparison, ...], ci: float = 0.95
                ) -> pd.DataFrame:
    """Compute the fit's ``first - second`` difference in the probability of a high rating.

    Percentage points, posterior mean and equal-tailed ``ci`` interval; ``n`` is the number of
    the fit's raters in the two groups.
    """
    raters = fit.raters
    rows = []
    for c in comparisons:
        draws = contrast_draws(fit, c.dimension, c.factor)
        diff = draws[c.first] - draws[c.second]
        rows.append({"comparison": c.label, "source": "survey", "estimate": float(diff.mean()),
                     "lower": float(np.quantile(diff, (1 - ci) / 2)),
                     "upper": float(np.quantile(diff, (1 + ci) / 2)),
                     "n": int(raters[c.factor].isin([c.first, c.second]).sum()),
                     "factor": c.factor, "first": c.first, "second": c.second,
                     "dimension": c.dimension})
    return pd.DataFrame(rows)


def preference_side(fit: Fit, comparisons: tuple[Comparison, ...], items: pd.DataFrame,
                    judges: Mapping[str, Any], n_boot: int = 2000, seed: int = 0,
                    draws: int | None = 1000, ci: float = 0.95) -> pd.DataFrame:
    """Score what models that learned each group's posterior preferences perfectly would.

    Per posterior draw and held-out prompt, each group's favourite response is the one with
    the highest group probability of a high rating (lowest where lower is better,
    :data:`disagree.pairs.BETTER`); the judge scores it
    (:meth:`~disagree.evaluate.judges.Judge.score_items`, the same judge as the models'), and
    the row is the mean over draws and prompts of ``first - second``.

    Parameters
    ----------
    fit : Fit
    comparisons : tuple of Comparison
    items : DataFrame
        The held-out responses (:func:`disagree.evaluate.heldout.held_out_items`).
    judges : mapping
        Dimension -> judge.
    n_boot, seed
        Replicates of the interval (each a posterior draw and a resample of the prompts) and
        their seed.
    draws : int, optional
        Posterior draws used, evenly spaced (default 1000; None: all).
    ci : float

    Returns
    -------
    DataFrame
        One ``preference`` row per comparison; ``n`` is the number of held-out prompts.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for c in comparisons:
        probs = level_probabilities(fit, c.factor, c.dimension, [c.first, c.second],
                                    draws=draws, reference=c.first)
        column = pd.Series(range(len(probs.item_ids)), index=probs.item_ids)
        rated = items[items["item_id"].isin(probs.item_ids)]  # rated on this dimension
        judged = pd.Series(judges[c.dimension].score_items(rated), index=rated["item_id"])
        best = np.argmin if BETTER.get(c.dimension, "higher") == "lower" else np.argmax
        sides = [probs.draws[:, probs.levels.index(g)] for g in (c.first, c.second)]
        diffs = []
        for _, group in rated.groupby("prompt_id", sort=True):
            idx = column.loc[group["item_id"]].to_numpy()
            score = judged.loc[group["item_id"]].to_numpy()
            fav = [best(side[:, idx], axis=1) for side in sides]
            diffs.append(score[fav[0]] - score[fav[1]])
        diffs = np.column_stack(diffs)  # draws x prompts
        pick = rng.integers(0, len(diffs), n_boot)
        weights = resample_counts(diffs.shape[1], n_boot, rng) / diffs.shape[1]
        iv = interval(float(diffs.mean()), np.einsum("bp,bp->b", diffs[pick], weights), ci)
        rows.append({"comparison": c.label, "source": "preference", "estimate": iv.estimate,
                     "lower": iv.lower, "upper": iv.upper, "n": diffs.shape[1],
                     "factor": c.factor, "first": c.first, "second": c.second,
                     "dimension": c.dimension})
    return pd.DataFrame(rows)


def model_side(scores: pd.DataFrame, comparisons: tuple[Comparison, ...], n_boot: int = 2000,
               seed: int = 0, column: str = "score") -> pd.DataFrame:
    """Difference of the two groups' models' mean judge scores, over seeds and prompts.

    The interval resamples training seeds (paired by index across the two groups) and prompts
    (:func:`disagree.evaluate.bootstrap.bootstrap_difference`); it is NaN with fewer than
    three seeds.

    Parameters
    ----------
    scores : DataFrame
        ``comparison, side (first|second), seed, prompt_id`` and ``column``.
    comparisons : tuple of Comparison
    n_boot, seed
        Bootstrap replicates and seed.
    column : str
        The score column.
    """
    rows = []
    for c in comparisons:
        sides = [scores[(scores["comparison"] == c.label) & (scores["side"] == s)]
                 .pivot_table(index="seed", columns="prompt_id", values=column)
                 for s in ("first", "second")]
        iv = bootstrap_difference(sides[0].to_numpy(), sides[1][sides[0].columns].to_numpy(),
                                  n_boot, seed)
        rows.append({"comparison": c.label, "source": "model", "estimate": iv.estimate,
                     "lower": iv.lower, "upper": iv.upper, "n": iv.n, "factor": c.factor,
                     "first": c.first, "second": c.second, "dimension": c.dimension})
    return pd.DataFrame(rows)


def group_alignment(cfg: Figure2Config, fit: Fit, runs: dict[str, list[Path]],
                    items: pd.DataFrame, say: Say) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each dimension's alignment matrix and each comparison's diagonal advantage.

    Both on every held-out pair (view ``all``) and on the pairs the comparison's two groups
    contest (view ``contested: <comparison>``, see :func:`contested_weights`).
    """
    pairs = response_pairs(items)
    n_prompts = pairs["prompt_id"].nunique()
    tables, advantages = [], []
    boot = (cfg.bootstrap.n, cfg.bootstrap.seed)
    for dim, groups in model_groups(cfg.comparisons).items():
        judges = {format_group(g): g for g in groups}
        prefs = group_preferences(fit, pairs, dim, judges)
        margins = {format_group(g): [policy_margins(Policy.from_run(r), items, pairs)
                                     for r in runs[key(g, dim)]]
                   for g in groups if key(g, dim) in runs}  # the population's: if trained
        margins["base"] = [np.zeros(len(pairs))]
        table, reps = alignment_matrix(prefs, margins, list(judges), dim, *boot)
        tables.append(table)
        for c in cfg.comparisons:
            if c.dimension != dim:
                continue
            first, second = format_group(c.group("first")), format_group(c.group("second"))
            view = f"contested: {c.label}"
            contested, creps = alignment_matrix(
                prefs, margins, list(judges), dim, *boot, view=view,
                pair_weights=contested_weights(prefs, first, second))
            tables.append(contested)
            for v, r in (("all", reps), (view, creps)):
                adv = diagonal_advantage(r, first, second, dim, n_prompts, view=v)
                advantages.append(adv.assign(comparison=c.label))
        say(f"alignment matrix, {dim}: {len(margins)} models x {len(judges)} groups, "
            f"{len(pairs)} pairs")
    return pd.concat(tables, ignore_index=True), pd.concat(advantages, ignore_index=True)


def load_table(ratings: str) -> RatingTable:
    """Load the bundled survey (``default``) or a ratings file."""
    return load_default_survey() if ratings == "default" else load_ratings(ratings)
