"""Model comparison by PSIS-LOO, and whether the data support groups disagreeing about items.

``pointwise_loglik(fit)`` evaluates ``log P(observed rating)`` for every observation and
posterior draw from the stored posterior (the model keeps its likelihood in a ``Potential``, so
PyMC does not store it); :func:`compare` turns it into PSIS-LOO estimates with ArviZ
(``az.loo``, ``az.compare``) and, for a fit whose interaction factors extend another fit's,
says in words whether the extra group-by-item deviations improve the expected log predictive
density by more than twice the standard error of the difference. Ratings come in clusters, so
the verdict leaves out one item at a time (PSIS-LOO over the log-likelihood summed within each
item) where that is reliable, else it takes the rating-level difference with its standard error
clustered by item and rater (see :mod:`disagree.model.loo_clusters`), and says which::

    table = dg.compare(["fits/base", "fits/politics"])
    print(compare_text(table))
    # politics: the data support groups disagreeing about items (elpd difference 547.0 +- 64.8,
    # 8.4 SE, leaving out one item at a time (PSIS-LOO over 120 items, Pareto k <= 0.7 on every
    # item); politics vs base)

The likelihood, per rating ``y = k`` of rater ``r`` on item ``j`` and dimension ``d``::

    eta = x_r . beta[d] + rater_effect[r, d] + item_effect[j, d]
          + sum_f item_group_effect[j, f[level_f(r)], d]
    log P(y = k) = log(expit(c[d, k] - eta) - expit(c[d, k-1] - eta))

with the uncentred ``cutpoints`` (``c[d, 0] = -inf``, ``c[d, K] = +inf``), computed as
``log_sigmoid(c_k - eta) + log_sigmoid(eta - c_{k-1}) + log(1 - exp(c_{k-1} - c_k))``, which
never subtracts two probabilities.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from disagree._io import write_table
from disagree.errors import DisagreeWarning, ModelError
from disagree.model.contrasts import cells_from_design
from disagree.model.fitting import Fit, as_fit
from disagree.model.loo_clusters import (
    K_THRESHOLD,
    SUPPORT_SE,
    cells_label,
    cluster_loo,
    cluster_se,
    clustered_ses,
    extra_cells,
    judge,
    not_nested_note,
    relative_eff,
    sentence,
)
from disagree.model.sampling import require_rater_effects

__all__ = ["K_THRESHOLD", "SUPPORT_SE", "compare", "compare_text", "format_comparison", "loo",
           "pointwise_loglik", "write_comparison"]

FitLike = Fit | str | os.PathLike[str]


def pointwise_loglik(fit: FitLike, chunk_draws: int = 100) -> xr.DataArray:
    """Return ``log P(observed rating)`` of every observation under every posterior draw.

    Parameters
    ----------
    fit : Fit or path
        A fit, or its directory.
    chunk_draws : int
        Draws evaluated at once: the working memory is a few arrays of ``chunk_draws x N``
        float64 values besides the ``draws x N`` output.

    Returns
    -------
    xarray.DataArray
        Float64, dims ``(chain, draw, obs)``, named ``rating``.
    """
    fit = as_fit(fit)
    if not isinstance(chunk_draws, int | np.integer) or chunk_draws < 1:
        raise ModelError(f"chunk_draws={chunk_draws!r}: expected a positive integer")
    idata, spec = fit.idata, fit.spec
    for group in ("posterior", "constant_data", "observed_data"):
        if group not in idata.groups():
            raise ModelError(f"fit {fit.path or ''}: no {group} group in its InferenceData; "
                             "the log-likelihood needs the posterior, constant and observed data")
    post, cd = idata.posterior, idata.constant_data
    y = idata.observed_data["rating"].values.astype(np.int64) - 1  # 0-based
    obs_r, obs_j, obs_d = (cd[n].values.astype(np.int64)
                           for n in ("obs_rater", "obs_item", "obs_dimension"))
    if not len(y) == len(obs_r) == len(obs_j) == len(obs_d):
        raise ModelError(f"fit {fit.path or ''}: observed_data has {len(y)} ratings but "
                         f"constant_data indexes {len(obs_r)} observations")
    k = spec.scale
    if y.min(initial=0) < 0 or y.max(initial=0) >= k:
        raise ModelError(f"fit {fit.path or ''}: ratings outside 1..{k} in observed_data")
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    n_dims = post.sizes["dimension"]

    def draws(name: str, *dims: str) -> np.ndarray:  # (samples, *dims)
        da = post[name].transpose("chain", "draw", *dims)
        return da.values.reshape(n_chain * n_draw, *da.shape[2:])

    beta = draws("beta", "dimension", "factor_level")
    cut = draws("cutpoints", "dimension", "cutpoint")
    require_rater_effects(post, "the pointwise log-likelihood (LOO)")
    u = draws("rater_effect", "rater", "dimension")
    v = draws("item_effect", "item", "dimension")
    x = cd["rater_design"].transpose("rater", "factor_level").values.astype(np.float64)
    rd_idx, jd_idx = obs_r * n_dims + obs_d, obs_j * n_dims + obs_d
    lo_idx = obs_d * (k + 1) + y  # into the cut points padded with -inf and +inf
    w, w_idx = None, np.zeros_like(obs_r)
    if spec.interactions:
        w = draws("item_group_effect", "item", "interaction_level", "dimension")
        labels = [str(s) for s in post.coords["interaction_level"].values]
        cells = cells_from_design(x, spec.levels)
        n_lab = len(labels)
        w_idx = []
        for f in spec.interactions:
            pos = np.array([labels.index(f"{f}[{lv}]") for lv in cells[f]])  # per rater
            w_idx.append((obs_j * n_lab + pos[obs_r]) * n_dims + obs_d)
    out = np.empty((n_chain * n_draw, len(y)), dtype=np.float64)
    inf = np.full(cut.shape[:2] + (1,), np.inf)
    for lo in range(0, n_chain * n_draw, chunk_draws):
        s = slice(lo, lo + chunk_draws)
        mu = np.einsum("rp,sdp->srd", x, beta[s]) + u[s]  # (s, R, D)
        eta = np.take(mu.reshape(len(mu), -1), rd_idx, axis=1)
        eta += np.take(v[s].reshape(len(mu), -1), jd_idx, axis=1)
        if w is not None:
            flat = w[s].reshape(len(mu), -1)
            for idx in w_idx:
                eta += np.take(flat, idx, axis=1)
        padded = np.concatenate([-inf[s], cut[s], inf[s]], axis=2).reshape(len(mu), -1)
        lower = np.take(padded, lo_idx, axis=1)
        upper = np.take(padded, lo_idx + 1, axis=1)
        out[s] = _log_interval(eta, lower, upper)
    coords = {"chain": post.coords["chain"].values, "draw": post.coords["draw"].values}
    if "obs" in idata.observed_data.coords:
        coords["obs"] = idata.observed_data.coords["obs"].values
    return xr.DataArray(out.reshape(n_chain, n_draw, len(y)), dims=("chain", "draw", "obs"),
                        coords=coords, name="rating")


def _log_interval(eta: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``log(expit(upper - eta) - expit(lower - eta))`` without cancellation."""
    gap = upper - lower  # > 0, inf at the end categories
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log1m = np.where(gap > np.log(2.0), np.log1p(-np.exp(-gap)), np.log(-np.expm1(-gap)))
    return -np.logaddexp(0.0, eta - upper) - np.logaddexp(0.0, lower - eta) + log1m


def loo(fit: FitLike, chunk_draws: int = 100, by_item: bool = False
        ) -> az.ELPDData | tuple[az.ELPDData, az.ELPDData]:
    """PSIS-LOO of ``fit`` (``az.loo`` with ``pointwise=True``) from :func:`pointwise_loglik`.

    With ``by_item=True``, also leave-one-item-out PSIS-LOO (``az.loo`` over the
    log-likelihood summed within each item, see
    :func:`~disagree.model.loo_clusters.cluster_loo`) from the same draws, and return both
    (rating-level first). ArviZ's own warning about high Pareto k is silenced:
    :func:`compare` counts them.
    """
    fit = as_fit(fit)
    ll = pointwise_loglik(fit, chunk_draws)
    data = az.InferenceData(log_likelihood=xr.Dataset({"rating": ll}))
    reff = relative_eff(fit.idata.posterior)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        rating = az.loo(data, pointwise=True, var_name="rating", reff=reff)
    if not by_item:
        return rating
    return rating, cluster_loo(ll, _observations(fit)["item"].to_numpy(), reff)


def compare(fits: Sequence[FitLike] | Mapping[str, FitLike], names: Sequence[str] | None = None,
            *, chunk_draws: int = 100, method: str = "stacking",
            k_threshold: float = K_THRESHOLD) -> pd.DataFrame:
    """Compare fits of the same ratings by PSIS-LOO, and judge their interactions.

    Parameters
    ----------
    fits : sequence of Fit or path, or mapping of name to Fit or path
        At least two fits (or fit directories) of the same observations.
    names : sequence of str, optional
        Their names in the table (default: the mapping's keys, else the fit directories'
        names, else ``model0``, ``model1``...).
    chunk_draws : int
        Draws per chunk of :func:`pointwise_loglik`.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        How ``az.compare`` computes the weights.
    k_threshold : float
        Pareto k above which an observation's LOO estimate is counted as unreliable; a
        :class:`~disagree.errors.DisagreeWarning` names every fit with such observations.

    Returns
    -------
    DataFrame
        ``az.compare``'s table (index: the names; ``rank, elpd_loo, p_loo, elpd_diff, weight,
        se, dse, warning, scale``), plus ``dse_item`` and ``dse_rater`` (the SE of
        ``elpd_diff``, the difference to the top-ranked fit, clustered by item and by rater:
        the pointwise differences summed within each cluster, ``sqrt(C * var)`` over the
        ``C`` clusters), ``dse_item_rater`` (two-way clustered), ``elpd_loo_item`` (leaving
        out one item at a time), ``pareto_k_high_item`` (items with k above ``k_threshold``
        there), ``interactions`` (the fit's interaction factors, or ``none``),
        ``pareto_k_high`` (observations with k above ``k_threshold``), ``verdict`` and
        ``verdict_by``. A fit whose ``(dimension, factor)`` interaction cells strictly contain
        another fit's (same factors, dimensions and ``effects``) is compared with the closest
        such fit: the extra cells are ``supported`` when the difference in elpd exceeds 2 of
        its standard errors, else ``not supported`` (the simpler model is as good within 2
        SE). The difference and SE are from leaving out one item at a time when no item of
        either fit has Pareto k above ``k_threshold`` (``verdict_by``: leave-one-item-out),
        else from the rating-level LOO with the SE clustered two-way by item and rater
        (``verdict_by`` says so). ``table.attrs["summary"]`` holds one sentence per comparison
        (see :func:`compare_text`) and ``table.attrs["comparisons"]`` the numbers (see
        :func:`~disagree.model.loo_clusters.judge`).
    """
    if isinstance(fits, Mapping):
        if names is not None:
            raise ModelError("compare: give names either as the mapping's keys or as names=, "
                             "not both")
        names, fits = [str(n) for n in fits], list(fits.values())
    fits = [as_fit(f) for f in fits]
    if len(fits) < 2:
        raise ModelError(f"compare needs at least two fits; got {len(fits)}")
    names = _names(fits, names)
    _check_same_observations(fits, names)
    both = {name: loo(f, chunk_draws, by_item=True) for name, f in zip(names, fits, strict=True)}
    loos = {name: pair[0] for name, pair in both.items()}
    item_loos = {name: pair[1] for name, pair in both.items()}
    obs = _observations(fits[0])
    high = {}
    for name, res in loos.items():
        high[name] = int((res.pareto_k.values > k_threshold).sum())
        if high[name]:
            warnings.warn(f"fit {name}: {high[name]} of {res.n_data_points} observations have "
                          f"Pareto k > {k_threshold}; their PSIS-LOO estimates are unreliable "
                          "(the elpd of this fit may be too optimistic)", DisagreeWarning,
                          stacklevel=2)
    with warnings.catch_warnings():  # ArviZ 0.23 sorts in place, which pandas deprecates
        warnings.filterwarnings("ignore", message="The inplace keyword")
        table = az.compare(loos, ic="loo", method=method)
    top = loos[table.index[0]].loo_i.values
    for by in ("item", "rater"):
        table[f"dse_{by}"] = [cluster_se(top - loos[n].loo_i.values, obs[by].to_numpy())
                              for n in table.index]
    table.insert(list(table.columns).index("dse") + 1, "dse_item", table.pop("dse_item"))
    table.insert(list(table.columns).index("dse_item") + 1, "dse_rater", table.pop("dse_rater"))
    table["dse_item_rater"] = [clustered_ses(top - loos[n].loo_i.values, obs)["item_rater"]
                               for n in table.index]
    table["elpd_loo_item"] = [item_loos[n].elpd_loo for n in table.index]
    table["pareto_k_high_item"] = [int((item_loos[n].pareto_k.values > k_threshold).sum())
                                   for n in table.index]
    by_name = dict(zip(names, fits, strict=True))
    table["interactions"] = [_interactions_text(by_name[n]) for n in table.index]
    table["pareto_k_high"] = [high[n] for n in table.index]
    comparisons = _nested_comparisons(by_name, loos, item_loos, obs, k_threshold)
    verdicts = {c["model"]: f"{' + '.join(c['extra'])}: {c['verdict']} (vs {c['baseline']})"
                for c in comparisons}
    table["verdict"] = [verdicts.get(n, "-") for n in table.index]
    table["verdict_by"] = [next((c["by"] for c in comparisons if c["model"] == n), "-")
                           for n in table.index]
    table.attrs["comparisons"] = comparisons
    specs = {n: f.spec for n, f in by_name.items()}
    notes = [not_nested_note(n, f.spec, specs) for n, f in by_name.items()
             if n not in verdicts]
    table.attrs["summary"] = ([sentence(c, k_threshold) for c in comparisons]
                              + [n for n in notes if n])
    return table


def compare_text(table: pd.DataFrame) -> str:
    """Return the verdict sentences of a :func:`compare` table, one line per comparison."""
    lines = table.attrs.get("summary")
    if lines is None:
        raise ModelError("compare_text needs the table returned by compare() (its "
                         "attrs['summary'] holds the sentences)")
    return "\n".join(lines) if lines else \
        "no fit's interactions extend another fit's: no verdict on group-by-item disagreement"


def format_comparison(table: pd.DataFrame) -> str:
    """Return a :func:`compare` table as text: the main columns, then the verdict sentences."""
    cols = ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "dse_item", "dse_rater",
            "weight", "elpd_loo_item", "pareto_k_high_item", "interactions", "pareto_k_high",
            "verdict"]
    shown = table[[c for c in cols if c in table.columns]].copy()
    for c in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "dse_item", "dse_rater",
              "elpd_loo_item"):
        if c in shown.columns:
            shown[c] = shown[c].map(lambda v: f"{v:.1f}")
    shown["weight"] = shown["weight"].map(lambda v: f"{v:.2f}")
    shown = shown.reset_index(names="model").to_string(index=False)
    return f"{shown}\n\n{compare_text(table)}"


def write_comparison(fits: Sequence[FitLike] | Mapping[str, FitLike],
                     out: str | os.PathLike[str] | None = None) -> str:
    """Compare ``fits`` (see :func:`compare`), write the table to ``out`` if given.

    Returns
    -------
    str
        The printable table and its verdicts (:func:`format_comparison`), and the file
        written.
    """
    table = compare(fits)
    text = format_comparison(table)
    if out is not None:
        write_table(out, table.reset_index(names="model"))
        text += f"\nwrote {out}"
    return text


def _names(fits: list[Fit], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(fits):
            raise ModelError(f"compare: {len(names)} names for {len(fits)} fits")
        if len(set(names)) < len(names):
            raise ModelError(f"compare: names must be distinct; got {', '.join(names)}")
        return names
    found = [f.path.name if f.path is not None else f"model{i}" for i, f in enumerate(fits)]
    if len(set(found)) < len(found):
        found = [f"{n}_{i}" for i, n in enumerate(found)]
    return found


def _observations(fit: Fit) -> pd.DataFrame:
    idata = fit.idata
    cd = idata.constant_data
    raters = np.asarray(cd.coords["rater"].values, dtype=str)
    items = np.asarray(idata.posterior.coords["item"].values, dtype=str)
    dims = np.asarray(idata.posterior.coords["dimension"].values, dtype=str)
    return pd.DataFrame({"rater": raters[cd["obs_rater"].values],
                         "item": items[cd["obs_item"].values],
                         "dimension": dims[cd["obs_dimension"].values],
                         "rating": idata.observed_data["rating"].values.astype(np.int64)})


def _check_same_observations(fits: list[Fit], names: list[str]) -> None:
    first, base = names[0], fits[0]
    ref = _observations(base)
    for name, other in zip(names[1:], fits[1:], strict=True):
        h0, h1 = base.info.get("data_hash"), other.info.get("data_hash")
        if h0 != h1:
            raise ModelError(f"fits {first} and {name} are not of the same ratings (data hash "
                             f"{str(h0)[:12]} vs {str(h1)[:12]}); LOO compares models of the "
                             "same observations only")
        obs = _observations(other)
        if len(obs) != len(ref) or not obs.equals(ref):
            dims0 = ", ".join(sorted(set(ref["dimension"])))
            dims1 = ", ".join(sorted(set(obs["dimension"])))
            raise ModelError(f"fits {first} and {name} are of the same ratings but not the same "
                             f"observations ({len(ref)} ratings of {dims0} vs {len(obs)} of "
                             f"{dims1}); fit both on the same dimensions")


def _interactions_text(fit: Fit) -> str:
    """Name the fit's interactions: a factor on every dimension, else ``dimension:factor``."""
    return ", ".join(cells_label(fit.spec.interaction_cells, fit.spec)) or "none"


def _nested_comparisons(fits: dict[str, Fit], loos: dict[str, az.ELPDData],
                        item_loos: dict[str, az.ELPDData], obs: pd.DataFrame,
                        k_threshold: float) -> list[dict]:
    """Each interaction fit against the closest fit whose interaction cells it extends."""
    out = []
    for name, f in fits.items():
        bases = [(len(g.spec.interaction_cells), loos[b].elpd_loo, b) for b, g in fits.items()
                 if extra_cells(f.spec, g.spec) is not None]
        if not bases:
            continue
        base = max(bases)[2]
        extra = cells_label(extra_cells(f.spec, fits[base].spec), f.spec)
        out.append(judge(name, base, extra, (loos[name], loos[base]),
                         (item_loos[name], item_loos[base]), obs, k_threshold))
    return out
