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
