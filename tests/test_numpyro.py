"""The numpyro (JAX) back-end on the CPU: same model, same named posterior, same contrasts.

A small one-dimension survey (150 raters, 2,250 ratings) is fitted with nutpie (the default) and
with numpyro (chains vectorised, float64); every contrast's posterior mean must agree within a
tolerance built from both fits' Monte Carlo standard errors. Skipped when JAX or numpyro is not
installed (``pip install -e .[jax]``). The GPU timings are in ``benchmarks/gpu_fit.py``.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

pytest.importorskip("jax", reason="the numpyro back-end needs JAX: pip install -e .[jax]")
pytest.importorskip("numpyro", reason="the numpyro back-end needs numpyro: pip install -e .[jax]")

from disagree.data import simulate_survey  # noqa: E402
from disagree.data.scale import high_threshold  # noqa: E402
from disagree.model import fit  # noqa: E402
from disagree.model.contrasts import cells_from_design  # noqa: E402
from disagree.ordinal import coef_names, standardised_contrasts  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
FACTORS = ["gender", "politics"]
REFERENCE = {"gender": "female", "politics": "liberal"}
SETTINGS = dict(draws=400, tune=400, chains=2, seed=1, progress=False)


@pytest.fixture(scope="module")
def fits():
    survey = simulate_survey(seed=5, n_raters=150, n_prompts=12, prompts_per_rater=3,
                             dimensions=("toxicity",))
    return {s: fit(survey.table, FACTORS, REFERENCE, sampler=s, **SETTINGS)
            for s in ("nutpie", "numpyro")}


def contrast_draws(result) -> dict[tuple[str, str, str], np.ndarray]:
    """Each contrast's draws, shape (chain, draw), computed as ``contrasts_table`` does."""
    post, cd = result.idata.posterior, result.idata.constant_data
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    flat = post.stack(sample=("chain", "draw"))  # chain-major, like contrasts_table
    levels = result.spec.levels
    items = np.unique(cd["obs_item"].values)
    beta = flat["beta"].values[0].T
    res = standardised_contrasts(
        flat["cutpoints"].values[0].T, beta, flat["item_effect"].values[items, 0].T,
        flat["rater_sd"].values[0], cells_from_design(cd["rater_design"].values, levels),
        levels, high_threshold(result.spec.scale))
    out = {}
    for p, (factor, level) in enumerate(coef_names(levels)):
        for measure, values in {"log_odds": beta[:, p], **res[(factor, level)]}.items():
            out[(factor, level, measure)] = np.asarray(values).reshape(chains, draws)
    return out


def mcse_mean(draws: np.ndarray) -> float:
    """Monte Carlo standard error of the posterior mean of (chain, draw) draws."""
    return np.asarray(az.mcse(draws, method="mean")).item()


def test_numpyro_matches_nutpie(fits):
    # one test, not two: under pytest-xdist each worker would fit the module fixture again
    same_named_posterior(fits)
    contrasts_agree_within_mcse(fits)


def same_named_posterior(fits):
    a, b = fits["nutpie"].idata.posterior, fits["numpyro"].idata.posterior
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        assert a[name].dims == b[name].dims and a[name].shape == b[name].shape, name
        for dim in a[name].dims[2:]:
            assert list(a[name][dim].values) == list(b[name][dim].values), (name, dim)
    diag = fits["numpyro"].diagnostics
    assert diag["sampler"] == "numpyro" and set(diag["seconds"]) == {"compile", "sampling"}
    # 2 x 400 draws: R-hat varies by a few hundredths between seeds (1.023 and 1.042 for seeds
    # 1 and 2, min bulk ESS 273 and 485); a stuck chain gives far more. Agreement with nutpie
    # is the contrasts' check below.
    assert diag["divergences"] == 0 and diag["rhat_max"] < 1.05, diag["rhat_max"]
    assert b.attrs["jax_dtype"] == "float64" and b["beta"].dtype == np.float64


def contrasts_agree_within_mcse(fits):
    tables = {s: f.contrasts().set_index(["factor", "level", "measure"])
              for s, f in fits.items()}
    draws = {s: contrast_draws(f) for s, f in fits.items()}
    checked = 0
    for key, a in draws["nutpie"].items():
        if key not in tables["nutpie"].index:  # e.g. mean_diff: not in the default table
            continue
        b = draws["numpyro"][key]
        for s, d in (("nutpie", a), ("numpyro", b)):  # the helper matches the library
            assert tables[s].loc[key, "estimate"] == pytest.approx(float(d.mean()), rel=1e-9)
        mcse = np.hypot(mcse_mean(a), mcse_mean(b))
        slack = 0.02 * float(np.sqrt((a.var() + b.var()) / 2))  # a fiftieth of a posterior sd
        diff = abs(float(a.mean()) - float(b.mean()))
        assert diff < 4 * mcse + slack, (key, diff, mcse)
        checked += 1
    assert checked == 3 * 4  # 4 coefficients x (log_odds, relative_pct, pp)
