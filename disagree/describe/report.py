"""Write the whole descriptive analysis of a ratings table to a folder.

:func:`describe` computes every table of :mod:`disagree.describe` once, writes each as CSV,
draws each figure as PNG with the CSV behind it, and returns the paths. Every file is written
atomically (temporary file, then rename), so an interrupted run leaves no partial file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from disagree._io import write_atomic, write_table
from disagree.data.ratings import RatingTable
from disagree.describe.agreement import agreement, conditional_probabilities
from disagree.describe.distributions import (
    Threshold,
    factor_levels,
    group_distributions,
    high_thresholds,
    rating_distribution,
    raw_differences,
)
from disagree.describe.figures import (
    draw_conditional_probabilities,
    draw_group_differences,
    draw_rating_distribution,
)

log = logging.getLogger(__name__)

#: Resolution of the PNG figures.
DPI = 120


def describe(table: RatingTable, out_dir: str | os.PathLike[str],
             factors: Sequence[str] | None = None, reference: Mapping[str, str] | None = None,
             threshold: Threshold = None, progress: bool = False) -> dict[str, Path]:
    """Write every descriptive table and figure of ``table`` into ``out_dir``.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    out_dir : path
        Output folder (created if needed); existing files of the same names are replaced.
    factors : sequence of str, optional
        Rater attributes to group by (default: every attribute with 2 to 12 levels).
    reference : mapping, optional
        Reference level per factor (default: the most frequent).
    threshold : int or mapping, optional
        Lowest "high" rating (default: 4 on 5 points).
    progress : bool, default False
        Show a tqdm progress bar over the steps.

    Returns
    -------
    dict of str to pathlib.Path
        File name to path of everything written: ``rating_distribution.csv``,
        ``group_distributions.csv``, ``raw_differences.csv``, ``agreement.csv``,
        ``conditional_probabilities.csv``, and for each figure ``<name>.png`` with
        ``<name>.csv`` (``figure1_conditional``, ``figure_rating_distribution``,
        ``figure_group_differences``; the latter shows ``relative_pct``).

    Raises
    ------
    DataError
        For an unknown factor, reference level or threshold (before anything is written).
    """
    out = Path(out_dir)
    levels = factor_levels(table, factors, reference)
    high_thresholds(table, threshold)  # fail before writing anything
    names = list(levels)
    refs = {f: lv[0] for f, lv in levels.items()}
    steps: list[tuple[str, Callable[[], pd.DataFrame]]] = [
        ("rating_distribution", lambda: rating_distribution(table)),
        ("group_distributions", lambda: group_distributions(table, names, threshold)),
        ("raw_differences", lambda: raw_differences(table, names, refs, threshold)),
        ("agreement", lambda: agreement(table, factors=names)),
        ("conditional_probabilities", lambda: conditional_probabilities(table, threshold)),
    ]
    written: dict[str, Path] = {}
    frames: dict[str, pd.DataFrame] = {}
    bar = tqdm(total=len(steps) + 3, desc="describe", disable=not progress)
    for name, compute in steps:
        frames[name] = compute()
        written[f"{name}.csv"] = write_table(out / f"{name}.csv", frames[name])
        log.info("wrote %s (%d rows)", written[f"{name}.csv"], len(frames[name]))
        bar.update()
    diffs = frames["raw_differences"]
    figures = [
        ("figure1_conditional", frames["conditional_probabilities"],
         draw_conditional_probabilities),
        ("figure_rating_distribution", frames["rating_distribution"], draw_rating_distribution),
        ("figure_group_differences", diffs[diffs["measure"] == "relative_pct"],
         draw_group_differences),
    ]
    for name, frame, draw in figures:
        written.update(_save_figure(out, name, draw(frame), frame.reset_index(drop=True)))
        bar.update()
    bar.close()
    return written


def _save_figure(out: Path, name: str, fig: Figure, frame: pd.DataFrame) -> dict[str, Path]:
    """Write ``<name>.png`` and ``<name>.csv`` atomically and close the figure."""
    try:
        png = write_atomic(out / f"{name}.png",
                           lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)
    csv = write_table(out / f"{name}.csv", frame)
    log.info("wrote %s and %s", png, csv)
    return {f"{name}.png": png, f"{name}.csv": csv}
