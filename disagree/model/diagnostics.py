"""Convergence diagnostics (R-hat, ESS, divergences) and posterior predictive checks."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from disagree.errors import DisagreeWarning
from disagree.model.draws import flat_draws
from disagree.model.sampling import require_rater_effects

#: The effect parameters the ``ok`` flag is computed over (``item_group_sd_free`` in place of
#: ``item_group_sd`` where interactions cover some dimensions only, see :func:`effect_posterior`).
EFFECT_VARS = ("beta", "cutpoints", "rater_sd", "item_sd", "item_group_sd", "level_sd")
RHAT_MAX, ESS_MIN = 1.01, 400


def effect_posterior(post: xr.Dataset, names: tuple[str, ...] = EFFECT_VARS) -> xr.Dataset:
    """Return the variables ``names`` of ``post`` that it has, as judged by the diagnostics.

    Where the interactions cover some dimensions only, ``item_group_sd`` is exactly zero in
    the other cells (constants, whose R-hat is NaN): it is replaced by the free sds
    ``item_group_sd_free`` (dim ``interaction_cell``, labels ``dimension:factor``), taken
    from ``post`` if stored there, else from the cells of ``item_group_sd`` that are not zero
    in every draw (a HalfNormal draw is never exactly zero).
    """
    out = {v: post[v] for v in names if v in post}
    free = free_group_sd(post)
    if "item_group_sd" in out and free is not None:
        out = {("item_group_sd_free" if v == "item_group_sd" else v):
               (free if v == "item_group_sd" else da) for v, da in out.items()}
    return xr.Dataset(out)


def free_group_sd(post: xr.Dataset) -> xr.DataArray | None:
    """``item_group_sd_free`` of a posterior; None where every cell of ``item_group_sd`` is free."""
    if "item_group_sd_free" in post:
        return post["item_group_sd_free"]
    if "item_group_sd" not in post:
        return None
    sd = post["item_group_sd"].transpose("chain", "draw", "dimension", "factor")
    free = (sd != 0).any(("chain", "draw")).values
    if free.all():
        return None
    rows, cols = np.nonzero(free)  # dimension-major, as spec.interaction_cells
    dims, factors = sd.coords["dimension"].values, sd.coords["factor"].values
    return xr.DataArray(
        sd.values[:, :, rows, cols], name="item_group_sd_free",
        dims=("chain", "draw", "interaction_cell"),
        coords={"chain": sd.coords["chain"].values, "draw": sd.coords["draw"].values,
                "interaction_cell": [f"{dims[r]}:{factors[c]}"
                                     for r, c in zip(rows, cols, strict=True)]})


def compute_diagnostics(idata: az.InferenceData, sampler: str,
                        seconds: dict[str, float]) -> dict:
    """Return the ``diagnostics.json`` content and warn by name about what failed.

    Keys: ``ok``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``,
    ``sampler``, ``seconds`` (``compile``, ``sampling``), ``failures`` (one line per problem)
    and ``parameters`` (R-hat and ESS of every effect parameter, see :func:`effect_posterior`).
    """
    post = effect_posterior(idata.posterior)
    names = list(post.data_vars)
    rows = []
    if sampler != "advi":
        rhat = az.rhat(post[names])
        bulk = az.ess(post[names], method="bulk")
        tail = az.ess(post[names], method="tail")
        for var in names:
            for idx in np.ndindex(post[var].shape[2:]):
                label = _label(post[var], idx)
                rows.append({"parameter": label, "rhat": float(rhat[var].values[idx]),
                             "ess_bulk": float(bulk[var].values[idx]),
                             "ess_tail": float(tail[var].values[idx])})
    table = pd.DataFrame(rows, columns=["parameter", "rhat", "ess_bulk", "ess_tail"])
    div = int(idata.sample_stats["diverging"].sum()) if "sample_stats" in idata and \
        "diverging" in idata.sample_stats else 0
    failures = []
    if sampler == "advi":
        failures.append("approximate posterior (ADVI): R-hat, ESS and divergences do not "
                        "apply; compare with a NUTS fit before reporting")
    else:
        for r in table.itertuples():
            if not r.rhat <= RHAT_MAX:
                failures.append(f"R-hat of {r.parameter} is {r.rhat:.3f} (> {RHAT_MAX})")
            if not r.ess_bulk >= ESS_MIN:
                failures.append(f"bulk ESS of {r.parameter} is {r.ess_bulk:.0f} (< {ESS_MIN})")
        if div:
            failures.append(f"{div} divergent transition(s)")
    for line in failures[:10]:
        warnings.warn(f"fit diagnostics: {line}", DisagreeWarning, stacklevel=3)
    return {
        "ok": not failures,
        "rhat_max": _nan_none(table["rhat"].max()),
        "ess_bulk_min": _nan_none(table["ess_bulk"].min()),
        "ess_tail_min": _nan_none(table["ess_tail"].min()),
        "divergences": div,
        "sampler": sampler,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "failures": failures,
        "parameters": table.round(4).to_dict(orient="records"),
    }


def quiet_ok(idata: az.InferenceData, sampler: str) -> bool:
    """Whether ``idata`` meets the ``ok`` thresholds, without warnings (a sampling target)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(compute_diagnostics(idata, sampler, {})["ok"])


def posterior_predictive_table(idata: az.InferenceData, raters: pd.DataFrame,
                               dimensions: list[str], scale: int, n_draws: int = 200,
                               seed: int = 0) -> pd.DataFrame:
    """Observed vs replicated rating shares per dimension and rater group.

    For ``n_draws`` posterior draws, replicated ratings are drawn for every observed
    (rater, item, dimension) and their shares per rating level are computed per dimension,
    overall (``factor = level = "all"``) and within each level of each rater factor.
    Each rater meets the item deviations of its own levels in a fit with interactions.
    Memory: the linear predictor of every observation at the ``n_draws`` draws, then blocks
    of draws (the posterior's other draws are never copied).

    Returns
    -------
    DataFrame
        ``dimension, factor, level, rating, observed, predicted, lower, upper, n`` (shares;
        the interval is the 95% interval of the replicated shares).
    """
    cd = idata.constant_data
    obs_r, obs_i, obs_d = (cd[n].values for n in ("obs_rater", "obs_item", "obs_dimension"))
    y = idata.observed_data["rating"].values
    require_rater_effects(idata.posterior, "the posterior predictive check")
    post = idata.posterior
    rng = np.random.default_rng(seed)
    n_total = post.sizes["chain"] * post.sizes["draw"]
    pick = np.sort(rng.choice(n_total, min(n_draws, n_total), replace=False))

    def picked(name: str) -> np.ndarray:
        """Return the picked draws of ``name``, draws last (chain-major order)."""
        return np.moveaxis(flat_draws(post, name, pick=pick), 0, -1)

    n_dims = len(dimensions)
    factors = {"all": np.zeros(len(raters), dtype=int)}
    labels = {"all": ["all"]}
    for col in raters.columns:
        codes, uniques = pd.factorize(raters[col], sort=True)
        factors[col], labels[col] = codes, [str(u) for u in uniques]
    # one bin per (level, dimension, rating) of every factor
    keys = {f: (codes[obs_r] * n_dims + obs_d) * scale for f, codes in factors.items()}
    sizes = {f: len(labels[f]) * n_dims * scale for f in factors}
    rep = {f: np.empty((len(pick), sizes[f])) for f in factors}
    u, v = picked("rater_effect"), picked("item_effect")  # (R, D, s), (J, D, s)
    xb = np.einsum("rp,dps->rds", cd["rater_design"].values, picked("beta"))
    cut = picked("cutpoints")  # (D, K-1, s)
    eta_all = xb[obs_r, obs_d] + u[obs_r, obs_d] + v[obs_i, obs_d]  # (N, s)
    del u, v, xb
    if "item_group_effect" in post:  # each rater meets its own levels' item deviations
        w = picked("item_group_effect")  # (J, interaction levels, D, s)
        for k, label in enumerate(map(str, post.coords["interaction_level"].values)):
            factor, level = label[:-1].split("[", 1)
            mine = (raters[factor].astype(str).to_numpy() == level)[obs_r]
            eta_all[mine] += w[obs_i[mine], k, obs_d[mine]]
        del w
    step = max(1, 4_000_000 // (len(y) * scale))
    for lo in range(0, len(pick), step):
        eta, sel = eta_all[:, lo:lo + step], pick[lo:lo + step]
        cdf = expit(cut[:, :, lo:lo + step][obs_d] - eta[:, None, :])  # (N, K-1, s)
        y_rep = (rng.random(eta.shape)[:, None, :] > cdf).sum(axis=1)  # 0-based, (N, s)
        for f in factors:
            for j in range(len(sel)):
                rep[f][lo + j] = np.bincount(keys[f] + y_rep[:, j], minlength=sizes[f])
    rows = []
    for f in factors:
        observed = np.bincount(keys[f] + y - 1, minlength=sizes[f]).reshape(-1, scale)
        replicated = rep[f].reshape(len(pick), -1, scale)
        totals = observed.sum(axis=1)
        for b in np.flatnonzero(totals):
            level, d = divmod(b, n_dims)
            shares = replicated[:, b] / totals[b]
            for k in range(scale):
                rows.append({"dimension": dimensions[d], "factor": f, "level": labels[f][level],
                             "rating": k + 1, "observed": observed[b, k] / totals[b],
                             "predicted": float(shares[:, k].mean()),
                             "lower": float(np.quantile(shares[:, k], 0.025)),
                             "upper": float(np.quantile(shares[:, k], 0.975)),
                             "n": int(totals[b])})
    return pd.DataFrame(rows)


def _label(da, idx: tuple[int, ...]) -> str:
    if not idx:
        return da.name
    coords = [str(da.coords[dim].values[i]) for dim, i in zip(da.dims[2:], idx, strict=True)]
    return f"{da.name}[{', '.join(coords)}]"


def _nan_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def diagnostics_summary(diag: dict, max_failures: int = 12) -> str:
    """Format ``diagnostics.json`` content as a line of numbers plus one line per problem."""
    def num(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    seconds = ", ".join(f"{k} {v:.1f}" for k, v in diag["seconds"].items())
    lines = [f"sampler {diag['sampler']}: ok={diag['ok']}  R-hat max "
             f"{num(diag['rhat_max'], '.4f')}  bulk ESS min {num(diag['ess_bulk_min'], '.0f')}  "
             f"tail ESS min {num(diag['ess_tail_min'], '.0f')}  divergences "
             f"{diag['divergences']}  seconds: {seconds}"]
    if "extension" in diag:
        lines.append(f"  {diag['extension']['note']}")
    lines += [f"  - {f}" for f in diag["failures"][:max_failures]]
    if len(diag["failures"]) > max_failures:
        lines.append(f"  ... ({len(diag['failures'])} problems in all)")
    return "\n".join(lines)
