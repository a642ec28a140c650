"""The estimand table: the headline comparisons under every definition, side by side.

"Male raters find the responses 18% less toxic" rests on a definition: the percent difference in
P(rating >= 4) for a new rater of each group, averaged over the items and the sample's mix of
the other attributes (:data:`~disagree.model.contrasts.HEADLINE_ESTIMAND`). The same coefficient
reads as a different number under another definition, so the table puts, for each headline
comparison, these next to each other with their 95% intervals (:func:`definitions`):

* ``relative_pct`` at every threshold 2..K, for a new rater;
* ``relative_pct`` at the headline threshold, for a typical rater (rater effect 0);
* ``pp`` (percentage points) at the headline threshold, for a new rater;
* ``odds_ratio`` (the exponentiated coefficient, the same for every rater and threshold);
* ``mean_rating`` (difference in expected rating, scale points), for a new rater.

The headline comparisons (:func:`headline_comparisons`) are the paper's three where the fit has
them with the paper's reference levels (toxicity male vs female, emotional awareness
conservative vs liberal and Black vs White), else every contrast of the fit. Every entry is
computed from the same draws and by the same code as :meth:`Fit.contrasts`
(:func:`~disagree.model.contrasts.estimand_draws`), so the table's ``relative_pct`` for a new
rater at the headline threshold is the contrasts table's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from disagree.data.scale import high_threshold
from disagree.data.simulate import PAPER_TARGETS, REFERENCE
from disagree.errors import ModelError
from disagree.model.contrasts import estimand_draws, estimand_text

COLUMNS = ["dimension", "factor", "level", "reference", "definition", "measure", "rater",
           "threshold", "estimate", "lower", "upper"]


def headline_comparisons(spec: Any) -> list[tuple[str, str, str]]:
    """Return ``(dimension, factor, level)`` of the fit's headline comparisons (module docstring).

    Parameters
    ----------
    spec : ModelSpec
        The fit's spec.

    Returns
    -------
    list of tuple
        The paper's comparisons (``disagree.data.simulate.PAPER_TARGETS``) that the fit has,
        each against the paper's reference level; where it has none of them, every
        non-reference level of every factor on every dimension.
    """
    paper = []
    for key in PAPER_TARGETS:
        dim, factor, level = key.split("|")
        levels = spec.levels.get(factor, [])
        if dim in spec.dimensions and level in levels[1:] and levels[0] == REFERENCE[factor]:
            paper.append((dim, factor, level))
    if paper:
        return paper
    return [(d, f, lv) for d in spec.dimensions for f, lvs in spec.levels.items()
            for lv in lvs[1:]]


def definitions(scale: int, threshold: int | None = None) -> list[tuple[str, str, int | None]]:
    """Return ``(measure, rater, threshold)`` of each column of the table, in order.

    Parameters
    ----------
    scale : int
        Number of rating categories K.
    threshold : int, optional
        The headline threshold (default 4 on 5 points).
    """
    threshold = high_threshold(scale) if threshold is None else int(threshold)
    return ([("relative_pct", "new", t) for t in range(2, scale + 1)]
            + [("relative_pct", "typical", threshold), ("pp", "new", threshold),
               ("odds_ratio", "new", None), ("mean_rating", "new", None)])


def definition_label(measure: str, rater: str, threshold: int | None) -> str:
    """Return the short name of a definition, e.g. ``relative_pct P(>=4) new rater``."""
    at = "" if threshold is None else f" P(>={threshold})"
    whom = "" if measure == "odds_ratio" else f" {rater} rater"
    return f"{measure}{at}{whom}"


def estimand_table(fit: Any, comparisons: Sequence[tuple[str, str, str]] | None = None,
                   threshold: int | None = None, ci: float = 0.95,
                   population: pd.DataFrame | str | os.PathLike[str] | None = None
                   ) -> pd.DataFrame:
    """Every definition of :func:`definitions` for each headline comparison, with intervals.

    Parameters
    ----------
    fit : Fit
        A fitted or loaded model.
    comparisons : sequence of (dimension, factor, level), optional
        Default :func:`headline_comparisons`.
    threshold : int, optional
        The headline threshold (default 4 on 5 points).
    ci : float
        Probability mass of the equal-tailed intervals.
    population : DataFrame or path, optional
        Target population (see :func:`~disagree.model.contrasts.contrasts_table`).

    Returns
    -------
    DataFrame
        Tidy, columns :data:`COLUMNS` (``definition`` as :func:`definition_label`,
        ``threshold`` empty for ``odds_ratio`` and ``mean_rating``); rows by comparison, then
        definition; ``attrs["estimand"]`` is the headline's estimand in a sentence.
    """
    spec = fit.spec
    comparisons = headline_comparisons(spec) if comparisons is None else list(comparisons)
    threshold = high_threshold(spec.scale) if threshold is None else int(threshold)
    for dim, factor, level in comparisons:
        if factor not in spec.levels or level not in spec.levels[factor][1:]:
            raise ModelError(f"comparison ({dim}, {factor}, {level}): {level!r} is not a "
                             f"non-reference level of a factor of the fit")
    defs = definitions(spec.scale, threshold)
    runs = {(rater, threshold if t is None else t) for _, rater, t in defs}
    draws: dict[tuple, dict] = {}  # (dimension, rater, threshold) -> estimand_draws
    for dim in dict.fromkeys(d for d, _, _ in comparisons):
        factors = list(dict.fromkeys(f for d, f, _ in comparisons if d == dim))
        for rater, t in sorted(runs):
            draws[(dim, rater, t)] = estimand_draws(fit, dim, t, rater, population, factors)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    rows = []
    for dim, factor, level in comparisons:
        for measure, rater, t in defs:
            values = draws[(dim, rater, threshold if t is None else t)][(factor, level)][measure]
            rows.append({"dimension": dim, "factor": factor, "level": level,
                         "reference": spec.levels[factor][0],
                         "definition": definition_label(measure, rater, t), "measure": measure,
                         "rater": rater, "threshold": t, "estimate": float(np.mean(values)),
                         "lower": float(np.quantile(values, lo_q)),
                         "upper": float(np.quantile(values, hi_q))})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["threshold"] = table["threshold"].astype("Int64")
    table.attrs["estimand"] = estimand_text(spec.scale, threshold, "new", population is not None)
    return table


def format_estimand_table(table: pd.DataFrame, digits: int = 1) -> str:
    """Format the table side by side in Markdown: a row a comparison, a column a definition.

    Parameters
    ----------
    table : DataFrame
        An :func:`estimand_table`.
    digits : int
        Decimals (``odds_ratio`` and ``mean_rating`` get two more).

    Returns
    -------
    str
        A Markdown table whose cells are ``estimate [lower, upper]``.
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ModelError(f"not an estimand table: no column {', '.join(missing)}")
    defs = list(dict.fromkeys(table["definition"]))
    header = ["comparison", *defs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    keys = ["dimension", "factor", "level", "reference"]
    for (dim, factor, level, ref), sub in table.groupby(keys, sort=False):
        cells = {}
        for r in sub.itertuples():
            d = digits + (2 if r.measure in ("odds_ratio", "mean_rating") else 0)
            cells[r.definition] = f"{r.estimate:.{d}f} [{r.lower:.{d}f}, {r.upper:.{d}f}]"
        lines.append("| " + " | ".join([f"{dim} {factor}: {level} vs {ref}",
                                        *(cells.get(d, "") for d in defs)]) + " |")
    return "\n".join(lines)
