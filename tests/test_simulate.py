"""The survey simulator: shape, calibration (checked independently), determinism, parameters."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from disagree.data import PAPER_TARGETS, load_ratings, simulate_survey
from disagree.data.simulate import default_survey_path
from disagree.errors import DataError


@pytest.fixture(scope="module")
def survey():
    return simulate_survey(seed=0)


def test_default_shape_matches_the_study(survey):
    r = survey.ratings
    assert len(r) == 27_375
    assert r["rater_id"].nunique() == 1_095
    assert (r.groupby("rater_id").size() == 25).all()
    assert sorted(r["dimension"].unique()) == sorted(
        ["toxicity", "emotional_awareness", "sensitivity", "stereotypical_bias", "helpfulness"])
    assert set(r["country"]) == {"US", "Germany"}
    assert {"White", "Black"} <= set(r["ethnicity"])
    assert set(r["politics"]) == {"liberal", "moderate", "conservative"}
    assert r["rating"].between(1, 5).all()
    # each rater rates every response of one prompt on every dimension
    per = r.groupby("rater_id")["prompt_id"].nunique()
    assert (per == 1).all()
    table = survey.table
    assert table.rater_attributes == ["gender", "politics", "ethnicity", "country", "age"]
    assert table.item_attributes == ["prompt_id", "prompt", "response"]


def mc_relative_pct(survey, dim: str, factor: str, level: str, n_draws: int = 48) -> float:
    """P(high) ratio by Monte Carlo over rater effects, independent of disagree.ordinal."""
    truth = survey.truth
    raters = survey.ratings.drop_duplicates("rater_id").set_index("rater_id")
    items = np.array(truth["item_effects"][dim])
    cuts = np.array(truth["cutpoints"][dim])
    sd = truth["rater_sd"][dim]
    effects = [e for e in truth["effects"] if e["dimension"] == dim]
    rng = np.random.default_rng(123)
    u = rng.standard_normal((len(raters), n_draws)) * sd  # common random numbers
    p_high = {}
    for setting in (truth["levels"][factor][0], level):
        x = raters.assign(**{factor: setting})
        eta = sum(e["log_odds"] * (x[e["factor"]] == e["level"]).to_numpy() for e in effects)
        lin = eta[:, None, None] + u[:, :, None] + items[None, None, :]
        p_high[setting] = expit(lin - cuts[truth["high_threshold"] - 2]).mean()
    return 100 * (p_high[level] / p_high[truth["levels"][factor][0]] - 1)


@pytest.mark.parametrize("key", list(PAPER_TARGETS))
def test_calibration_matches_the_paper_within_half_a_point(survey, key):
    dim, factor, level = key.split("|")
    reported = next(c["estimate"] for c in survey.truth["contrasts"]
                    if (c["dimension"], c["factor"], c["level"], c["measure"])
                    == (dim, factor, level, "relative_pct"))
    assert reported == pytest.approx(PAPER_TARGETS[key], abs=1e-6)
    assert mc_relative_pct(survey, dim, factor, level) == pytest.approx(PAPER_TARGETS[key],
                                                                        abs=0.5)


def test_truth_lists_every_parameter_and_contrast(survey):
    t = survey.truth
    assert set(t) >= {"seed", "config", "levels", "effects", "contrasts", "cutpoints", "rater_sd",
                      "rater_corr", "rater_effects", "item_effects", "targets"}
    n_levels = sum(len(v) - 1 for v in t["levels"].values())
    assert len(t["effects"]) == 5 * n_levels
    assert len(t["contrasts"]) == 5 * n_levels * 3
    json.dumps(t)  # JSON-ready


def test_dimensions_are_correlated_so_figure1_is_not_trivial(survey):
    wide = survey.ratings.pivot_table(index=["rater_id", "item_id"], columns="dimension",
                                      values="rating")
    corr = wide.corr()
    # per-rating correlations are diluted by the logistic noise (variance pi^2/3); the item-level
    # loadings and rater correlations imply about 0.2 here, far above sampling error (~0.013)
    assert corr.loc["toxicity", "stereotypical_bias"] > 0.15
    assert corr.loc["toxicity", "helpfulness"] < -0.08
    assert corr.loc["emotional_awareness", "sensitivity"] > 0.15


def test_response_text_carries_the_latent_toxicity(survey):
    items = survey.ratings.drop_duplicates("item_id").set_index("item_id")
    v = pd.Series(survey.truth["item_effects"]["toxicity"], index=survey.truth["item_effects"]
                  ["item_id"])
    rude = items["response"].str.contains("idiot|stupid|pathetic|loser|whining|problem\\.")
    assert rude.sum() > 10
    assert v[rude[rude].index].mean() > v[rude[~rude].index].mean() + 1.0


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    def digest(seed, fmt, sub):
        s = simulate_survey(seed=seed, n_raters=150, n_prompts=20)
        path = s.save(tmp_path / sub, fmt)
        return (hashlib.sha256(path.read_bytes()).hexdigest(),
                hashlib.sha256((tmp_path / sub / "truth.json").read_bytes()).hexdigest())
    assert digest(3, "parquet", "a") == digest(3, "parquet", "b")
    assert digest(3, "csv", "c") == digest(3, "csv", "d")
    assert digest(4, "csv", "e") != digest(3, "csv", "c")


def test_bundled_default_data_is_the_seed_0_simulation(survey, tmp_path):
    bundled = default_survey_path()
    assert bundled.exists(), "data/ratings.parquet is missing"
    fresh = survey.save(tmp_path)
    assert fresh.read_bytes() == bundled.read_bytes()
    assert (tmp_path / "truth.json").read_bytes() == (bundled.parent / "truth.json").read_bytes()


def test_every_parameter_can_change():
    s = simulate_survey(seed=1, n_raters=120, n_prompts=10, responses_per_prompt=3,
                        prompts_per_rater=2, scale=3, dimensions=("toxicity", "helpfulness"),
                        missing_rate=0.2, targets={"toxicity|gender|male": -30.0},
                        effects={"helpfulness|country|Germany": 0.5})
    r = s.ratings
    assert set(r["dimension"]) == {"toxicity", "helpfulness"}
    assert r["rating"].max() == 3
    full = 120 * 2 * 3 * 2
    assert 0.7 * full < len(r) < 0.9 * full
    assert (r.groupby("rater_id")["prompt_id"].nunique() <= 2).all()
    contrasts = {(c["dimension"], c["level"], c["measure"]): c["estimate"]
                 for c in s.truth["contrasts"]}
    assert contrasts[("toxicity", "male", "relative_pct")] == pytest.approx(-30.0, abs=1e-6)
    effect = next(e for e in s.truth["effects"] if (e["dimension"], e["level"])
                  == ("helpfulness", "Germany"))
    assert effect["log_odds"] == 0.5
    load_ratings(r, scale=3)  # valid


def test_bad_parameters_are_named():
    with pytest.raises(DataError, match="effect 'toxicity\\|gender\\|robot': 'robot' is not a "
                                        "non-reference level of 'gender'"):
        simulate_survey(effects={"toxicity|gender|robot": 1.0})
    with pytest.raises(DataError, match="missing_rate=1.5 must be in \\[0, 1\\)"):
        simulate_survey(missing_rate=1.5)
