"""Model comparison (PSIS-LOO from the stored posterior) and power-scaling prior sensitivity.

Four short fits: one survey simulated with strong politics-by-item disagreement and none by
gender, fitted without interactions, with politics and with gender; and a tiny survey with a
known politics effect of 1 log-odds fitted under a far too tight prior on the coefficients.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from scipy.special import expit

import disagree as dg
from disagree.errors import DisagreeWarning, ModelError
from disagree.model import diagnose, fit
from disagree.model.loo import (
    _log_interval,
    compare,
    compare_text,
    format_comparison,
    pointwise_loglik,
)
from disagree.model.sensitivity import prior_sensitivity, sensitive_parameters, sensitivity_text

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
DIM = "emotional_awareness"
SETTINGS = dict(draws=300, tune=300, chains=2, seed=1, progress=False)
INTERACTIONS = {"base": None, "politics": ["politics"], "gender": ["gender"]}
REFERENCE = {"gender": "female", "politics": "liberal"}
CONSERVATIVE = f"beta[{DIM}, politics[conservative]]"


@pytest.fixture(scope="module")
def survey(interaction_survey):
    return interaction_survey


def _saved(fits: dict, root) -> dict:
    for name, result in fits.items():
        result.save(root / name)
    return {name: root / name for name in fits}


@pytest.fixture(scope="module")
def fit_dirs(interaction_fit, interaction_fit_without, tmp_path_factory):
    """The survey with a politics x item interaction, fitted without and with it."""
    return _saved({"base": interaction_fit_without, "politics": interaction_fit},
                  tmp_path_factory.mktemp("compare"))


@pytest.fixture(scope="module")
def plain_dirs(plain_fit, plain_fit_without, tmp_path_factory):
    """The survey without interactions, fitted without and with a politics interaction."""
    return _saved({"base": plain_fit_without, "politics": plain_fit},
                  tmp_path_factory.mktemp("compare-plain"))


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    tiny = dg.simulate_survey(5, n_raters=150, n_prompts=10, dimensions=[DIM], interactions={},
                              effects={f"{DIM}|politics|conservative": 1.0}, targets={})
    return fit(tiny.table, ["politics"], {"politics": "liberal"}, priors={"beta_sd": 0.05},
               out_dir=tmp_path_factory.mktemp("tight"), **SETTINGS)


def test_log_interval_is_exact_and_normalised():
    cut = np.array([-1.5, -0.2, 0.4, 2.0])
    padded = np.concatenate([[-np.inf], cut, [np.inf]])
    for eta in (-40.0, -3.0, 0.3, 5.0, 40.0):
        logp = _log_interval(np.full(5, eta), padded[:-1], padded[1:])
        assert np.all(np.isfinite(logp))
        assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12)
        if abs(eta) < 10:  # where the naive difference of probabilities is accurate
            naive = np.log(np.diff(expit(padded - eta)))
            np.testing.assert_allclose(logp, naive, rtol=1e-12)


def test_pointwise_loglik_matches_a_hand_computation(survey, fit_dirs):
    result = dg.load_fit(fit_dirs["politics"])
    ll = pointwise_loglik(result)
    post, cd = result.idata.posterior, result.idata.constant_data
    n_obs = result.idata.observed_data.sizes["obs"]
    assert ll.dims == ("chain", "draw", "obs") and ll.dtype == np.float64
    assert ll.shape == (2, 500, n_obs)
    raters = survey.table.raters
    for chain, draw in [(0, 3), (1, 250)]:
        p = post.sel(chain=chain, draw=draw)
        for n in (0, 7, n_obs - 1):
            rater = str(cd["rater"].values[int(cd["obs_rater"][n])])
            item = str(post["item"].values[int(cd["obs_item"][n])])
            dim = str(post["dimension"].values[int(cd["obs_dimension"][n])])
            y = int(result.idata.observed_data["rating"][n])
            x = cd["rater_design"].sel(rater=rater).values
            level = f"politics[{raters.loc[rater, 'politics']}]"
            eta = (float(x @ p["beta"].sel(dimension=dim).values)
                   + float(p["rater_effect"].sel(rater=rater, dimension=dim))
                   + float(p["item_effect"].sel(item=item, dimension=dim))
                   + float(p["item_group_effect"].sel(item=item, interaction_level=level,
                                                      dimension=dim)))
            c = p["cutpoints"].sel(dimension=dim).values
            upper = expit(c[y - 1] - eta) if y < 5 else 1.0
            lower = expit(c[y - 2] - eta) if y > 1 else 0.0
            assert float(ll.sel(chain=chain, draw=draw)[n]) == pytest.approx(
                np.log(upper - lower), rel=1e-10)


def test_chunked_loglik_equals_one_chunk(fit_dirs):
    result = dg.load_fit(fit_dirs["politics"])
    whole = pointwise_loglik(result, chunk_draws=10**6)
    np.testing.assert_allclose(pointwise_loglik(result, chunk_draws=7).values, whole.values,
                               rtol=1e-13, atol=0)
    with pytest.raises(ModelError, match="chunk_draws=0"):
        pointwise_loglik(result, chunk_draws=0)


def test_loo_supports_the_simulated_interaction(fit_dirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisagreeWarning)  # a few high Pareto k at 1000 draws
        table = dg.compare([fit_dirs["base"], fit_dirs["politics"]])
    assert {"rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "weight", "interactions",
            "pareto_k_high", "verdict"} <= set(table.columns)
    assert table.index[0] == "politics"
    assert table.loc["base", "interactions"] == "none"
    assert table.loc["politics", "verdict"] == "politics: supported (vs base)"
    assert table.loc["base", "verdict"] == "-"
    found = {c["model"]: c for c in table.attrs["comparisons"]}
    assert found["politics"]["z"] > 2
    text = compare_text(table)
    assert "politics: the data support groups disagreeing about items (elpd difference" in text
    shown = format_comparison(table)
    assert shown.splitlines()[0].split()[:4] == ["model", "rank", "elpd_loo", "se"]
    assert shown.endswith(text)


def test_loo_does_not_prefer_interactions_on_data_without(plain_dirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisagreeWarning)
        table = dg.compare(plain_dirs)
    assert table.loc["politics", "verdict"] == "politics: not supported (vs base)"
    found = {c["model"]: c for c in table.attrs["comparisons"]}
    # not better than the base model (it may be worse: it pays for its extra parameters)
    assert found["politics"]["elpd_diff"] < 2 * found["politics"]["se"]
    assert "politics: the data do not support groups disagreeing about items" in \
        compare_text(table)


def test_compare_needs_fits_of_the_same_observations(fit_dirs, tight):
    base = dg.load_fit(fit_dirs["base"])
    with pytest.raises(ModelError, match="fits base and tight are not of the same ratings"):
        compare([base, tight], names=["base", "tight"])
    fewer = base.idata.isel(obs=slice(0, -1), groups=["observed_data", "constant_data"])
    with pytest.raises(ModelError, match="base and fewer are of the same ratings but not the "
                                         "same observations"):
        compare({"base": base, "fewer": dataclasses.replace(base, idata=fewer)})
    with pytest.raises(ModelError, match="at least two fits"):
        compare([base])
    with pytest.raises(ModelError, match="2 names for 3 fits"):
        compare([base, base, base], names=["a", "b"])


def test_a_too_tight_prior_is_flagged(tight, tmp_path):
    table = prior_sensitivity(tight)
    assert list(table.columns) == ["parameter", "prior", "likelihood", "diagnosis"]
    row = table.set_index("parameter").loc[CONSERVATIVE]
    assert row.prior >= 0.05 and row.diagnosis != "-"
    assert table.attrs["sensitive"] == sensitive_parameters(table)
    assert CONSERVATIVE in table.attrs["sensitive"]
    assert CONSERVATIVE in sensitivity_text(table)
    with pytest.warns(DisagreeWarning, match=r"prior sensitivity: .*politics\[conservative\]"):
        written = diagnose(tight, tmp_path)
    assert tmp_path / "prior_sensitivity.csv" in written


def test_default_priors_on_ample_data_are_not_flagged(fit_dirs):
    table = prior_sensitivity(fit_dirs["base"])
    beta = table[table["parameter"].str.startswith("beta[")]
    assert len(beta) == 4 and (beta["diagnosis"] == "-").all(), beta
    assert (beta["likelihood"] > 0.05).all()
