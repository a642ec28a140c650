"""A fit's results as files: the contrasts with their forest plot, and the diagnostics report.

The diagnostics report is the posterior predictive table, the trace/rank and PPC plots, the
power-scaling prior sensitivity of the effect parameters and of the reported contrasts, the
prior-vs-posterior plot of every ``item_group_sd``, the estimand table and ``report.md``, which
states the headline's estimand, shows the estimand table and names the reported quantities
that move with their prior. These are the library calls behind ``disagree contrasts`` and
``disagree diagnose``; they return what they wrote so that a notebook or the command line can
show it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from disagree._io import write_atomic, write_figure, write_table
from disagree.errors import ConvergenceError, DisagreeWarning
from disagree.model.contrasts import estimand_text
from disagree.model.estimand_table import estimand_table, format_estimand_table
from disagree.model.fitting import Fit, as_fit
from disagree.model.plots import plot_contrasts, plot_ppc, plot_trace
from disagree.model.sensitivity import (
    plot_prior_posterior,
    prior_sensitivity,
    sensitivity_text,
)


def write_contrasts(fit: Fit | str | os.PathLike[str], out: str | os.PathLike[str], *,
                    threshold: int | None = None, on: str = "high",
                    population: pd.DataFrame | str | os.PathLike[str] | None = None,
                    strict: bool = False) -> tuple[pd.DataFrame, list[Path]]:
    """Write the contrasts table of ``fit`` (CSV/TSV/Parquet by suffix) and its forest plot.

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    out : path
        Table file; the forest plot goes next to it with the suffix ``.png``.
    threshold, on, population
        As in :meth:`Fit.contrasts` (``population`` may be a table file).
    strict : bool
        Write nothing and raise :class:`~disagree.errors.ConvergenceError` when the fit's
        diagnostics are not ok.

    Returns
    -------
    (DataFrame, list of Path)
        The contrasts and the files written; ``attrs["estimand"]`` states the estimand of the
        plotted measure in a sentence (:func:`~disagree.model.contrasts.estimand_text`).
    """
    fit = as_fit(fit)
    if strict and not fit.diagnostics["ok"]:
        raise ConvergenceError(f"fit {fit.path or ''} did not pass its diagnostics:\n"
                               f"{fit.summary()}")
    table = fit.contrasts(threshold=threshold, on=on, population=population)
    out = Path(out)
    written = [write_table(out, table)]
    measure = "relative_pct" if (table["measure"] == "relative_pct").any() else "mean_rating"
    written.append(write_figure(out.with_suffix(".png"), plot_contrasts(table, measure)[0]))
    table.attrs["estimand"] = estimand_text(fit.spec.scale, threshold, "new",
                                            population is not None, measure)
    return table, written


def diagnose(fit: Fit | str | os.PathLike[str], out: str | os.PathLike[str], *,
             sensitivity: bool = True, estimands: bool = True) -> list[Path]:
    """Write the posterior predictive table, the diagnostic plots, the prior sensitivity and report.

    Files: ``ppc.csv`` (observed vs replicated rating shares per dimension and group, see
    :meth:`Fit.ppc`), ``trace.png`` (trace and rank plots), ``ppc_<factor>.png`` for every
    factor (and ``all``), ``prior_sensitivity.csv`` (power-scaling sensitivity of every
    effect parameter and of the default contrasts, see
    :func:`disagree.model.sensitivity.prior_sensitivity`), ``prior_posterior_item_group_sd.png``
    (a fit with interactions: prior density vs posterior of every ``item_group_sd``),
    ``estimands.csv`` (:func:`disagree.model.estimand_table.estimand_table`) and ``report.md``:
    the diagnostics summary, the headline's estimand in a sentence, the estimand table side by
    side and the line naming the reported quantities whose posterior moves when the priors are
    power-scaled (prior sensitivity at or above 0.05). The numbers themselves are in
    ``fit.summary()`` and ``fit.diagnostics``. A :class:`~disagree.errors.DisagreeWarning`
    names the parameters whose posterior moves when the priors are power-scaled
    (:func:`~disagree.model.sensitivity.sensitivity_text` of the table says it in a line).

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    out : path
        Folder for the files.
    sensitivity : bool
        Compute and write the prior sensitivity (on the study's size, about as long as the
        contrasts and the pointwise log-likelihood together).
    estimands : bool
        Compute and write the estimand table (a standardisation per threshold and rater
        definition on the headline comparisons' dimensions).

    Returns
    -------
    list of Path
        The files written, in the order above (``trace.png`` alone, with a warning, for a fit
        made with ``keep_rater_effects=False``).
    """
    fit, out = as_fit(fit), Path(out)
    if "rater_effect" not in fit.idata.posterior:
        warnings.warn("this fit keeps no rater effects (keep_rater_effects=False): the trace "
                      "plots only; the posterior predictive check and the prior sensitivity "
                      "need them", DisagreeWarning, stacklevel=2)
        return [write_figure(out / "trace.png", plot_trace(fit.idata)[0])]
    ppc = fit.ppc()
    written = [write_table(out / "ppc.csv", ppc),
               write_figure(out / "trace.png", plot_trace(fit.idata)[0])]
    for factor in ppc["factor"].unique():  # in order of appearance
        written.append(write_figure(out / f"ppc_{factor}.png", plot_ppc(ppc, factor)[0]))
    lines = [f"# Fit report{f': {fit.path}' if fit.path else ''}", "", "```",
             fit.summary(), "```", "", "## Headline estimand", "",
             estimand_text(fit.spec.scale), ""]
    if sensitivity:
        table = prior_sensitivity(fit)
        written.append(write_table(out / "prior_sensitivity.csv", table))
        if table.attrs["sensitive"]:
            warnings.warn(sensitivity_text(table), DisagreeWarning, stacklevel=2)
        if fit.spec.interactions:
            written.append(write_figure(out / "prior_posterior_item_group_sd.png",
                                        plot_prior_posterior(fit)[0]))
        sens = ["## Prior sensitivity", "", sensitivity_text(table, reported=True), ""]
    if estimands:
        est = estimand_table(fit)
        written.append(write_table(out / "estimands.csv", est))
        lines += ["## Estimand table", "",
                  "The headline comparisons under each definition: posterior mean [95% "
                  "interval].", "", format_estimand_table(est), ""]
    if sensitivity:
        lines += sens
    report = out / "report.md"
    write_atomic(report, lambda tmp: tmp.write_text("\n".join(lines), encoding="utf-8"))
    return [*written, report]
