"""Figures of the evaluation: Figure 2 and the group alignment heatmap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SURVEY, PREFERENCE, MODEL = "#1f5fa8", "#6a3d9a", "#c2561a"
#: Figure 2's sources, left to right: marker, colour and tick label.
SOURCES = [("survey", "^", SURVEY, "survey\nratings"),
           ("preference", "s", PREFERENCE, "learned\npreferences"),
           ("model", "o", MODEL, "trained\nmodels")]


def plot_figure2(frame: pd.DataFrame) -> plt.Figure:
    """Per comparison the survey (triangle), preference (square) and model (circle) rows.

    Parameters
    ----------
    frame : DataFrame
        ``figure2.csv``: ``comparison, source, estimate, lower, upper, seeds``. A row without
        an interval (NaN bounds: fewer than three training seeds) is drawn as a hollow marker.
        The interval is drawn from ``lower`` to ``upper`` and the marker at ``estimate``, also
        where the estimate falls outside it (a percentile interval of lumpy replicates, such
        as a difference of judge scores over a few prompts, need not hold their mean).

    Returns
    -------
    matplotlib.figure.Figure
    """
    comparisons = list(dict.fromkeys(frame["comparison"]))
    fig, axes = plt.subplots(1, len(comparisons), figsize=(3.5 * len(comparisons) + 0.6, 3.8),
                             squeeze=False)
    for ax, comparison in zip(axes[0], comparisons, strict=True):
        rows = frame[frame["comparison"] == comparison].set_index("source")
        for x, (source, marker, colour, _) in enumerate(SOURCES):
            if source not in rows.index:
                continue
            r = rows.loc[source]
            bounded = np.isfinite(r["lower"]) and np.isfinite(r["upper"])
            if bounded:  # the interval as it is: a percentile interval need not hold the mean
                ax.errorbar([x], [(r["lower"] + r["upper"]) / 2], fmt="none", ecolor=colour,
                            yerr=[[(r["upper"] - r["lower"]) / 2]], capsize=5, lw=1.6)
            ax.plot([x], [r["estimate"]], marker, color=colour, markersize=9,
                    markerfacecolor=colour if bounded else "white")
            note = "" if bounded else "\n(no interval)"
            ax.annotate(f"{r['estimate']:+.1f}{note}", (x, r["estimate"]),
                        textcoords="offset points", xytext=(9, 0), ha="left", va="center",
                        fontsize=8, color=colour)
        ax.axhline(0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(range(len(SOURCES)), [s[3] for s in SOURCES], fontsize=8)
        ax.set_xlim(-0.6, len(SOURCES) - 0.3)
        ax.set_title(comparison, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("difference, first minus second\n(percentage points)")
    seeds = int(frame["seeds"].max()) if "seeds" in frame else 0
    fig.text(0.5, 0.005, "Survey ratings: the fit's difference in the probability of a high "
             "rating (4-5) over every response, 95% credible interval. Learned preferences: "
             "the judge's score of each group's posterior favourite response per held-out "
             "prompt (what a model that learned the group's preferences perfectly would "
             "score), 95% interval over posterior draws and prompts. Trained models: the "
             "judge's scores of what the two groups' models choose, 95% interval over "
             f"{seeds} training seed(s) and prompts (none with fewer than 3 seeds).",
             ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def plot_alignment(table: pd.DataFrame, dimension: str,
                   metric: str = "weighted_accuracy") -> plt.Figure:
    """Heatmap of one dimension's alignment matrix: models (rows) by judging groups (columns).

    Parameters
    ----------
    table : DataFrame
        ``alignment.csv``.
    dimension : str
    metric : {"weighted_accuracy", "log_loss"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = table[(table["dimension"] == dimension) & (table["metric"] == metric)]
    models = list(dict.fromkeys(rows["model_group"]))
    judges = list(dict.fromkeys(rows["judge_group"]))
    if "view" in rows:  # alignment.csv also has the contested views
        rows = rows[rows["view"] == "all"]
    grid = rows.pivot(index="model_group", columns="judge_group", values="estimate")
    values = grid.loc[models, judges].to_numpy()
    lower = rows.pivot(index="model_group", columns="judge_group", values="lower")
    upper = rows.pivot(index="model_group", columns="judge_group", values="upper")
    fig, ax = plt.subplots(figsize=(1.9 * len(judges) + 2.6, 0.62 * len(models) + 1.6))
    cmap = "RdYlGn" if metric == "weighted_accuracy" else "RdYlGn_r"
    spread = np.nanmax(np.abs(values - 0.5)) if metric == "weighted_accuracy" else None
    kwargs = {"vmin": 0.5 - spread, "vmax": 0.5 + spread} if spread else {}
    image = ax.imshow(values, cmap=cmap, aspect="auto", **kwargs)
    for i, m in enumerate(models):
        for j, g in enumerate(judges):
            ax.text(j, i, f"{values[i, j]:.3f}\n[{lower.loc[m, g]:.3f}, {upper.loc[m, g]:.3f}]",
                    ha="center", va="center", fontsize=7.5)
    ax.set_xticks(range(len(judges)), [f"{g}'s\npreferences" for g in judges], fontsize=8)
    ax.set_yticks(range(len(models)), [f"model of {m}" if m != "base" else "un-tuned base"
                                       for m in models], fontsize=8)
    label = "confidence-weighted accuracy" if metric == "weighted_accuracy" else "log loss"
    fig.colorbar(image, ax=ax, label=label, shrink=0.85)
    ax.set_title(f"Group alignment, {dimension.replace('_', ' ')}: {label} on held-out pairs",
                 fontsize=9)
    fig.tight_layout()
    return fig
