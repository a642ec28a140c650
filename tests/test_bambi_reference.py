"""disagree's model and the equivalent bambi model give the same fixed-effect posteriors."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from disagree.data import simulate_survey
from disagree.model import bambi_model, fit
from disagree.model.reference import dummy_names

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]


def test_fixed_effects_agree_with_bambi():
    table = simulate_survey(seed=21, n_raters=240, n_prompts=16, dimensions=("toxicity",)).table
    factors, reference = ["gender", "politics"], {"gender": "female", "politics": "liberal"}
    ours = fit(table, factors, reference, draws=1000, tune=1000, seed=1, progress=False)
    model = bambi_model(table, "toxicity", factors, reference)
    theirs = model.fit(draws=1000, tune=1000, chains=2, random_seed=1,
                       inference_method="nutpie", progressbar=False)
    names = dummy_names(ours.spec.levels)
    beta = ours.idata.posterior["beta"].isel(dimension=0)
    for p, name in enumerate(names):
        a = beta.isel(factor_level=p)
        b = theirs.posterior[name]
        mean_a, mean_b = float(a.mean()), float(b.mean())
        mcse = np.hypot(float(az.mcse(a.to_dataset(name="x"))["x"]),
                        float(az.mcse(b.to_dataset(name="x"))["x"]))
        # Monte Carlo error (4 combined MCSE) plus 0.03 log-odds: the two models share the
        # likelihood and the priors on effects and scales; they differ only in the cut-point
        # prior's reference point (disagree centres the dummies), which moves the effects by
        # well under a tenth of their posterior sd (~0.15-0.3 here).
        assert abs(mean_a - mean_b) < 4 * mcse + 0.03, (name, mean_a, mean_b, mcse)
        sd_a, sd_b = float(a.std()), float(b.std())
        assert sd_a == pytest.approx(sd_b, rel=0.15), (name, sd_a, sd_b)


def test_interaction_model_agrees_with_bambi():
    """``(1|item_id:politics)`` in bambi is disagree's interaction model up to the item prior:
    the coefficients and ``item_group_sd`` agree within Monte Carlo error, and so do the item
    effects each political group sees, up to one common shift (the thresholds')."""
    table = simulate_survey(seed=22, n_raters=240, n_prompts=16, prompts_per_rater=2,
                            dimensions=("emotional_awareness",),
                            interactions={"emotional_awareness": {"politics": 1.0}}).table
    factors, reference = ["gender", "politics"], {"gender": "female", "politics": "liberal"}
    ours = fit(table, factors, reference, interactions=["politics"], draws=1000, tune=1000,
               seed=1, progress=False)
    model = bambi_model(table, "emotional_awareness", factors, reference,
                        interactions=["politics"])
    theirs = model.fit(draws=1000, tune=1000, chains=2, random_seed=1,
                       inference_method="nutpie", progressbar=False)

    def agree(a, b, slack):
        mcse = np.hypot(float(az.mcse(a.to_dataset(name="x"))["x"]),
                        float(az.mcse(b.to_dataset(name="x"))["x"]))
        assert abs(float(a.mean()) - float(b.mean())) < 4 * mcse + slack, (
            float(a.mean()), float(b.mean()), mcse)

    beta = ours.idata.posterior["beta"].isel(dimension=0)
    for p, name in enumerate(dummy_names(ours.spec.levels)):
        agree(beta.isel(factor_level=p), theirs.posterior[name], 0.03)
    agree(ours.idata.posterior["item_group_sd"].isel(dimension=0, factor=0),
          theirs.posterior["1|item_id:politics_sigma"], 0.05)
    # each group's item effect: item effect + its deviation (ours) vs the same sum (bambi)
    post = ours.idata.posterior
    mine = (post["item_effect"].isel(dimension=0)
            + post["item_group_effect"].isel(dimension=0)).mean(("chain", "draw"))
    levels = ours.spec.levels["politics"]
    items = [str(i) for i in post.coords["item"].values]
    inter = theirs.posterior["1|item_id:politics"].mean(("chain", "draw"))
    main = theirs.posterior["1|item_id"].mean(("chain", "draw"))
    inter_dim = [d for d in inter.dims if d != "chain"][0]
    labels = [str(v) for v in inter.coords[inter_dim].values]
    theirs_sum = np.array([[float(main.sel({main.dims[0]: j}))
                            + float(inter.values[labels.index(f"{j}:{lv}")])
                            for lv in levels] for j in items])
    ours_sum = np.array([[float(mine.sel(item=j, interaction_level=f"politics[{lv}]"))
                          for lv in levels] for j in items])
    shift = (ours_sum - theirs_sum).mean()
    assert np.corrcoef(ours_sum.ravel(), theirs_sum.ravel())[0, 1] > 0.98
    assert np.abs(ours_sum - theirs_sum - shift).max() < 0.25
