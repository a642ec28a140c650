"""A fit's results as files: the contrasts with their forest plot, and the diagnostics report.

The diagnostics report is the posterior predictive table, the trace/rank and PPC plots and
the power-scaling prior sensitivity of the effect parameters.
These are the library calls behind ``disagree contrasts`` and ``disagree diagnose``; they
return what they wrote so that a notebook or the command line can show it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from disagree._io import write_figure, write_table
from disagree.errors import ConvergenceError, DisagreeWarning
from disagree.model.fitting import Fit, as_fit
from disagree.model.plots import plot_contrasts, plot_ppc, plot_trace
from disagree.model.sensitivity import prior_sensitivity, sensitivity_text


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
        The contrasts and the files written.
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
    return table, written


def diagnose(fit: Fit | str | os.PathLike[str], out: str | os.PathLike[str], *,
             sensitivity: bool = True) -> list[Path]:
    """Write the posterior predictive table, the diagnostic plots and the prior sensitivity.

    Files: ``ppc.csv`` (observed vs replicated rating shares per dimension and group, see
    :meth:`Fit.ppc`), ``trace.png`` (trace and rank plots), ``ppc_<factor>.png`` for every
    factor (and ``all``) and ``prior_sensitivity.csv`` (power-scaling sensitivity of every
    effect parameter, see :func:`disagree.model.sensitivity.prior_sensitivity`). The numbers
    themselves are in ``fit.summary()`` and ``fit.diagnostics``. A
    :class:`~disagree.errors.DisagreeWarning` names the parameters whose posterior moves when
    the priors are power-scaled (:func:`~disagree.model.sensitivity.sensitivity_text` of the
    table says it in a line).

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    out : path
        Folder for the files.
    sensitivity : bool
        Compute and write the prior sensitivity (a few seconds on the study's size).

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
    if sensitivity:
        table = prior_sensitivity(fit)
        written.append(write_table(out / "prior_sensitivity.csv", table))
        if table.attrs["sensitive"]:
            warnings.warn(sensitivity_text(table), DisagreeWarning, stacklevel=2)
    return written
