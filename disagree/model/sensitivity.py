"""Prior sensitivity by power-scaling (Kallioinen et al. 2024), through ``arviz_stats.psense``.

Raising the prior, or the likelihood, to a power ``alpha`` close to 1 reweights the posterior
draws (Pareto-smoothed importance sampling, no refit); the sensitivity of a parameter is how
far its posterior moves per unit of ``log(alpha)`` (cumulative Jensen-Shannon distance).
A parameter whose posterior moves under prior scaling (sensitivity >= ``threshold``, 0.05 by
default) has an informative prior: with likelihood sensitivity >= ``threshold`` too, the
diagnosis is ``prior-data conflict``; with likelihood sensitivity below it, ``strong prior /
weak likelihood`` (psense's own rule and words).

Only the top-level priors are power-scaled, as recommended for hierarchical models: the
log prior is evaluated at the stored draws from ``fit.spec.priors``::

    beta ~ Normal(0, beta_sd)                       (effects="dummy")
    cutpoints_centred ~ Normal(0, cutpoint_sd)      cutpoints - beta . mean(rater_design)
    rater_sd ~ HalfNormal(rater_sd), item_sd ~ HalfNormal(item_sd)
    item_group_sd ~ HalfNormal(item_group_sd)       (interactions; item_group_sd_free, the
                                                    free cells, where they cover some
                                                    dimensions only)
    level_sd ~ HalfNormal(level_sd)                 (effects="pooled")
    rater_corr ~ LKJ(lkj_eta)                       (several dimensions)

The log likelihood is :func:`disagree.model.loo.pointwise_loglik`.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from disagree.errors import ModelError
from disagree.model.diagnostics import effect_posterior
from disagree.model.fitting import Fit, as_fit
from disagree.model.loo import pointwise_loglik

#: The parameters whose sensitivity is reported, when the fit has them.
PARAMETERS = ("beta", "cutpoints", "rater_sd", "item_sd", "item_group_sd", "level_sd")
COLUMNS = ["parameter", "prior", "likelihood", "diagnosis"]
CONFLICT, STRONG_PRIOR, FINE = "prior-data conflict", "strong prior / weak likelihood", "-"


def log_prior(fit: Fit | str | os.PathLike[str]) -> xr.Dataset:
    """Log densities of the top-level priors at every posterior draw (see the module docstring).

    Returns
    -------
    xarray.Dataset
        One variable per prior (``beta``, ``cutpoints_centred``, ``rater_sd``...), each with
        dims ``(chain, draw, ...)`` of the parameter; constants of the densities are dropped
        where they do not depend on the draw (the LKJ normaliser).
    """
    fit = as_fit(fit)
    post, p = fit.idata.posterior, fit.spec.priors
    out = {}

    def like(name: str, values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, dims=post[name].dims, coords=post[name].coords)

    beta = post["beta"]
    if fit.spec.effects == "dummy":
        out["beta"] = like("beta", stats.norm.logpdf(beta.values, 0.0, p["beta_sd"]))
    x_mean = fit.idata.constant_data["rater_design"].mean("rater")
    centred = post["cutpoints"] - xr.dot(beta, x_mean, dim="factor_level")
    out["cutpoints_centred"] = xr.DataArray(
        stats.norm.logpdf(centred.values, 0.0, p["cutpoint_sd"]), dims=centred.dims,
        coords=centred.coords)
    for name in ("rater_sd", "item_sd", "level_sd"):
        if name in post:
            out[name] = like(name, stats.halfnorm.logpdf(post[name].values, scale=p[name]))
    # item_group_sd, or its free cells where the interactions cover some dimensions only
    for name, sd in effect_posterior(post, ("item_group_sd",)).data_vars.items():
        out[name] = xr.DataArray(stats.halfnorm.logpdf(sd.values, scale=p["item_group_sd"]),
                                 dims=sd.dims, coords=sd.coords)
    if "rater_corr" in post and post.sizes["dimension"] > 1:
        corr = post["rater_corr"].transpose("chain", "draw", "dimension", "dimension_bis")
        _, logdet = np.linalg.slogdet(corr.values)
        out["rater_corr"] = xr.DataArray((p["lkj_eta"] - 1.0) * logdet, dims=("chain", "draw"),
                                         coords={d: post.coords[d] for d in ("chain", "draw")})
    return xr.Dataset(out)


def prior_sensitivity(fit: Fit | str | os.PathLike[str], threshold: float = 0.05,
                      chunk_draws: int = 100) -> pd.DataFrame:
    """Power-scaling prior and likelihood sensitivity of every scalar effect parameter.

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    threshold : float
        Sensitivity at or above which a posterior counts as moving (psense's default 0.05).
    chunk_draws : int
        Draws per chunk of :func:`~disagree.model.loo.pointwise_loglik`.

    Returns
    -------
    DataFrame
        ``parameter`` (e.g. ``beta[toxicity, gender[male]]``), ``prior`` and ``likelihood``
        (sensitivities), ``diagnosis`` (``prior-data conflict``, ``strong prior / weak
        likelihood`` or ``-``); ``attrs["sensitive"]`` lists the parameters diagnosed.
    """
    try:
        from arviz_stats import psense
    except ImportError:
        raise ModelError("prior sensitivity needs arviz-stats: pip install "
                         "'arviz-stats[xarray]'") from None
    if not threshold > 0:
        raise ModelError(f"threshold={threshold!r}: expected a positive sensitivity")
    fit = as_fit(fit)
    post = effect_posterior(fit.idata.posterior, PARAMETERS)
    names = list(post.data_vars)
    tree = xr.DataTree.from_dict({
        "posterior": post,
        "log_likelihood": xr.Dataset({"rating": pointwise_loglik(fit, chunk_draws)}),
        "log_prior": log_prior(fit)})
    result = {g: psense(tree, var_names=names, group=g) for g in ("prior", "likelihood")}
    rows = []
    for name in names:
        prior, like = result["prior"][name], result["likelihood"][name]
        for idx in np.ndindex(prior.shape):
            ps, ls = float(prior.values[idx]), float(like.values[idx])
            rows.append({"parameter": _label(prior, idx), "prior": ps, "likelihood": ls,
                         "diagnosis": _diagnose(ps, ls, threshold)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["sensitive"] = sensitive_parameters(table)
    table.attrs["threshold"] = threshold
    return table


def _diagnose(prior: float, likelihood: float, threshold: float) -> str:
    if prior >= threshold and likelihood >= threshold:
        return CONFLICT
    if prior >= threshold:
        return STRONG_PRIOR
    return FINE


def _label(da: xr.DataArray, idx: tuple[int, ...]) -> str:
    if not idx:
        return str(da.name)
    coords = [str(da.coords[dim].values[i]) for dim, i in zip(da.dims, idx, strict=True)]
    return f"{da.name}[{', '.join(coords)}]"


def sensitive_parameters(table: pd.DataFrame) -> list[str]:
    """Return the parameters of a :func:`prior_sensitivity` table whose posterior moves."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ModelError(f"not a prior sensitivity table: no column {', '.join(missing)}")
    return [str(p) for p in table.loc[table["diagnosis"] != FINE, "parameter"]]


def sensitivity_text(table: pd.DataFrame) -> str:
    """One line naming the prior-sensitive parameters (and their diagnoses), or saying none."""
    threshold = table.attrs.get("threshold", 0.05)
    sensitive_parameters(table)  # checks the columns
    flagged = table[table["diagnosis"] != FINE]
    if flagged.empty:
        return (f"prior sensitivity: no parameter's posterior moves when the priors are "
                f"power-scaled (threshold {threshold:g})")
    parts = [f"{r.parameter} ({r.diagnosis}, prior {r.prior:.3f}, likelihood "
             f"{r.likelihood:.3f})" for r in flagged.itertuples()]
    return (f"prior sensitivity: the posterior of {len(parts)} parameter(s) moves when the "
            f"priors are power-scaled (threshold {threshold:g}): {'; '.join(parts)}")
