"""Convergence diagnostics (R-hat, ESS, divergences) and posterior predictive checks.

``ok`` requires R-hat <= 1.01 and bulk and tail ESS >= 400 (ArviZ's rank-normalised split
R-hat and ESS) on every sampled quantity a reported one uses, and no divergence:

``parameters``
    Judged one by one (a row each in ``diagnostics.json``): ``beta``, the cut points, the sds
    (``rater_sd``, ``item_sd``, ``item_group_sd`` or its free cells, ``level_sd``) and the
    correlations of the rater effects (``rater_corr``, each pair of dimensions once).
``effects``
    Judged as families (many elements each; ``diagnostics.json`` gives their worst): the item
    effects, the rater effects where the fit keeps them, the group-by-item deviations (cells a
    mapping of interactions leaves out are constant zeros and left out) and pooled level effects.
``derived``
    Quantities the fit's standard outputs report, computed from the draws
    (:mod:`disagree.model.derived`): the default contrasts (``relative_pct``, ``pp``) and the
    population's probability of a high rating on every item (P(high) of the population soft
    labels). A nonlinear function of well-mixed parameters can mix worse than any of them.

Sampling until ok (:func:`quiet_ok`) checks the same set, cheapest first, and stops at the
first failure.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from disagree.errors import DisagreeWarning
from disagree.model.derived import derived_families
from disagree.model.draws import flat_draws
from disagree.model.mixing import rhat_ess
from disagree.model.sampling import require_rater_effects
from disagree.model.spec import ModelSpec

#: The top-level parameters of prior sensitivity (``item_group_sd_free`` in place of
#: ``item_group_sd`` where interactions cover some dimensions only, see :func:`effect_posterior`).
EFFECT_VARS = ("beta", "cutpoints", "rater_sd", "item_sd", "item_group_sd", "level_sd")
#: The sampled parameters ``ok`` judges one by one (the ``parameters`` rows).
PARAMETER_VARS = ("beta", "cutpoints", "rater_sd", "rater_corr", "item_sd", "item_group_sd",
                  "level_sd")
#: The families ``ok`` judges after the parameters, ``(kind, name)``, in the order checked
#: (cheapest first, for :func:`quiet_ok`); the derived ones need the fit's specification.
FAMILIES = (("effects", "level_effect"), ("effects", "item_group_effect"),
            ("effects", "item_effect"), ("derived", "population_p_high"),
            ("effects", "rater_effect"), ("derived", "contrasts"))
RHAT_MAX, ESS_MIN = 1.01, 400
#: What the diagnostics found: the ``parameters`` rows, the family summaries, the failures.
Judgement = tuple[pd.DataFrame, dict[str, dict], list[str]]
#: The criteria: (name in failures, key in diagnostics.json, passes).
CRITERIA: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("R-hat", "rhat", lambda v: v <= RHAT_MAX),
    ("bulk ESS", "ess_bulk", lambda v: v >= ESS_MIN),
    ("tail ESS", "ess_tail", lambda v: v >= ESS_MIN))


def _measure(quantities: xr.DataArray) -> dict[str, np.ndarray]:
    """R-hat, bulk and tail ESS of a family ``(chain, draw, quantity)`` (ArviZ's numbers).

    Computed for all quantities at once by :func:`disagree.model.mixing.rhat_ess`.
    """
    values = np.asarray(quantities.transpose("chain", "draw", "quantity").values)
    return dict(zip(("rhat", "ess_bulk", "ess_tail"), rhat_ess(values), strict=True))


def effect_posterior(post: xr.Dataset, names: tuple[str, ...] = EFFECT_VARS) -> xr.Dataset:
    """Return the variables ``names`` of ``post`` that it has, as judged by the diagnostics.

    Where the interactions cover some dimensions only, ``item_group_sd`` is exactly zero in
    the other cells (constants, whose R-hat is NaN): it is replaced by the free sds
    ``item_group_sd_free`` (dim ``interaction_cell``, labels ``dimension:factor``), taken
    from ``post`` if stored there, else from the cells of ``item_group_sd`` that are not zero
    in every draw (a HalfNormal draw is never exactly zero). ``rater_corr`` (a correlation
    matrix) becomes its pairs above the diagonal (dim ``dimension_pair``, labels ``a, b``).
    """
    out = {v: post[v] for v in names if v in post}
    free = free_group_sd(post)
    if "item_group_sd" in out and free is not None:
        out = {("item_group_sd_free" if v == "item_group_sd" else v):
               (free if v == "item_group_sd" else da) for v, da in out.items()}
    if "rater_corr" in out:
        out["rater_corr"] = _corr_pairs(out["rater_corr"])
    return xr.Dataset(out)


def _corr_pairs(corr: xr.DataArray) -> xr.DataArray:
    """Return the correlations above the diagonal, ``(chain, draw, dimension_pair)``."""
    corr = corr.transpose("chain", "draw", ...)
    names = [str(v) for v in corr.coords[corr.dims[2]].values]
    rows, cols = np.triu_indices(len(names), k=1)
    return xr.DataArray(np.asarray(corr.values)[:, :, rows, cols], name="rater_corr",
                        dims=("chain", "draw", "dimension_pair"),
                        coords={"dimension_pair": [f"{names[r]}, {names[c]}"
                                                   for r, c in zip(rows, cols, strict=True)]})


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


def family(da: xr.DataArray, name: str | None = None,
           keep_constant: bool = False) -> xr.DataArray:
    """Return ``da`` as a family ``(chain, draw, quantity)``, its constant elements left out.

    Quantities are named ``name[coord, ...]`` (``name`` alone for a scalar); elements equal in
    every draw (the zeros of a dimension without group-by-item deviations) have no R-hat and
    are dropped, unless ``keep_constant`` (a parameter judged on its own, which then fails).
    """
    name = name or str(da.name)
    da = da.transpose("chain", "draw", ...)
    values = np.asarray(da.values)
    values = values.reshape(*values.shape[:2], -1)
    labels = [f"{name}[{', '.join(map(str, idx))}]" if idx else name for idx in
              itertools.product(*(da.coords[d].values if d in da.coords else range(da.sizes[d])
                                  for d in da.dims[2:]))]
    keep = np.ones(values.shape[2], dtype=bool) if keep_constant else \
        values.max(axis=(0, 1)) > values.min(axis=(0, 1))
    return xr.DataArray(values[:, :, keep], dims=("chain", "draw", "quantity"),
                        coords={"quantity": np.asarray(labels, dtype=object)[keep]})


def _families(idata: az.InferenceData, spec: ModelSpec | None
              ) -> Iterator[tuple[str, str, Callable[[], xr.DataArray]]]:
    """``(kind, name, make)`` of every family ``ok`` judges, cheapest first."""
    post = idata.posterior
    derived = derived_families(idata, spec) if spec is not None and "constant_data" in idata \
        else {}
    for kind, name in FAMILIES:
        if kind == "effects" and name in post:
            yield kind, name, lambda name=name: family(post[name])
        elif name in derived:
            yield kind, name, derived[name]


def _judge(idata: az.InferenceData, sampler: str, spec: ModelSpec | None,
           stop_early: bool) -> Judgement:
    """Return the ``parameters`` rows, the family summaries and the failures (module docstring).

    With ``stop_early``, return at the first failure (the sampling target).
    """
    families, failures = {}, []
    if sampler == "advi":
        return pd.DataFrame(columns=["parameter", "rhat", "ess_bulk", "ess_tail"]), \
            families, ["approximate posterior (ADVI): R-hat, ESS and divergences do not "
                       "apply; compare with a NUTS fit before reporting"]
    div = _divergences(idata)
    if div:
        failures.append(f"{div} divergent transition(s)")
        if stop_early:
            return pd.DataFrame(), families, failures
    post = effect_posterior(idata.posterior, PARAMETER_VARS)
    parameters = xr.concat([family(post[v], keep_constant=True) for v in post.data_vars],
                           dim="quantity") if post.data_vars else None
    stats = _measure(parameters) if parameters is not None else {}
    labels = parameters.coords["quantity"].values if parameters is not None else []
    for what, key, passes in CRITERIA:
        for label, value in zip(labels, stats.get(key, []), strict=True):
            if not passes(value):
                sign = (f"{value:.3f} (> {RHAT_MAX})" if key == "rhat"
                        else f"{value:.0f} (< {ESS_MIN})")
                failures.append(f"{what} of {label} is {sign}")
        if stop_early and failures:
            return pd.DataFrame(), families, failures
    table = pd.DataFrame({"parameter": [str(v) for v in labels],
                          **{k: np.asarray(stats.get(k, []), dtype=float)
                             for k in ("rhat", "ess_bulk", "ess_tail")}})
    for kind, name, make in _families(idata, spec):
        quantities = make()
        if not quantities.sizes["quantity"]:
            continue
        summary = families.setdefault(kind, {})[name] = {"n": quantities.sizes["quantity"]}
        labels = quantities.coords["quantity"].values
        measured = _measure(quantities)
        for what, key, passes in CRITERIA:
            values = measured[key]
            bad = ~passes(values)  # NaN fails
            worst = int(np.nanargmax(values) if key == "rhat" else np.nanargmin(values)) \
                if np.isfinite(values).any() else 0
            summary |= {f"{key}_{'max' if key == 'rhat' else 'min'}": _nan_none(values[worst]),
                        f"worst_{key}": str(labels[worst])}
            if bad.any():
                bound = f"above {RHAT_MAX}" if key == "rhat" else f"below {ESS_MIN}"
                value = f"{values[worst]:.3f}" if key == "rhat" else f"{values[worst]:.0f}"
                failures.append(f"{what} of {int(bad.sum())} of {len(values)} {name} {bound} "
                                f"(worst {labels[worst]} {value})")
                if stop_early:
                    return table, families, failures
    return table, families, failures


def _divergences(idata: az.InferenceData) -> int:
    if "sample_stats" in idata and "diverging" in idata.sample_stats:
        return int(idata.sample_stats["diverging"].sum())
    return 0


def compute_diagnostics(idata: az.InferenceData, sampler: str,
                        seconds: dict[str, float], spec: ModelSpec | None = None,
                        judged: Judgement | None = None) -> dict:
    """Return the ``diagnostics.json`` content and warn by name about what failed.

    Parameters
    ----------
    idata : InferenceData
        The posterior (and sample stats; with ``constant_data`` for the derived quantities).
    sampler : str
        The back-end (``"advi"``: no R-hat or ESS).
    seconds : dict
        ``compile`` and ``sampling`` times, recorded.
    spec : ModelSpec, optional
        The fit's specification; without it (or without ``constant_data``) the derived
        quantities are not judged.
    judged : tuple, optional
        The judgement :func:`quiet_ok` recorded for these very draws (not computed again).

    Returns
    -------
    dict
        ``ok``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min`` (over everything ``ok``
        judges), ``divergences``, ``sampler``, ``seconds``, ``failures`` (one line per
        problem), ``parameters`` (R-hat and ESS of every parameter judged one by one),
        ``effects`` and ``derived`` (per family: ``n``, ``rhat_max``, ``ess_bulk_min``,
        ``ess_tail_min`` and the name of the worst quantity for each, ``worst_rhat``,
        ``worst_ess_bulk``, ``worst_ess_tail``; see the module docstring).
    """
    table, families, failures = judged or _judge(idata, sampler, spec, stop_early=False)
    for line in failures[:10]:
        warnings.warn(f"fit diagnostics: {line}", DisagreeWarning, stacklevel=3)
    summaries = [s for kind in families.values() for s in kind.values()]

    def extreme(key: str, pick: Callable) -> float | None:
        top = f"{key}_{'max' if key == 'rhat' else 'min'}"
        values = [v for v in [*table[key], *(s[top] for s in summaries)]
                  if v is not None and not pd.isna(v)]
        return float(pick(values)) if values else None

    return {
        "ok": not failures,
        "rhat_max": extreme("rhat", max),
        "ess_bulk_min": extreme("ess_bulk", min),
        "ess_tail_min": extreme("ess_tail", min),
        "divergences": _divergences(idata),
        "sampler": sampler,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "failures": failures,
        "parameters": table.round(4).to_dict(orient="records"),
        **{kind: {name: {k: round(v, 4) if isinstance(v, float) else v
                         for k, v in s.items()} for name, s in families.get(kind, {}).items()}
           for kind in ("effects", "derived")},
    }


def quiet_ok(idata: az.InferenceData, sampler: str, spec: ModelSpec | None = None,
             constant_data: xr.Dataset | None = None, memo: dict | None = None) -> bool:
    """Whether ``idata`` meets the ``ok`` thresholds, without warnings (a sampling target).

    Judges what :func:`compute_diagnostics` judges, cheapest first, and stops at the first
    failure. ``constant_data`` (the fit's data, for the derived quantities) is added to a
    trace that lacks it. A judgement that passes is put in ``memo`` under the number of draws
    a chain, for :func:`compute_diagnostics` (``judged``) to reuse.
    """
    if constant_data is not None and "constant_data" not in idata:
        groups = {"posterior": idata.posterior, "constant_data": constant_data}
        if "sample_stats" in idata:
            groups["sample_stats"] = idata.sample_stats
        idata = az.InferenceData(**groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        judgement = _judge(idata, sampler, spec, stop_early=True)
    if memo is not None and not judgement[2]:
        memo[idata.posterior.sizes["draw"]] = judgement
    return not judgement[2]


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
    derived = diag.get("derived") or {}
    if derived:
        lines.append("  derived: " + "; ".join(
            f"{name} R-hat max {num(d['rhat_max'], '.4f')}, bulk/tail ESS min "
            f"{num(d['ess_bulk_min'], '.0f')}/{num(d['ess_tail_min'], '.0f')}"
            for name, d in derived.items()))
    if "extension" in diag:
        lines.append(f"  {diag['extension']['note']}")
    lines += [f"  - {f}" for f in diag["failures"][:max_failures]]
    if len(diag["failures"]) > max_failures:
        lines.append(f"  ... ({len(diag['failures'])} problems in all)")
    return "\n".join(lines)
