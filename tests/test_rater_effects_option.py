"""keep_rater_effects=False: the posterior without rater effects, everything else the same."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from disagree.cli import main
from disagree.data import save_ratings, simulate_survey
from disagree.errors import DisagreeWarning, ModelError
from disagree.labels import soft_labels
from disagree.model import diagnose, fit, load_fit, pointwise_loglik
from disagree.pairs import make_pairs

SETTINGS = dict(draws=150, tune=150, chains=2, seed=1, progress=False)
REFUSED = ("needs the rater effects, and this fit was made with keep_rater_effects=False (CLI "
           "--no-rater-effects), which does not store them: refit without it, or use group or "
           "population labels")


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The same small survey fitted with and (through the CLI) without rater effects."""
    root = tmp_path_factory.mktemp("rater-effects")
    survey = simulate_survey(seed=3, n_raters=120, n_prompts=8, dimensions=("toxicity",))
    path = save_ratings(survey.table, root / "ratings.parquet")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        full = fit(survey.table, ["gender"], {"gender": "female"}, **SETTINGS)
        assert main(["fit", str(path), "--out", str(root / "lean"), "--factors", "gender",
                     "--reference", "gender=female", "--draws", "150", "--tune", "150",
                     "--seed", "1", "--chains", "2", "--no-rater-effects"]) == 0
    return survey, full, load_fit(root / "lean"), root


def test_the_posterior_drops_only_the_rater_effects(fits):
    _, full, lean, root = fits
    assert "rater_effect" in full.idata.posterior
    assert set(lean.idata.posterior.data_vars) == set(full.idata.posterior.data_vars) - {
        "rater_effect"}
    for name in lean.idata.posterior.data_vars:  # same seed, same draws
        np.testing.assert_array_equal(lean.idata.posterior[name].values,
                                      full.idata.posterior[name].values, err_msg=name)
    model = json.loads((root / "lean" / "model.json").read_text())
    assert model["sampler"]["keep_rater_effects"] is False
    assert "keep_rater_effects" not in full.info["sampler"]  # the default, as in older fits


def test_group_labels_pairs_and_contrasts_are_unchanged(fits):
    survey, full, lean, _ = fits
    pd.testing.assert_frame_equal(soft_labels(lean, "group", ["gender"]),
                                  soft_labels(full, "group", ["gender"]))
    pd.testing.assert_frame_equal(lean.contrasts(), full.contrasts())
    kwargs = dict(dimension="toxicity", strategy="soft", group={"gender": "male"})
    pd.testing.assert_frame_equal(make_pairs(survey.table, lean, **kwargs).frame,
                                  make_pairs(survey.table, full, **kwargs).frame)


def test_what_needs_rater_effects_refuses_the_fit(fits, tmp_path):
    survey, _, lean, _ = fits
    with pytest.raises(ModelError, match=re.escape(f"rater-level soft labels and pairs {REFUSED}")):
        soft_labels(lean, "rater")
    with pytest.raises(ModelError, match=re.escape(f"the posterior predictive check {REFUSED}")):
        lean.ppc()
    with pytest.raises(ModelError, match=re.escape(f"(LOO) {REFUSED}")):
        pointwise_loglik(lean)
    with pytest.warns(DisagreeWarning, match="keeps no rater effects"):
        written = diagnose(lean, tmp_path)
    assert [p.name for p in written] == ["trace.png"]
