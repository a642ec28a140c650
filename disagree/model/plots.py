"""Figures of a fit: contrast forest plot, posterior predictive checks, trace/rank plots.

Every function returns ``(matplotlib Figure, the DataFrame behind it)``.
"""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from disagree.errors import ModelError

_LABELS = {"relative_pct": "% difference in P(high rating)", "pp": "percentage points",
           "log_odds": "log-odds", "mean_diff": "difference in mean rating",
           "mean_rating": "difference in expected rating (scale points)",
           "odds_ratio": "odds ratio"}


def plot_contrasts(contrasts: pd.DataFrame, measure: str = "relative_pct", rater: str = "new"
                   ) -> tuple[plt.Figure, pd.DataFrame]:
    """Forest plot of the contrasts of one measure (and rater definition), a panel a dimension."""
    keep = contrasts["measure"] == measure
    if "rater" in contrasts and (contrasts["rater"] == rater).any():
        keep &= contrasts["rater"] == rater
    frame = contrasts[keep].reset_index(drop=True)
    if frame.empty:
        raise ModelError(f"no contrasts with measure {measure!r}; measures are "
                         f"{', '.join(pd.unique(contrasts['measure']))}")
    dims = list(pd.unique(frame["dimension"]))
    n_rows = frame.groupby("dimension").size().max()
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 0.35 * n_rows + 1.6),
                             sharey=True, squeeze=False)
    for ax, dim in zip(axes[0], dims, strict=True):
        sub = frame[frame["dimension"] == dim].iloc[::-1]
        y = np.arange(len(sub))
        null = 1.0 if measure == "odds_ratio" else 0.0
        excludes_zero = (sub["lower"] > null) | (sub["upper"] < null)
        colors = np.where(excludes_zero, "#b2182b", "#555555")
        ax.errorbar(sub["estimate"], y, xerr=[sub["estimate"] - sub["lower"],
                                              sub["upper"] - sub["estimate"]],
                    fmt="none", ecolor=colors, elinewidth=1.6)
        ax.scatter(sub["estimate"], y, c=colors, zorder=3, s=22)
        ax.axvline(null, color="black", lw=0.8)
        ax.set_yticks(y, [f"{f}: {lv} vs {r}" for f, lv, r in
                          zip(sub["factor"], sub["level"], sub["reference"], strict=True)])
        ax.set_title(dim.replace("_", " "))
        ax.set_xlabel(_LABELS.get(measure, measure))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Demographic contrasts, posterior mean and 95% interval "
                 "(red: interval excludes 0)", fontsize=10)
    fig.tight_layout()
    return fig, frame


def plot_ppc(ppc: pd.DataFrame, factor: str = "all") -> tuple[plt.Figure, pd.DataFrame]:
    """Observed rating shares (dots) against replicated shares (bars, 95% interval).

    One row of panels per dimension, one column per level of ``factor`` ("all": overall).
    """
    frame = ppc[ppc["factor"] == factor].reset_index(drop=True)
    if frame.empty:
        raise ModelError(f"no posterior predictive rows for factor {factor!r}; factors are "
                         f"{', '.join(pd.unique(ppc['factor']))}")
    dims, levels = list(pd.unique(frame["dimension"])), list(pd.unique(frame["level"]))
    fig, axes = plt.subplots(len(dims), len(levels), squeeze=False, sharex=True, sharey="row",
                             figsize=(2.3 * len(levels) + 1, 1.7 * len(dims) + 0.8))
    for i, dim in enumerate(dims):
        for j, level in enumerate(levels):
            ax = axes[i, j]
            sub = frame[(frame["dimension"] == dim) & (frame["level"] == level)]
            ax.bar(sub["rating"], sub["predicted"], color="#9ecae1", width=0.7)
            ax.errorbar(sub["rating"], sub["predicted"],
                        yerr=[sub["predicted"] - sub["lower"], sub["upper"] - sub["predicted"]],
                        fmt="none", ecolor="#3182bd")
            ax.scatter(sub["rating"], sub["observed"], color="black", zorder=3, s=14)
            if i == 0:
                ax.set_title(str(level), fontsize=9)
            if j == 0:
                ax.set_ylabel(dim.replace("_", " "), fontsize=8)
    fig.suptitle(f"Posterior predictive check ({factor}): observed shares (dots) vs "
                 "replicated (bars, 95%)", fontsize=10)
    fig.tight_layout()
    return fig, frame


def plot_trace(idata: az.InferenceData, var_names: tuple[str, ...] = ("beta", "rater_sd",
                                                                       "item_sd")
               ) -> tuple[plt.Figure, pd.DataFrame]:
    """Trace and rank plots (ArviZ ``plot_trace`` with rank bars) of the effect parameters."""
    names = [v for v in var_names if v in idata.posterior]
    axes = az.plot_trace(idata, var_names=names, kind="rank_bars", compact=True)
    fig = np.asarray(axes).ravel()[0].figure
    fig.tight_layout()
    return fig, az.summary(idata, var_names=names, kind="diagnostics").reset_index(
        names="parameter")
