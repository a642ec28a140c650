"""Group-by-item interactions in the model: recovery of known deviations, no false positives,
the posterior's names, diagnostics, and reference-free (pooled) level effects."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DIMENSION, FACTORS, REFERENCE, SETTINGS

from disagree.data import simulate_survey
from disagree.errors import ModelError
from disagree.model import fit, make_spec

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]


def true_deviations(survey, factor="politics"):
    """(items, levels) array of the true deviations, items in the fit's (sorted) order."""
    rec = survey.truth["item_deviations"][DIMENSION][factor]
    order = np.argsort(rec["item_id"])
    levels = survey.truth["levels"][factor]
    return np.column_stack([np.asarray(rec[lv])[order] for lv in levels])


def test_posterior_names_and_dims(interaction_fit):
    post = interaction_fit.idata.posterior
    assert post["item_group_sd"].dims == ("chain", "draw", "dimension", "factor")
    assert list(post["item_group_sd"].coords["factor"].values) == ["politics"]
    assert post["item_group_effect"].dims == ("chain", "draw", "item", "interaction_level",
                                              "dimension")
    assert list(post["item_group_effect"].coords["interaction_level"].values) == [
        "politics[liberal]", "politics[conservative]", "politics[moderate]"]
    # zero-sum over the levels of a factor, within every item
    total = post["item_group_effect"].sum("interaction_level")
    assert float(abs(total).max()) < 1e-9
    assert interaction_fit.spec.interactions == ("politics",)


def test_diagnostics_cover_item_group_sd(interaction_fit):
    params = {p["parameter"] for p in interaction_fit.diagnostics["parameters"]}
    assert "item_group_sd[emotional_awareness, politics]" in params


def test_recovers_item_group_sd_and_the_deviations(interaction_survey, interaction_fit):
    truth = true_deviations(interaction_survey)
    # the sd of the 120 x 3 deviations drawn (zero-sum: L - 1 = 2 degrees of freedom an item)
    realised = np.sqrt((truth**2).sum(axis=1).mean() / 2)  # 1.096 for this seed
    sd = interaction_fit.idata.posterior["item_group_sd"].values.ravel()
    lo, hi = np.quantile(sd, [0.025, 0.975])
    assert lo <= realised <= hi, (lo, realised, hi)
    assert abs(sd.mean() - 1.0) < 0.2, sd.mean()  # the generating sd
    est = interaction_fit.idata.posterior["item_group_effect"].mean(("chain", "draw"))
    est = est.isel(dimension=0).values  # (items, levels)
    r = np.corrcoef(est.ravel(), truth.ravel())[0, 1]
    assert r > 0.6, r


def test_no_true_interaction_sd_near_zero_and_contrasts_unchanged(plain_fit, plain_fit_without):
    sd = plain_fit.idata.posterior["item_group_sd"].values.ravel()
    # prior HalfNormal(0.5): prior mean 0.40, 90% quantile 0.82; the posterior sits far below
    assert np.quantile(sd, 0.5) < 0.2 and np.quantile(sd, 0.9) < 0.35, np.quantile(sd, [.5, .9])
    a = plain_fit.contrasts().set_index(["factor", "level", "measure"])
    b = plain_fit_without.contrasts().set_index(["factor", "level", "measure"])
    for key in [("politics", "conservative", "relative_pct"), ("gender", "male", "log_odds")]:
        width = b.loc[key, "upper"] - b.loc[key, "lower"]
        assert abs(a.loc[key, "estimate"] - b.loc[key, "estimate"]) < 0.15 * width, key


def test_contrasts_use_each_groups_own_item_effects(interaction_survey, interaction_fit):
    """The politics contrast covers the truth computed with the true deviations."""
    truth = {(c["factor"], c["level"], c["measure"]): c["estimate"]
             for c in interaction_survey.truth["contrasts"] if c["dimension"] == DIMENSION}
    c = interaction_fit.contrasts().set_index(["factor", "level", "measure"])
    key = ("politics", "conservative", "relative_pct")
    assert c.loc[key, "lower"] <= truth[key] <= c.loc[key, "upper"], (c.loc[key], truth[key])


def test_bad_interactions_are_named(plain_survey):
    with pytest.raises(ModelError, match=r"interactions=\['age'\]: expected distinct factors of "
                                         r"the model \(gender, politics\); not factors: age"):
        make_spec(plain_survey.table, FACTORS, REFERENCE, interactions=["age"])
    with pytest.raises(ModelError, match="effects='flat'; choose one of dummy, pooled"):
        make_spec(plain_survey.table, FACTORS, REFERENCE, effects="flat")


def test_pooled_effects_do_not_depend_on_the_reference():
    """With pooled level effects, moderate minus conservative is the same whichever level is
    the reference (up to Monte Carlo error); the model is the same, only the labels move."""
    table = simulate_survey(seed=8, n_raters=300, n_prompts=20, interactions={},
                            dimensions=(DIMENSION,)).table
    settings = {**SETTINGS, "draws": 800}
    diffs = []
    for ref in ("liberal", "conservative"):
        res = fit(table, ["politics"], {"politics": ref}, effects="pooled", **settings)
        post = res.idata.posterior
        assert "level_sd" in post and "level_effect" in post
        eff = post["level_effect"].isel(dimension=0)
        d = (eff.sel(level="politics[moderate]") - eff.sel(level="politics[conservative]"))
        diffs.append(d.values.ravel())
        beta = post["beta"].isel(dimension=0)
        # beta is the level effect minus the reference's
        lv = [lab for lab in eff.coords["level"].values if ref not in lab][0]
        assert np.allclose(beta.sel(factor_level=lv),
                           eff.sel(level=lv) - eff.sel(level=f"politics[{ref}]"))
    a, b = diffs
    mcse = np.hypot(a.std() / np.sqrt(len(a) / 4), b.std() / np.sqrt(len(b) / 4))
    assert abs(a.mean() - b.mean()) < 4 * mcse, (a.mean(), b.mean(), mcse)
