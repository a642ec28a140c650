"""Files of the per-item group disagreement: the items table, the pairs table and the plot."""

from __future__ import annotations

import os
from pathlib import Path

from disagree._io import write_figure, write_table
from disagree.labels.disagreement import Prompts, level_probabilities, plot_disagreement
from disagree.model.fitting import Fit


def write_disagreement(fit: Fit | str | os.PathLike[str], factor: str, dimension: str,
                       out: str | os.PathLike[str], *, plot: str | os.PathLike[str] | None = None,
                       pairs: str | os.PathLike[str] | None = None,
                       prompts: Prompts | None = None, sort: str = "difference",
                       draws: int | None = None, top: int = 20) -> list[Path]:
    """Write where the levels of ``factor`` rate the items of ``dimension`` differently.

    Parameters
    ----------
    fit : Fit or path
        A fit (with interactions on ``factor`` for groups to order items differently).
    factor, dimension : str
        Whose levels, on which dimension.
    out : path
        The items table (CSV, TSV or Parquet; see
        :func:`disagree.labels.disagreement.group_disagreement`).
    plot : path, optional
        The plot of the ``top`` items (PNG, PDF or SVG).
    pairs : path, optional
        The table of pairs of responses to one prompt (needs ``prompts``).
    prompts : RatingTable, mapping or DataFrame, optional
        The items' prompts (the fit does not store them).
    sort : {"difference", "order"}
        Rank items by the largest difference to the reference, or by the probability that
        the groups order a pair of its prompt's responses differently.
    draws : int, optional
        Use this many evenly spaced posterior draws.
    top : int
        Items in the plot.

    Returns
    -------
    list of Path
        The files written.
    """
    probs = level_probabilities(fit, factor, dimension, draws=draws)
    table = probs.item_table(prompts=prompts, sort=sort)
    paths = [write_table(out, table)]
    if pairs is not None:
        paths.append(write_table(pairs, probs.pair_table(prompts)))
    if plot is not None:
        paths.append(write_figure(plot, plot_disagreement(table, top=top)))
    return paths
