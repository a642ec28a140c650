"""Convergence judged on what is reported: every sampled parameter a reported quantity uses, tail
ESS too, and the derived quantities (contrasts, population P(high) per item) from the draws."""

from __future__ import annotations

import json
import re

import arviz as az
import numpy as np
import pytest
import xarray as xr

from disagree.data import simulate_survey
from disagree.errors import DisagreeWarning
from disagree.model.derived import contrast_quantities, mixture_high, population_p_high
from disagree.model.diagnostics import compute_diagnostics, effect_posterior, quiet_ok
from disagree.model.fitting import constant_data
from disagree.model.spec import make_spec, model_data
from disagree.ordinal import gauss_hermite

pytestmark = pytest.mark.filterwarnings("ignore:fit diagnostics")
N_CHAIN, N_DRAW = 4, 1000


def clustered_tails(rng: np.random.Generator) -> np.ndarray:
    """Draws of N(0, 1) whose 5% tails come in two runs a chain, low and high alternating.

    Each chain holds the same values as an iid sample, so R-hat and bulk ESS (of the rank-
    normalised values, whose alternating signs cancel) are fine, while the indicator of a tail
    is clustered: tail ESS about 190.
    """
    out = np.empty((N_CHAIN, N_DRAW))
    for c in range(N_CHAIN):
        x = rng.normal(size=N_DRAW)
        lo, hi = np.quantile(x, [0.05, 0.95])
        low, high, mid = x[x < lo], x[x > hi], x[(x >= lo) & (x <= hi)]
        tails = np.empty(2 * len(low))
        tails[0::2], tails[1::2] = low, high
        out[c] = np.concatenate([np.concatenate(pair) for pair in zip(
            np.array_split(mid, 2), np.array_split(tails, 2), strict=True)])
    return out


def test_tail_ess_is_required():
    rng = np.random.default_rng(0)
    idata = az.from_dict(
        posterior={"beta": rng.normal(size=(N_CHAIN, N_DRAW, 1, 1)),
                   "rater_sd": 1 + 0.1 * clustered_tails(rng)[..., None]},
        coords={"dimension": ["tox"], "factor_level": ["g[m]"]},
        dims={"beta": ["dimension", "factor_level"], "rater_sd": ["dimension"]})
    with pytest.warns(DisagreeWarning, match=re.escape("tail ESS of rater_sd[tox] is")):
        diag = compute_diagnostics(idata, "nutpie", {})
    row = {r["parameter"]: r for r in diag["parameters"]}["rater_sd[tox]"]
    assert row["rhat"] <= 1.01 and row["ess_bulk"] >= 2000 and row["ess_tail"] < 300
    assert diag["ok"] is False and len(diag["failures"]) == 1
    assert diag["failures"][0].startswith("tail ESS of rater_sd[tox] is ")
    assert diag["ess_tail_min"] == pytest.approx(row["ess_tail"])
    assert quiet_ok(idata, "nutpie") is False


@pytest.fixture(scope="module")
def mixed_up():
    """A hand-built posterior whose every sampled parameter mixes well, but in two chains the
    first item's effect moves with the cut point 3|4 and in the other two against it: each
    is N(., .) in every chain, while their difference, which P(high) of that item follows,
    has an sd of 0.75 in two chains and 1.25 in the others."""
    table = simulate_survey(seed=1, n_raters=40, n_prompts=4, prompts_per_rater=2,
                            dimensions=("toxicity",)).table
    spec = make_spec(table, ["gender"], {"gender": "female"})
    data = model_data(table, spec)
    rng = np.random.default_rng(2)
    shape = (N_CHAIN, N_DRAW)
    n_items, n_coef = len(data.item_ids), len(spec.coef_labels)
    z1, z2 = rng.normal(size=shape), rng.normal(size=shape)
    rho = np.array([0.99, 0.99, -0.99, -0.99])[:, None]
    cut = np.array([-2.0, -0.7, 0.7, 2.0]) + 0.1 * rng.normal(size=(*shape, 4))
    cut[..., 2] = 0.7 + 0.25 * (rho * z1 + np.sqrt(1 - rho**2) * z2)
    items = rng.normal(size=(*shape, n_items))
    items[..., 0] = z1
    post = {"beta": -0.3 + 0.1 * rng.normal(size=(*shape, 1, n_coef)),
            "cutpoints": cut[:, :, None], "rater_sd": 1 + 0.05 * rng.normal(size=(*shape, 1)),
            "item_sd": 1 + 0.05 * rng.normal(size=(*shape, 1)), "item_effect": items[..., None]}
    idata = az.from_dict(
        posterior=post,
        coords={"dimension": ["toxicity"], "factor_level": spec.coef_labels,
                "cutpoint": ["1|2", "2|3", "3|4", "4|5"], "item": data.item_ids},
        dims={"beta": ["dimension", "factor_level"], "cutpoints": ["dimension", "cutpoint"],
              "rater_sd": ["dimension"], "item_sd": ["dimension"],
              "item_effect": ["item", "dimension"]})
    constants = constant_data(data, spec)
    with_data = az.InferenceData(posterior=idata.posterior, constant_data=constants)
    return with_data, spec, constants, data.item_ids[0]


def test_ok_is_false_when_only_a_derived_quantity_mixes_badly(mixed_up):
    idata, spec, constants, first_item = mixed_up
    n_items = idata.posterior.sizes["item"]
    sampled_only = compute_diagnostics(idata, "nutpie", {})  # no spec: no derived quantities
    assert sampled_only["ok"] is True and sampled_only["effects"]["item_effect"]["n"] == n_items
    with pytest.warns(DisagreeWarning, match="population_p_high above 1.01"):
        diag = compute_diagnostics(idata, "nutpie", {}, spec)
    assert diag["ok"] is False
    assert all(r["rhat"] <= 1.01 and min(r["ess_bulk"], r["ess_tail"]) >= 400
               for r in diag["parameters"])
    assert diag["effects"]["item_effect"]["rhat_max"] <= 1.01
    p_high = diag["derived"]["population_p_high"]
    assert p_high["worst_rhat"] == f"p_high[toxicity, {first_item}]"
    assert p_high["rhat_max"] > 1.03
    assert diag["rhat_max"] == pytest.approx(p_high["rhat_max"], abs=1e-4)
    assert diag["derived"]["contrasts"]["n"] == 2 * len(spec.coef_labels)
    assert all(re.search(r" (population_p_high|contrasts) (above|below) ", line)
               for line in diag["failures"]), diag["failures"]
    assert any(line.startswith(f"R-hat of 1 of {n_items} population_p_high above 1.01 (worst "
                               f"p_high[toxicity, {first_item}] ") for line in diag["failures"])
    # sampling until ok judges the same set: a trace without constant_data gets the fit's
    trace = az.InferenceData(posterior=idata.posterior)
    assert quiet_ok(trace, "nutpie", spec, constants) is False
    assert quiet_ok(trace, "nutpie") is True  # what it judged before: the sampled parameters


def test_a_passing_judgement_is_remembered_for_its_draws(mixed_up):
    idata, spec, constants, _ = mixed_up
    memo: dict = {}
    assert quiet_ok(idata, "nutpie", memo=memo) is True and list(memo) == [N_DRAW]
    assert compute_diagnostics(idata, "nutpie", {}, judged=memo[N_DRAW]) == \
        compute_diagnostics(idata, "nutpie", {})
    assert quiet_ok(idata, "nutpie", spec, constants, memo={}) is False


def test_rater_corr_is_judged_once_per_pair_of_dimensions():
    rng = np.random.default_rng(0)
    corr = np.broadcast_to(np.eye(3), (2, 50, 3, 3)).copy()
    corr[..., 0, 1] = corr[..., 1, 0] = rng.uniform(-1, 1, (2, 50))
    corr[..., 0, 2] = corr[..., 2, 0] = rng.uniform(-1, 1, (2, 50))
    corr[..., 1, 2] = corr[..., 2, 1] = rng.uniform(-1, 1, (2, 50))
    dims = ["a", "b", "c"]
    post = xr.Dataset({"rater_corr": (("chain", "draw", "dimension", "dimension_bis"), corr)},
                      coords={"dimension": dims, "dimension_bis": dims})
    pairs = effect_posterior(post, ("rater_corr",))["rater_corr"]
    assert list(pairs.coords["dimension_pair"].values) == ["a, b", "a, c", "b, c"]
    assert np.array_equal(pairs.values[..., 2], corr[..., 1, 2])


def test_mixture_high_is_the_rater_effect_integral_for_any_sd():
    rng = np.random.default_rng(3)
    n_draws, n_cells, n_prof, n_items = 6, 5, 2, 7
    shift = rng.normal(0, 1, (n_draws, n_cells))
    sigma = np.array([0.0, 1e-5, 0.01, 0.3, 1.0, 2.5])
    effects = rng.normal(0, 1, (n_draws, n_prof, n_items))
    profile, w = rng.integers(0, n_prof, n_cells), rng.random(n_cells)
    x, g = gauss_hermite(150)
    z = (shift[:, :, None, None] + sigma[:, None, None, None] * x[:, None]
         + effects[:, profile][:, :, None, :])
    direct = np.einsum("scmj,c,m->sj", 1 / (1 + np.exp(-z)), w / w.sum(), g)
    assert np.abs(mixture_high(shift, sigma, effects, profile, w) - direct).max() < 1e-12
    small = mixture_high(shift, sigma, effects, profile, w, chunk_size=50)  # blocks of draws
    assert np.abs(small - direct).max() < 1e-12


@pytest.mark.slow
def test_a_fit_reports_its_derived_quantities(plain_fit, tmp_path):
    """diagnostics.json of a fit judges the contrasts and the population's P(high) per item,
    and these are the draws of what the contrasts table and the soft labels report."""
    from disagree.labels import soft_labels

    plain_fit.save(tmp_path / "fit")
    diag = json.loads((tmp_path / "fit" / "diagnostics.json").read_text())
    spec = plain_fit.spec
    n_items = plain_fit.idata.posterior.sizes["item"]
    assert diag["derived"]["contrasts"]["n"] == 2 * len(spec.coef_labels)
    assert diag["derived"]["population_p_high"]["n"] == n_items
    for name, family in diag["derived"].items():
        assert {"rhat_max", "ess_bulk_min", "ess_tail_min", "worst_rhat", "worst_ess_bulk",
                "worst_ess_tail"} <= set(family), name
        assert diag["rhat_max"] >= family["rhat_max"]
        assert diag["ess_tail_min"] <= family["ess_tail_min"]
    assert re.fullmatch(r"(relative_pct|pp)\[emotional_awareness, \w+\[[\w -]+\]\]",
                        diag["derived"]["contrasts"]["worst_ess_bulk"])
    assert {"item_effect", "rater_effect", "item_group_effect"} <= set(diag["effects"])
    assert diag["effects"]["rater_effect"]["n"] == plain_fit.idata.posterior.sizes["rater"]
    assert re.search(r"\n  derived: population_p_high R-hat max [\d.]+, bulk/tail ESS min \d+/\d+; "
                     r"contrasts R-hat max", plain_fit.summary())

    table = plain_fit.contrasts()
    draws = contrast_quantities(plain_fit.idata, spec)
    for measure in ("relative_pct", "pp"):
        for row in table[table["measure"] == measure].itertuples():
            name = f"{measure}[{row.dimension}, {row.factor}[{row.level}]]"
            assert float(draws.sel(quantity=name).mean()) == pytest.approx(row.estimate,
                                                                           abs=1e-9)
    labels = soft_labels(plain_fit, unit="population")
    high = (labels["p_4"] + labels["p_5"]).to_numpy()
    p_high = population_p_high(plain_fit.idata, spec).mean(("chain", "draw"))
    expected = [f"p_high[{d}, {j}]" for d, j in zip(labels["dimension"], labels["item_id"],
                                                     strict=True)]
    assert np.abs(p_high.sel(quantity=expected).values - high).max() < 1e-6
