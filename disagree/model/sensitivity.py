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
                                                    - mean(rater_effect) (the mean over the
                                                    raters, which the model's cut points
                                                    carry; see disagree.model.build)
    rater_sd ~ HalfNormal(rater_sd), item_sd ~ HalfNormal(item_sd)
    item_group_sd ~ HalfNormal(item_group_sd)       (interactions; item_group_sd_free, the
                                                    free cells, where they cover some
                                                    dimensions only)
    level_sd ~ HalfNormal(level_sd)                 (effects="pooled")
    rater_corr ~ LKJ(lkj_eta)                       (several dimensions)

The log likelihood is :func:`disagree.model.loo.pointwise_loglik`.

Besides the parameters, the sensitivity is computed for the quantities a reader is shown: the
default contrasts (``relative_pct`` and ``pp`` of every level on every dimension, for a new
rater at the headline threshold), derived per draw with
:func:`~disagree.model.contrasts.estimand_draws`, and every ``item_group_sd``, whose prior
(``HalfNormal(0.5)``) carries much of its posterior at about 6 ratings an item-by-level cell;
:func:`plot_prior_posterior` draws its prior against its posterior.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from disagree.errors import ModelError
from disagree.model.contrasts import estimand_draws
from disagree.model.diagnostics import effect_posterior
from disagree.model.fitting import Fit, as_fit
from disagree.model.loo import pointwise_loglik
from disagree.model.sampling import require_rater_effects

#: The parameters whose sensitivity is reported, when the fit has them.
PARAMETERS = ("beta", "cutpoints", "rater_sd", "item_sd", "item_group_sd", "level_sd")
#: The derived contrasts whose sensitivity is reported (new rater, headline threshold).
CONTRAST_MEASURES = ("relative_pct", "pp")
#: The variables of the quantities a reader is shown: the contrasts (``beta`` is
#: ``log_odds``) and the group-by-item sds.
REPORTED = ("beta", *CONTRAST_MEASURES, "item_group_sd", "item_group_sd_free")
COLUMNS = ["parameter", "prior", "likelihood", "diagnosis"]
CONFLICT, STRONG_PRIOR, FINE = "prior-data conflict", "strong prior / weak likelihood", "-"


def log_prior(fit: Fit | str | os.PathLike[str]) -> xr.Dataset:
    """Log densities of the top-level priors at every posterior draw (see the module docstring).

    The cut points' prior sits on ``cutpoints - beta . mean(rater_design) - mean(rater_effect)``
    (the model's ``cutpoints_centred``) in fits made with the rater effects' mean moved to the
    cut points (``parametrisation.rater_mean_out`` in ``model.json``, every fit since), on
    ``cutpoints - beta . mean(rater_design)`` before.

    Returns
    -------
    xarray.Dataset
        One variable per prior (``beta``, ``cutpoints_centred``, ``rater_sd``...), each with
        dims ``(chain, draw, ...)`` of the parameter; constants of the densities are dropped
        where they do not depend on the draw (the LKJ normaliser).

    Raises
    ------
    ModelError
        For a fit made with ``keep_rater_effects=False``: its cut points' prior needs the
        rater effects' mean.
    """
    fit = as_fit(fit)
    post, p = fit.idata.posterior, fit.spec.priors
    mean_out = bool(fit.info.get("parametrisation", {}).get("rater_mean_out", False))
    if mean_out:
        require_rater_effects(post, "the prior sensitivity (the cut points' prior)")
    out = {}

    def like(name: str, values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, dims=post[name].dims, coords=post[name].coords)

    beta = post["beta"]
    if fit.spec.effects == "dummy":
        out["beta"] = like("beta", stats.norm.logpdf(beta.values, 0.0, p["beta_sd"]))
    x_mean = fit.idata.constant_data["rater_design"].mean("rater")
    centred = post["cutpoints"] - xr.dot(beta, x_mean, dim="factor_level")
    if mean_out:
        centred = centred - post["rater_effect"].mean("rater")
    centred = centred.transpose("chain", "draw", "dimension", "cutpoint")
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
                      chunk_draws: int = 100, contrasts: bool = True,
                      rating_threshold: int | None = None) -> pd.DataFrame:
    """Power-scaling prior and likelihood sensitivity of the effect parameters and contrasts.

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    threshold : float
        Sensitivity (cumulative Jensen-Shannon distance per unit of ``log(alpha)``) at or
        above which a posterior counts as moving (psense's default 0.05, Kallioinen et al.).
    chunk_draws : int
        Draws per chunk of :func:`~disagree.model.loo.pointwise_loglik`.
    contrasts : bool
        Also the default contrasts (:data:`CONTRAST_MEASURES` of every level on every
        dimension, for a new rater), derived per draw (:func:`contrast_posterior`).
    rating_threshold : int, optional
        Lowest rating counted as high in those contrasts (default 4 on 5 points).

    Returns
    -------
    DataFrame
        ``parameter`` (e.g. ``beta[toxicity, gender[male]]``, ``relative_pct[toxicity,
        gender[male]]``), ``prior`` and ``likelihood`` (sensitivities), ``diagnosis``
        (``prior-data conflict``, ``strong prior / weak likelihood`` or ``-``);
        ``attrs["sensitive"]`` lists the rows diagnosed, ``attrs["reported"]`` those of them
        that a reader is shown (:func:`reported_sensitive`).
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
    if contrasts:
        post = post.merge(contrast_posterior(fit, rating_threshold))
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
    table.attrs["reported"] = reported_sensitive(table)
    table.attrs["threshold"] = threshold
    return table


def contrast_posterior(fit: Fit | str | os.PathLike[str],
                       rating_threshold: int | None = None) -> xr.Dataset:
    """Return the default contrasts of every level on every dimension as posterior draws.

    Parameters
    ----------
    fit : Fit or path
    rating_threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points).

    Returns
    -------
    xarray.Dataset
        One variable per measure of :data:`CONTRAST_MEASURES` (a new rater), dims ``(chain,
        draw, contrast)``, ``contrast`` labels ``dimension, factor[level]``; the draws are
        those :meth:`Fit.contrasts` summarises.
    """
    fit = as_fit(fit)
    post = fit.idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    labels, values = [], {m: [] for m in CONTRAST_MEASURES}
    for dim in fit.spec.dimensions:
        for (factor, level), draws in estimand_draws(fit, dim, rating_threshold).items():
            labels.append(f"{dim}, {factor}[{level}]")
            for m in CONTRAST_MEASURES:
                values[m].append(draws[m].reshape(shape))
    coords = {"chain": post.coords["chain"].values, "draw": post.coords["draw"].values,
              "contrast": labels}
    return xr.Dataset({m: xr.DataArray(np.stack(v, axis=-1), dims=("chain", "draw", "contrast"),
                                       coords=coords) for m, v in values.items()})


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


def reported_sensitive(table: pd.DataFrame) -> list[str]:
    """Return the rows of :func:`sensitive_parameters` a reader is shown (:data:`REPORTED`)."""
    return [p for p in sensitive_parameters(table) if p.split("[")[0] in REPORTED]


def sensitivity_text(table: pd.DataFrame, reported: bool = False) -> str:
    """One line naming the prior-sensitive parameters (and their diagnoses), or saying none.

    Parameters
    ----------
    table : DataFrame
        A :func:`prior_sensitivity` table.
    reported : bool
        Name only the quantities a reader is shown (:func:`reported_sensitive`).
    """
    threshold = table.attrs.get("threshold", 0.05)
    names = reported_sensitive(table) if reported else sensitive_parameters(table)
    what = "reported quantity" if reported else "parameter"
    flagged = table[table["parameter"].isin(names)]
    if flagged.empty:
        return (f"prior sensitivity: no {what}'s posterior moves when the priors are "
                f"power-scaled (threshold {threshold:g})")
    parts = [f"{r.parameter} ({r.diagnosis}, prior {r.prior:.3f}, likelihood "
             f"{r.likelihood:.3f})" for r in flagged.itertuples()]
    return (f"prior sensitivity: the posterior of {len(parts)} {what}(s) moves when the "
            f"priors are power-scaled (threshold {threshold:g}): {'; '.join(parts)}")


def plot_prior_posterior(fit: Fit | str | os.PathLike[str], bins: int = 40
                         ) -> tuple[plt.Figure, pd.DataFrame]:
    """Prior density against posterior histogram of every ``item_group_sd``, a panel each.

    Parameters
    ----------
    fit : Fit or path
        A fit with interactions.
    bins : int
        Histogram bins.

    Returns
    -------
    (Figure, DataFrame)
        The figure and, per sd (``parameter``), the prior scale, the posterior mean and the
        prior and posterior probabilities of a value below ``prior_scale / 5`` (a cell whose
        posterior keeps the prior's shape near zero has them alike).
    """
    fit = as_fit(fit)
    sds = effect_posterior(fit.idata.posterior, ("item_group_sd",))
    if not sds.data_vars:
        raise ModelError("this fit has no group-by-item interactions: no item_group_sd to "
                         "plot (fit with interactions=[...])")
    (da,) = sds.data_vars.values()
    da = da.stack(sample=("chain", "draw")).transpose(..., "sample")
    scale = float(fit.spec.priors["item_group_sd"])
    cells = list(np.ndindex(da.shape[:-1]))
    n_cols = min(3, len(cells))
    n_rows = -(-len(cells) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.0 * n_cols, 3.0 * n_rows),
                             squeeze=False)
    rows = []
    for ax, idx in zip(axes.flat, cells, strict=False):
        draws = da.values[idx]
        name = _label(da.isel(sample=0).rename(da.name), idx)
        top = max(float(np.quantile(draws, 0.995)), 3.0 * scale)
        grid = np.linspace(0.0, top, 200)
        ax.hist(draws, bins=bins, range=(0.0, top), density=True, color="#4393c3", alpha=0.7,
                label="posterior")
        ax.plot(grid, stats.halfnorm.pdf(grid, scale=scale), color="black",
                label=f"prior HalfNormal({scale:g})")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("sd of the group-by-item deviations (log-odds)")
        rows.append({"parameter": name, "prior_scale": scale, "posterior_mean":
                     float(draws.mean()), "prior_below": float(stats.halfnorm.cdf(
                         scale / 5, scale=scale)), "posterior_below": float(
                             (draws < scale / 5).mean())})
    for ax in list(axes.flat)[len(cells):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("item_group_sd: prior density vs posterior draws", fontsize=10)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)
