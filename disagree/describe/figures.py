"""Figures of the descriptive analysis; each returns ``(figure, the DataFrame behind it)``.

* :func:`plot_conditional_probabilities`: Figure 1, the heatmap of P(high on column | high on
  row) with the counts behind each cell;
* :func:`plot_rating_distribution`: stacked bars of the share of each rating level;
* :func:`plot_group_differences`: model-free differences of each rater group from its
  reference, one panel per dimension.

The ``draw_*`` functions take the frame already computed (so :func:`~disagree.describe.report.
describe` computes each table once). Nothing here shows or closes a figure: save it, then
``plt.close(fig)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from disagree.data.ratings import RatingTable
from disagree.describe.agreement import conditional_probabilities
from disagree.describe.distributions import (
    MEASURES,
    Threshold,
    rating_distribution,
    raw_differences,
)
from disagree.errors import DataError

_LABELS = {"relative_pct": "difference in P(high rating), % of the reference",
           "pp": "difference in P(high rating), percentage points",
           "mean_diff": "difference in mean rating"}


def plot_conditional_probabilities(table: RatingTable,
                                   threshold: Threshold = None) -> tuple[Figure, pd.DataFrame]:
    """Draw Figure 1: P(high on column | high on row) for every pair of dimensions.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    threshold : int or mapping, optional
        Lowest "high" rating (default: 4 on 5 points).

    Returns
    -------
    fig : matplotlib.figure.Figure
    frame : pandas.DataFrame
        :func:`~disagree.describe.agreement.conditional_probabilities`.
    """
    frame = conditional_probabilities(table, threshold)
    return draw_conditional_probabilities(frame), frame


def draw_conditional_probabilities(frame: pd.DataFrame) -> Figure:
    """Draw the heatmap of a :func:`conditional_probabilities` frame."""
    dims = list(dict.fromkeys(frame["given"]))
    grid = frame.pivot(index="given", columns="target", values="p").reindex(
        index=dims, columns=dims)
    counts = frame.set_index(["given", "target"])[["n_both_high", "n_given_high"]]
    size = 1.3 * len(dims) + 2.6
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    cmap = sns.color_palette("mako_r", as_cmap=True)
    sns.heatmap(grid, vmin=0, vmax=1, cmap=cmap, square=True, linewidths=0.6,
                linecolor="white", ax=ax, cbar_kws={"label": "probability", "shrink": 0.8})
    for i, given in enumerate(dims):
        for j, target in enumerate(dims):
            p = grid.iloc[i, j]
            both, high = (int(v) for v in counts.loc[(given, target)])
            colour = "white" if np.isfinite(p) and _dark(cmap(p)) else "black"
            ax.text(j + 0.5, i + 0.44, "–" if np.isnan(p) else f"{p:.2f}", ha="center",
                    va="center", fontsize=12, fontweight="bold", color=colour)
            ax.text(j + 0.5, i + 0.72, f"{both:,}/{high:,}",
                    ha="center", va="center", fontsize=8, color=colour)
    names = [_pretty(d) for d in dims]
    ax.set_xticklabels(names, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(names, rotation=0)
    ax.set_xlabel("high on column (target)\n\nsmall print: (rater, item) pairs high on both / "
                  "high on the row dimension", fontsize=10, linespacing=0.9)
    ax.set_ylabel("high on row (given)")
    ax.set_title("P(high on column | high on row)", pad=12)
    fig.tight_layout()
    return fig


def plot_rating_distribution(table: RatingTable) -> tuple[Figure, pd.DataFrame]:
    """Draw the share of each rating level per dimension as stacked horizontal bars.

    Parameters
    ----------
    table : RatingTable
        The ratings.

    Returns
    -------
    fig : matplotlib.figure.Figure
    frame : pandas.DataFrame
        :func:`~disagree.describe.distributions.rating_distribution`.
    """
    frame = rating_distribution(table)
    return draw_rating_distribution(frame), frame


def draw_rating_distribution(frame: pd.DataFrame) -> Figure:
    """Draw the stacked bars of a :func:`rating_distribution` frame."""
    dims = list(dict.fromkeys(frame["dimension"]))
    shares = frame.pivot(index="dimension", columns="rating", values="share").reindex(dims)
    k_max = shares.shape[1]
    colours = sns.color_palette("RdYlBu_r", k_max)
    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(dims) + 1.6))
    left = np.zeros(len(dims))
    y = np.arange(len(dims))
    for k, colour in zip(shares.columns, colours, strict=True):
        width = shares[k].fillna(0).to_numpy()
        ax.barh(y, width, left=left, color=colour, edgecolor="white", linewidth=0.5,
                label=str(k))
        for yi, x0, w in zip(y, left, width, strict=True):
            if w >= 0.06:
                ax.text(x0 + w / 2, yi, f"{w:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if _dark(colour) else "black")
        left += width
    ax.set_yticks(y, [_pretty(d) for d in dims])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("share of ratings")
    ax.set_title("Rating distribution per dimension")
    ax.legend(title="rating", ncols=k_max, loc="upper center", bbox_to_anchor=(0.5, -0.18),
              frameon=False)
    sns.despine(ax=ax, left=True)
    fig.tight_layout()
    return fig


def plot_group_differences(table: RatingTable, factors: Sequence[str] | None = None,
                           reference: Mapping[str, str] | None = None,
                           measure: str = "relative_pct",
                           threshold: Threshold = None) -> tuple[Figure, pd.DataFrame]:
    """Draw the raw difference of each rater group from its reference, per dimension.

    Parameters
    ----------
    table : RatingTable
        The ratings.
    factors : sequence of str, optional
        Rater attributes (default: every attribute with 2 to 12 levels).
    reference : mapping, optional
        Reference level per factor (default: the most frequent).
    measure : {"relative_pct", "pp", "mean_diff"}
        Which difference to draw.
    threshold : int or mapping, optional
        Lowest "high" rating (default: 4 on 5 points).

    Returns
    -------
    fig : matplotlib.figure.Figure
    frame : pandas.DataFrame
        The rows of :func:`~disagree.describe.distributions.raw_differences` for ``measure``.

    Raises
    ------
    DataError
        For an unknown measure, factor, reference level or threshold.
    """
    _check_measure(measure)
    frame = raw_differences(table, factors, reference, threshold)
    frame = frame[frame["measure"] == measure].reset_index(drop=True)
    return draw_group_differences(frame, measure), frame


def draw_group_differences(frame: pd.DataFrame, measure: str = "relative_pct") -> Figure:
    """Draw one panel per dimension of a :func:`raw_differences` frame (one measure)."""
    _check_measure(measure)
    frame = frame[frame["measure"] == measure]
    dims = list(dict.fromkeys(frame["dimension"]))
    factors = list(dict.fromkeys(frame["factor"]))
    labels = frame["level"] + " vs " + frame["reference"]
    frame = frame.assign(label=labels)
    rows = list(dict.fromkeys(zip(frame["factor"], frame["label"], strict=True)))
    palette = dict(zip(factors, sns.color_palette("tab10", len(factors)), strict=False))
    n = max(len(dims), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 2.4, 0.32 * len(rows) + 1.8),
                             sharey=True, squeeze=False)
    y = {row: i for i, row in enumerate(rows)}
    for ax, dim in zip(axes[0], dims, strict=False):
        part = frame[frame["dimension"] == dim]
        pos = [y[(f, lb)] for f, lb in zip(part["factor"], part["label"], strict=True)]
        ax.barh(pos, part["estimate"].fillna(0), color=[palette[f] for f in part["factor"]],
                height=0.7)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(_pretty(dim), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(range(len(rows)), [f"{f}: {lb}" for f, lb in rows], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].invert_yaxis()
    fig.supxlabel(_LABELS[measure], fontsize=9)
    fig.suptitle("Raw group differences from the reference level (no model)", fontsize=11)
    fig.tight_layout()
    return fig


# --- pieces --------------------------------------------------------------------------------

def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise DataError(f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}")


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


def _dark(colour: object) -> bool:
    r, g, b = to_rgb(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5
