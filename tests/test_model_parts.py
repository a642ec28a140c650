"""Model pieces that need no sampling: likelihood, specification, contrasts arithmetic,
diagnostics logic and population cells."""

from __future__ import annotations

import re

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy.special import expit

from disagree.data import load_ratings, simulate_survey
from disagree.errors import DisagreeWarning, ModelError
from disagree.model import bambi_formula, make_spec, population_cells
from disagree.model.build import ordinal_loglik
from disagree.model.contrasts import cells_from_design
from disagree.model.diagnostics import compute_diagnostics
from disagree.ordinal import design_matrix, gauss_hermite, standardised_contrasts


@pytest.fixture(scope="module")
def small():
    return simulate_survey(seed=3, n_raters=120, n_prompts=12).table


def test_observed_category_loglik_equals_ordered_logistic():
    rng = np.random.default_rng(0)
    n, k, groups = 400, 5, 3
    y = rng.integers(0, k, n)
    g = rng.integers(0, groups, n)
    eta = rng.normal(0, 3, n)
    cuts = np.sort(rng.normal(0, 2, (groups, k - 1)), axis=1)
    ours = ordinal_loglik(y, g, [(pt.as_tensor(eta), np.arange(n), n)], pt.as_tensor(cuts), k,
                          groups).eval()
    ref = pm.logp(pm.OrderedLogistic.dist(eta=eta, cutpoints=cuts[g]), y).sum().eval()
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-8)
    # by hand for one observation in the middle category
    one = ordinal_loglik(np.array([2]), np.array([0]), [(pt.as_tensor([0.3]), np.array([0]), 1)],
                         pt.as_tensor(np.array([[-1.0, 0.0, 1.0, 2.0]])), 5, 1).eval()
    assert one == pytest.approx(np.log(expit(1.0 - 0.3) - expit(0.0 - 0.3)), rel=1e-12)


def test_spec_checks_name_the_problem(small):
    with pytest.raises(ModelError, match=re.escape("unknown factor 'religion'; rater "
                                                   "attributes are: gender, politics")):
        make_spec(small, ["religion"])
    with pytest.raises(ModelError, match=re.escape("factor 'prompt_id' is an item attribute,"
                                                   " not a rater attribute")):
        make_spec(small, ["prompt_id"])
    with pytest.raises(ModelError, match=re.escape("reference level 'Female' for 'gender' does "
                                                   "not exist; levels are: female, male")):
        make_spec(small, ["gender"], {"gender": "Female"})
    with pytest.raises(ModelError, match=re.escape("unknown dimension empathy; the data has")):
        make_spec(small, ["gender"], dimensions=["empathy"])
    with pytest.raises(ModelError, match=re.escape("unknown prior beta_scale; priors are")):
        make_spec(small, ["gender"], priors={"beta_scale": 2.0})
    frame = small.long()
    frame.loc[frame.dimension == "toxicity", "rating"] = frame.loc[
        frame.dimension == "toxicity", "rating"].clip(upper=3)
    mixed = load_ratings(frame, scale={"toxicity": 3, "helpfulness": 5,
                                       "emotional_awareness": 5, "sensitivity": 5,
                                       "stereotypical_bias": 5})
    with pytest.raises(ModelError, match="use different scales .*toxicity: 3.*fit them "
                                         "separately or convert with to_scale first"):
        make_spec(mixed, ["gender"])


def test_bambi_formula_uses_treatment_dummies(small):
    spec = make_spec(small, ["gender", "age"], {"gender": "female", "age": "30-44"},
                     dimensions=["toxicity"])
    assert bambi_formula(spec) == ("rating ~ 0 + gender_male + gender_non_binary + age_18_29 + "
                                   "age_45_59 + age_60 + (1|rater_id) + (1|item_id)")


def test_standardised_contrasts_equal_brute_force():
    rng = np.random.default_rng(5)
    levels = {"g": ["f", "m"], "p": ["l", "c", "m"]}
    cells = pd.DataFrame({"g": rng.choice(["f", "m"], 30), "p": rng.choice(["l", "c", "m"], 30)})
    s, j, k = 2, 15, 5
    beta = rng.normal(0, 0.7, (s, 3))
    cut = np.sort(rng.normal(0, 1.5, (s, k - 1)), axis=1)
    v = rng.normal(0, 1, (s, j))
    sigma = np.array([0.5, 1.2])
    res = standardised_contrasts(cut, beta, v, sigma, cells, levels, threshold=4)
    x_nodes, w_nodes = gauss_hermite(60)
    for draw in range(s):
        p_high = {}
        for setting in ("l", "c"):
            x = design_matrix(cells.assign(p=setting), levels)
            eta = x @ beta[draw]
            lin = eta[:, None, None] + v[draw][None, :, None] + sigma[draw] * x_nodes
            p_high[setting] = (expit(lin - cut[draw, 2]) @ w_nodes).mean()
        expected = 100 * (p_high["c"] / p_high["l"] - 1)
        # the tabulated curve is accurate to 1e-6 in probability: ~1e-3 in percent units at most
        assert res[("p", "c")]["relative_pct"][draw] == pytest.approx(expected, abs=1e-3)
        assert res[("p", "c")]["pp"][draw] == pytest.approx(
            100 * (p_high["c"] - p_high["l"]), abs=1e-4)


def test_cells_from_design_inverts_design_matrix():
    levels = {"g": ["f", "m", "nb"], "c": ["US", "DE"]}
    cells = pd.DataFrame({"g": ["m", "f", "nb", "f"], "c": ["DE", "US", "US", "DE"]})
    back = cells_from_design(design_matrix(cells, levels), levels)
    assert back.astype(str).equals(cells)


def test_population_cells_keep_the_sample_mix_of_other_factors():
    levels = {"g": ["f", "m"], "p": ["l", "c"]}
    sample = pd.DataFrame({"g": ["f", "f", "m", "m"], "p": ["l", "c", "c", "c"]})
    pop = pd.DataFrame({"g": ["f", "m"], "proportion": [30, 10]})
    cells, w = population_cells(pop, sample, levels)
    got = dict(zip(zip(cells["g"], cells["p"], strict=True), w, strict=True))
    # p keeps the sample's mix within each population cell: f 1/2 l, 1/2 c; m all c
    assert got == pytest.approx({("f", "c"): 0.75 * 0.5, ("f", "l"): 0.75 * 0.5,
                                 ("m", "c"): 0.25 * 1.0})
    with pytest.raises(ModelError, match=re.escape(
            "population: level(s) x of 'g' are not in the fit; levels are f, m")):
        population_cells(pd.DataFrame({"g": ["x"], "proportion": [1]}), sample, levels)
    with pytest.raises(ModelError, match=re.escape("population table needs a 'proportion' "
                                                   "column")):
        population_cells(pd.DataFrame({"g": ["f"]}), sample, levels)


def _idata(shift: float, n_div: int = 0) -> az.InferenceData:
    rng = np.random.default_rng(1)
    beta = rng.normal(0, 1, (2, 2000, 1, 2))
    beta[1] += shift  # second chain elsewhere: R-hat explodes
    diverging = np.zeros((2, 2000), bool)
    diverging[0, :n_div] = True
    return az.from_dict(
        posterior={"beta": beta, "rater_sd": np.abs(rng.normal(1, 0.1, (2, 2000, 1))),
                   "item_sd": np.abs(rng.normal(1, 0.1, (2, 2000, 1)))},
        sample_stats={"diverging": diverging},
        coords={"dimension": ["tox"], "factor_level": ["g[m]", "p[c]"]},
        dims={"beta": ["dimension", "factor_level"], "rater_sd": ["dimension"],
              "item_sd": ["dimension"]})


def test_diagnostics_ok_for_well_mixed_chains():
    diag = compute_diagnostics(_idata(0.0), "nutpie", {"sampling": 1.0})
    assert diag["ok"] is True and diag["failures"] == []
    assert diag["rhat_max"] < 1.01 and diag["ess_bulk_min"] > 400
    assert {p["parameter"] for p in diag["parameters"]} == {
        "beta[tox, g[m]]", "beta[tox, p[c]]", "rater_sd[tox]", "item_sd[tox]"}


def test_diagnostics_name_what_failed():
    with pytest.warns(DisagreeWarning, match=re.escape("fit diagnostics: R-hat of beta[tox, "
                                                       "g[m]] is")):
        diag = compute_diagnostics(_idata(3.0, n_div=2), "pymc", {"sampling": 1.0})
    assert diag["ok"] is False and diag["divergences"] == 2
    assert "2 divergent transition(s)" in diag["failures"]
    assert any(f.startswith("bulk ESS of beta[tox, p[c]]") for f in diag["failures"])


def test_unknown_or_unavailable_sampler_is_named(small):
    from disagree.model.sampling import get_sampler

    with pytest.raises(ModelError, match=re.escape("unknown sampler 'hmc'; choose one of "
                                                   "nutpie, pymc, numpyro, advi")):
        get_sampler("hmc")
    try:
        import numpyro  # noqa: F401
    except ImportError:
        from disagree.model import fit
        with pytest.raises(ModelError, match=re.escape("sampler 'numpyro' needs JAX and "
                                                       "numpyro: pip install numpyro")):
            fit(small, ["gender"], dimensions=["toxicity"], sampler="numpyro", progress=False)


@pytest.mark.parametrize("sigma", [[0.3, 1.4, 2.5], [0.0, 0.002, 0.05], [3.5, 0.8, 0.12]])
def test_averaged_cdf_is_accurate_to_1e6_for_any_rater_sd(sigma):
    from disagree.ordinal import averaged_cdf
    rng = np.random.default_rng(len(sigma) + int(10 * sigma[0]))
    s, c, j, k = 3, 7, 50, 5
    cut = np.sort(rng.normal(0, 1.5, (s, k - 1)), axis=1)
    eta, w, v = rng.normal(0, 1, (s, c)), rng.random(c), rng.normal(0, 1, (s, j))
    sig = np.array(sigma)
    x, g = gauss_hermite(120)
    lin = (cut[:, None, :, None, None] - eta[:, :, None, None, None]
           - v[:, None, None, :, None] - sig[:, None, None, None, None] * x)
    direct = np.einsum("sckjm,c,m->sk", expit(lin), w / w.sum(), g) / j
    assert np.abs(averaged_cdf(cut, eta, w, v, sig) - direct).max() < 1e-6


def test_flat_draws_read_from_disk_equal_the_stacked_posterior(tmp_path):
    """Thinned, one-dimension reads from a lazily opened netCDF equal xarray's stack."""
    from disagree.model.draws import flat_draws, thinned

    rng = np.random.default_rng(0)
    post = az.from_dict(posterior={"x": rng.normal(size=(3, 7, 4, 2))},
                        dims={"x": ["item", "dimension"]}).posterior
    az.InferenceData(posterior=post).to_netcdf(str(tmp_path / "p.nc"))
    lazy = az.from_netcdf(str(tmp_path / "p.nc")).posterior  # arviz opens it lazily
    stacked = post["x"].stack(sample=("chain", "draw")).transpose("sample", ...).values
    assert thinned(21, None) is None and thinned(21, 30) is None
    pick = thinned(21, 5)
    assert pick.tolist() == [0, 5, 10, 15, 20]
    np.testing.assert_array_equal(flat_draws(lazy, "x"), stacked)
    np.testing.assert_array_equal(flat_draws(lazy, "x", 1, pick), stacked[pick][:, :, 1])


def test_marginal_curve_compiled_and_numpy_paths_agree(monkeypatch):
    """Large problems sum the items' curve in a compiled loop; small ones keep numpy's float32."""
    import disagree.ordinal as ordinal

    rng = np.random.default_rng(4)
    items, sigma = rng.normal(0, 1.2, (5, 400)), np.array([0.001, 0.3, 0.8, 1.5, 2.5])
    grid = np.arange(-6.0, 6.0, 0.1)
    monkeypatch.setattr(ordinal, "COMPILED_CURVE_AT", 10**12)
    small = ordinal.marginal_curve(items, sigma, grid)
    monkeypatch.setattr(ordinal, "COMPILED_CURVE_AT", 0)
    large = ordinal.marginal_curve(items, sigma, grid)
    np.testing.assert_allclose(large, small, rtol=0, atol=1e-8)
    by_hand = 1 / (1 + np.exp(items[0][None, :] - grid[:, None]))  # sd 0.001: no smoothing
    np.testing.assert_allclose(large[0], by_hand.mean(axis=1), rtol=0, atol=1e-12)


def test_non_centred_zero_sum_item_effects_are_the_same_prior(small):
    """``v = sd * z``, ``z`` zero-sum standard normal: the model's density differs from the
    centred one by the Jacobian of the scaling alone, ``(J - 1) log sd`` per dimension."""
    from disagree.model.build import build_model
    from disagree.model.spec import model_data

    spec = make_spec(small, ["gender"], dimensions=["toxicity", "helpfulness"])
    data = model_data(small, spec)
    centred = build_model(spec, data)
    non_centred = build_model(spec, data, item_centred=False)
    assert "item_z_t" in non_centred.named_vars and "item_effect_t" not in non_centred.named_vars
    rng = np.random.default_rng(0)
    log_sd = np.array([-0.4, 0.3])
    point = centred.initial_point()
    point["item_sd_log__"] = log_sd
    free = rng.normal(size=point["item_effect_t_zerosum__"].shape)
    point["item_effect_t_zerosum__"] = free
    nc_point = {k: v for k, v in point.items() if not k.startswith("item_effect_t")}
    nc_point["item_z_t_zerosum__"] = free / np.exp(log_sd)[:, None]
    n_items = len(data.item_ids)
    gap = centred.compile_logp()(point) - non_centred.compile_logp()(nc_point)
    assert gap == pytest.approx(-(n_items - 1) * log_sd.sum(), rel=1e-9)
    v, v_c = (item_effects(m, pt_) for m, pt_ in ((non_centred, nc_point), (centred, point)))
    assert np.abs(v.sum(axis=0)).max() < 1e-9  # (items, dimensions): zero-sum per dimension
    np.testing.assert_allclose(v, v_c, rtol=1e-10, atol=1e-12)  # the same effects


def item_effects(model: pm.Model, point: dict) -> np.ndarray:
    """``item_effect`` at a point of the model's (transformed) free variables."""
    names = [v.name for v in model.unobserved_value_vars]
    values = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars,
                              on_unused_input="ignore")(point)
    return values[names.index("item_effect")]


@pytest.mark.parametrize(("shape", "expected"), [
    ({"n_raters": 100, "n_prompts": 125, "prompts_per_rater": 6},  # Kumar: 30 a rater, 4.8 an item
     {"rater": True, "item": False}),
    ({}, {"rater": False, "item": True}),  # the study: 5 a rater, 18.25 an item, per dimension
])
def test_default_centring_follows_ratings_per_rater_and_item(shape, expected):
    from disagree.model.fitting import default_centring

    table = simulate_survey(seed=0, dimensions=("toxicity",), **shape).table
    assert default_centring(table, make_spec(table, ["gender"])) == expected


def test_nutpie_chains_run_with_one_blas_thread(monkeypatch):
    """The chains call BLAS from their own threads: BLAS's threads are limited to one while
    they run (OpenBLAS's idle threads spin and take the cores), and restored after."""
    import nutpie
    from threadpoolctl import threadpool_info

    from disagree.model import sampling

    def blas_threads():
        return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas"}

    before, seen = blas_threads(), {}
    monkeypatch.setattr(sampling, "compiled_model", lambda model, s: "compiled")
    monkeypatch.setattr(nutpie, "sample", lambda compiled, **kw: seen.update(blas_threads()))
    sampling.get_sampler("nutpie")(None, sampling.SamplerSettings(progress=False))
    assert before and set(seen) == set(before) and set(seen.values()) == {1}
    assert blas_threads() == before


def test_anchored_ordered_builds_outward_from_the_anchor_with_its_log_jacobian():
    """Hand-computed: anchor 1 of 4 cut points, ``y = (log 2, 0.5, log 3, 0)``: ``c[1] = 0.5``,
    ``c[0] = 0.5 - 2``, ``c[2] = 0.5 + 3``, ``c[3] = 3.5 + 1``; ``log |J| = log 2 + log 3``;
    the numerical Jacobian agrees for a batch with other anchors, and anchor 0 is ``ordered``."""
    import pytensor
    from pymc.distributions.transforms import ordered

    from disagree.model.cutpoints import AnchoredOrdered

    one = AnchoredOrdered(np.array(1), 4)
    y = np.array([np.log(2), 0.5, np.log(3), 0.0])
    np.testing.assert_allclose(one.backward(pt.as_tensor(y)).eval(), [-1.5, 0.5, 3.5, 4.5])
    assert float(one.log_jac_det(pt.as_tensor(y)).eval()) == pytest.approx(np.log(6))
    np.testing.assert_allclose(one.forward(pt.as_tensor([-1.5, 0.5, 3.5, 4.5])).eval(), y)
    batch, yy = AnchoredOrdered(np.array([0, 2, 3]), 4), pt.matrix()
    values = np.random.default_rng(1).normal(size=(3, 4))
    jac = pytensor.function([yy], pt.jacobian(batch.backward(yy).flatten(), yy))(values)
    for d in range(3):
        block = jac.reshape(3, 4, 3, 4)[d, :, d, :]
        assert np.log(abs(np.linalg.det(block))) == pytest.approx(
            float(batch.log_jac_det(pt.as_tensor(values)).eval()[d]), rel=1e-10)
    np.testing.assert_allclose(AnchoredOrdered(np.array(0), 4).backward(pt.as_tensor(y)).eval(),
                               ordered.backward(pt.as_tensor(y)).eval())
    with pytest.raises(ValueError, match=re.escape("anchor must be in 0..3, got [4]")):
        AnchoredOrdered(np.array([4]), 4)


def test_anchor_is_the_cut_point_nearest_the_median_rating():
    from disagree.model.cutpoints import anchor_cutpoints

    y = np.array([0, 0, 1, 4, 4, 4, 2, 3])  # dim 0: shares at or below 0..3 = .5,.75,.75,.75
    dim = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # dim 1: 0, 0, .25, .5
    np.testing.assert_array_equal(anchor_cutpoints(y, dim, 2, 5), [0, 3])


def test_anchored_cut_points_are_the_same_model(small):
    """The model's density at the same cut points (jacobian off) is the same either way."""
    from disagree.model.build import build_model
    from disagree.model.spec import model_data

    spec = make_spec(small, ["gender"], dimensions=["toxicity", "helpfulness"])
    data = model_data(small, spec)
    anchored, plain = build_model(spec, data), build_model(spec, data, cutpoints_anchored=False)
    cuts = np.array([[-2.0, -0.3, 0.4, 2.5], [-1.0, 0.1, 1.2, 1.3]])
    points = []
    for model in (anchored, plain):
        var = model["cutpoints_centred"]
        transform = model.rvs_to_transforms[var]
        point = model.initial_point()
        point[model.rvs_to_values[var].name] = transform.forward(pt.as_tensor(cuts)).eval()
        points.append(model.compile_logp(jacobian=False)(point))
    assert "cutpoints_centred_anchored_ordered__" in anchored.initial_point()
    assert points[0] == pytest.approx(points[1], rel=1e-12)


def test_target_accept_is_checked_and_recorded_for_nuts_only():
    from disagree.model import fit
    from disagree.model.sampling import SamplerSettings

    table = simulate_survey(seed=0, n_raters=20, n_prompts=4).table
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ModelError, match=re.escape(
                f"target_accept={bad!r}: expected a number between 0 and 1")):
            fit(table, ["gender"], target_accept=bad)
    with pytest.raises(ModelError, match="target_accept=-0.1: expected"):
        SamplerSettings(target_accept=-0.1)  # the settings check it, whoever makes them
    assert SamplerSettings().to_json()["target_accept"] == 0.65
    assert SamplerSettings(target_accept=0.9).to_json()["target_accept"] == 0.9
    assert "target_accept" not in SamplerSettings("advi").to_json()
