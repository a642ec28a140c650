"""Group-by-item deviations that follow the responses' latent traits (``interaction_traits``).

With ``interaction_traits = rho`` a share ``rho`` of each deviation's variance is ``t[j] @ A_f``
(the item's traits times per-level loadings), so a group's taste is learnable from the texts,
which are worded by the same traits; ``rho = 0`` (the default) changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from disagree import simulate_survey
from disagree.data.interactions import TRAITS
from disagree.errors import DataError

#: 200 items; one calibrated target (of a factor with an interaction) keeps the tests fast
SMALL = {"n_raters": 200, "n_prompts": 40, "targets": {"toxicity|gender|male": -18.0}}


@pytest.fixture(scope="module")
def surveys():
    """The same seed with the deviations iid (0.0) and fully carried by the traits (1.0)."""
    return {rho: simulate_survey(seed=4, interaction_traits=rho, **SMALL) for rho in (0.0, 1.0)}


def deviation_matrix(truth: dict, dim: str, factor: str) -> np.ndarray:
    """Recorded deviations of one dimension and factor, items x levels (reference first)."""
    table = truth["item_deviations"][dim][factor]
    assert table["item_id"] == truth["item_effects"]["item_id"]
    return np.column_stack([table[lv] for lv in truth["levels"][factor]])


def trait_matrix(truth: dict) -> np.ndarray:
    """Recorded latent traits, items x (toxicity, helpfulness, stereotyping)."""
    table = truth["item_traits"]
    assert table["item_id"] == truth["item_effects"]["item_id"]
    return np.column_stack([table[t] for t in TRAITS])


def r_squared(w: np.ndarray, traits: np.ndarray) -> float:
    """Share of the deviations' variance (all levels pooled) explained by OLS on the traits."""
    x = np.column_stack([np.ones(len(traits)), traits])
    coef, *_ = np.linalg.lstsq(x, w, rcond=None)
    resid = w - x @ coef
    return float(1 - (resid**2).sum() / ((w - w.mean(axis=0))**2).sum())


def test_a_zero_share_changes_nothing():
    kw = {**SMALL, "seed": 3, "n_raters": 80, "n_prompts": 8}
    plain = simulate_survey(**kw, interaction_traits=0)
    for zero in (0.0, np.float64(0)):
        s = simulate_survey(interaction_traits=zero, **kw)
        pd.testing.assert_frame_equal(s.ratings, plain.ratings)
        assert json.dumps(s.truth) == json.dumps(plain.truth)
    assert not {"interaction_traits", "interaction_loadings", "item_traits"} & set(plain.truth)
    assert "interaction_traits" not in plain.truth["config"]


def test_deviations_are_a_linear_function_of_the_traits_with_share_one(surveys):
    truth = surveys[1.0].truth
    traits = trait_matrix(truth)
    assert truth["interaction_traits"] == 1.0 and truth["config"]["interaction_traits"] == 1.0
    assert truth["interaction_loadings"].keys() == truth["interactions"].keys()
    for dim, factors in truth["interactions"].items():
        assert truth["interaction_loadings"][dim].keys() == factors.keys()
        for factor in factors:
            w = deviation_matrix(truth, dim, factor)
            assert r_squared(w, traits) > 0.999  # exactly linear up to the 6-decimal records
            # the recorded loadings reproduce the deviations: w = t @ A - mean over levels
            loads = truth["interaction_loadings"][dim][factor]
            a = np.array([[loads[lv][t] for lv in truth["levels"][factor]] for t in TRAITS])
            fitted = traits @ a
            np.testing.assert_allclose(w, fitted - fitted.mean(axis=1, keepdims=True),
                                       atol=1e-5)


def test_iid_deviations_are_not_explained_by_the_traits(surveys):
    iid, carried = surveys[0.0].truth, surveys[1.0].truth
    # the option draws from its own stream: same traits, item and rater effects for any share
    assert iid["item_effects"] == carried["item_effects"]
    assert iid["rater_effects"] == carried["rater_effects"]
    traits = trait_matrix(carried)
    for dim, factors in iid["interactions"].items():
        for factor in factors:
            # 3 regressors, 200 items: R^2 ~ 3 / 200 by chance (0.009-0.028 over seeds 0-3)
            assert r_squared(deviation_matrix(iid, dim, factor), traits) < 0.3
            assert deviation_matrix(iid, dim, factor).tolist() != \
                deviation_matrix(carried, dim, factor).tolist()


def test_calibration_holds_when_the_deviations_follow_the_traits(surveys):
    truth = surveys[1.0].truth
    for key, target in truth["targets"].items():
        dim, factor, level = key.split("|")
        reported = next(c["estimate"] for c in truth["contrasts"]
                        if (c["dimension"], c["factor"], c["level"], c["measure"])
                        == (dim, factor, level, "relative_pct"))
        assert reported == pytest.approx(target, abs=1e-6)


def test_a_share_in_between_explains_part_of_the_variance():
    s = simulate_survey(seed=0, interaction_traits=0.5, **{**SMALL, "targets": {}})
    traits = trait_matrix(s.truth)
    shares = [r_squared(deviation_matrix(s.truth, d, f), traits)
              for d, fs in s.truth["interactions"].items() for f in fs]
    # about 0.5 on average over the loadings; one survey's loadings scatter it (0.23-0.66 per
    # factor over seeds 0-3); seed 0 gives 0.33, 0.65, 0.66
    assert 0.25 < np.mean(shares) < 0.75


def test_without_interactions_the_share_is_inert():
    kw = {"seed": 2, "n_raters": 60, "n_prompts": 6, "interactions": {}, "targets": {}}
    off, on = simulate_survey(**kw), simulate_survey(interaction_traits=0.7, **kw)
    pd.testing.assert_frame_equal(off.ratings, on.ratings)
    assert on.truth["item_deviations"] == {} and on.truth["interaction_loadings"] == {}
    assert on.truth["interaction_traits"] == 0.7


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, math.inf, "half", True, None])
def test_bad_shares_are_named(value):
    with pytest.raises(DataError) as err:
        simulate_survey(n_raters=20, n_prompts=4, interaction_traits=value)
    assert str(err.value) == (f"interaction_traits must be a finite number in [0, 1], "
                              f"got {value!r}")


def test_same_seed_same_bytes(tmp_path):
    def digest(seed, sub):
        s = simulate_survey(seed=seed, n_raters=60, n_prompts=6, interaction_traits=0.8,
                            targets={})
        path = s.save(tmp_path / sub, "csv")
        return (hashlib.sha256(path.read_bytes()).hexdigest(),
                hashlib.sha256((tmp_path / sub / "truth.json").read_bytes()).hexdigest())
    assert digest(3, "a") == digest(3, "b")
    assert digest(4, "c") != digest(3, "a")


def test_the_default_survey_fixes_the_headline_loadings_and_records_them():
    s = simulate_survey(seed=1, n_raters=120, n_prompts=10)
    truth = s.truth
    assert truth["interaction_traits"] == 0.8
    given = truth["config"]["interaction_loadings"]
    assert given["emotional_awareness"]["politics"]["conservative"] == (0.0, 0.0, -1.0)
    recorded = truth["interaction_loadings"]["emotional_awareness"]["politics"]
    assert recorded["conservative"] == {"toxicity": 0.0, "helpfulness": 0.0,
                                        "stereotyping": -1.0}
    assert recorded["moderate"] == {"toxicity": 0.0, "helpfulness": 0.0, "stereotyping": 1.0}
    # without an interaction its default loadings go too; a given loading needs one
    plain = simulate_survey(seed=1, n_raters=60, n_prompts=6, interactions={}, targets={})
    assert "interaction_loadings" not in plain.truth["config"] or \
        plain.truth["config"]["interaction_loadings"] == {}
    with pytest.raises(DataError, match=r"interaction_loadings\['toxicity'\]\['politics'\]: "
                                        r"toxicity has no interaction with politics"):
        simulate_survey(n_raters=20, n_prompts=4,
                        interaction_loadings={"toxicity": {"politics": {"liberal": (1, 0, 0)}}})
    with pytest.raises(DataError, match=r"\['male'\]: expected 3 finite loadings"):
        simulate_survey(n_raters=20, n_prompts=4,
                        interaction_loadings={"toxicity": {"gender": {"male": (1, 0)}}})
