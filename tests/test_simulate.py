"""The survey simulator: shape, calibration (checked independently), determinism, parameters,
group-by-item interactions."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from disagree._io import same_table_file
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


def group_item_effects(truth: dict, dim: str, raters: pd.DataFrame) -> np.ndarray:
    """Item effects (raters x items) each rater meets: v + sum_f w_f[item, level_f(rater)]."""
    v = np.array(truth["item_effects"][dim])
    out = np.repeat(v[None, :], len(raters), axis=0)
    for factor, table in truth.get("item_deviations", {}).get(dim, {}).items():
        assert table["item_id"] == truth["item_effects"]["item_id"]
        w = pd.DataFrame({lv: table[lv] for lv in truth["levels"][factor]})  # items x levels
        out += w[raters[factor].to_numpy()].to_numpy().T
    return out


def mc_relative_pct(survey, dim: str, factor: str, level: str, n_draws: int = 48) -> float:
    """P(high) ratio by Monte Carlo over rater effects, independent of disagree.ordinal.

    With interactions, each rater meets the item effects of their own levels, and setting
    ``factor`` to a level also switches the deviations of that factor to that level's.
    """
    truth = survey.truth
    raters = survey.ratings.drop_duplicates("rater_id").set_index("rater_id")
    cuts = np.array(truth["cutpoints"][dim])
    sd = truth["rater_sd"][dim]
    effects = [e for e in truth["effects"] if e["dimension"] == dim]
    rng = np.random.default_rng(123)
    u = rng.standard_normal((len(raters), n_draws)) * sd  # common random numbers
    p_high = {}
    for setting in (truth["levels"][factor][0], level):
        x = raters.assign(**{factor: setting})
        eta = sum(e["log_odds"] * (x[e["factor"]] == e["level"]).to_numpy() for e in effects)
        items = group_item_effects(truth, dim, x)  # (raters, items)
        lin = eta[:, None, None] + u[:, :, None] + items[:, None, :]
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
                      "rater_corr", "rater_effects", "item_effects", "targets",
                      "interactions", "item_deviations"}
    assert t["interactions"] == {"toxicity": {"gender": 0.8},
                                 "emotional_awareness": {"politics": 1.15, "ethnicity": 0.555}}
    assert t["interaction_traits"] == 0.8
    assert {d: set(v) for d, v in t["item_deviations"].items()} == {
        "toxicity": {"gender"}, "emotional_awareness": {"politics", "ethnicity"}}
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
    # by content: the bytes carry the writing pandas' version (3.1.1 and 3.1.2 differ); as a
    # boolean: pytest's diff of two mismatched tables runs for many minutes
    same_ratings = same_table_file(fresh, bundled)
    assert same_ratings, f"{fresh.name} differs from the bundled {bundled}: regenerate it"
    same_truth = (tmp_path / "truth.json").read_bytes() == \
        (bundled.parent / "truth.json").read_bytes()
    assert same_truth, "truth.json differs from the bundled one: regenerate it"


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


# --- group-by-item interactions -------------------------------------------------------------

def deviation_matrix(truth: dict, dim: str, factor: str) -> np.ndarray:
    """Recorded deviations of one dimension and factor, items x levels (reference first)."""
    table = truth["item_deviations"][dim][factor]
    return np.column_stack([table[lv] for lv in truth["levels"][factor]])


def test_interaction_deviations_sum_to_zero_over_levels_within_each_item(survey):
    for dim, factors in survey.truth["interactions"].items():
        for factor in factors:
            w = deviation_matrix(survey.truth, dim, factor)
            assert w.shape == (300, len(survey.truth["levels"][factor]))
            # recorded to 6 decimals: each of at most 5 roundings is off by <= 5e-7
            assert np.abs(w.sum(axis=1)).max() < 3e-6
            assert np.abs(w).max() > 0.1


@pytest.mark.parametrize(("dim", "factor", "sd"), [("toxicity", "gender", 0.8),
                                                   ("emotional_awareness", "politics", 1.15),
                                                   ("emotional_awareness", "ethnicity", 0.555)])
def test_interaction_deviations_have_the_requested_sd(survey, dim, factor, sd):
    w = deviation_matrix(survey.truth, dim, factor)
    n_items, n_levels = w.shape
    # w = z - mean(z), z ~ iid N(0, sd) (ZeroSumNormal): sum(w**2) / (J (L - 1)) is unbiased for
    # sd**2 with J (L - 1) >= 600 degrees of freedom, so the estimate's relative se is at most
    # 1 / sqrt(2 * 600) ~ 2.9%; 12% is more than 4 se
    estimate = np.sqrt((w**2).sum() / (n_items * (n_levels - 1)))
    assert estimate == pytest.approx(sd, rel=0.12)


def responses_ranked_by_group(truth: dict, dim: str, factor: str, level: str) -> pd.Series:
    """Per prompt, the responses ordered by the group's true item effect v + w (best first)."""
    v = pd.Series(truth["item_effects"][dim], index=truth["item_effects"]["item_id"])
    if factor in truth["item_deviations"].get(dim, {}):
        v = v + np.array(truth["item_deviations"][dim][factor][level])
    frame = v.rename("effect").rename_axis("item_id").reset_index()
    frame["prompt_id"] = frame["item_id"].str.split("-").str[0]
    return frame.sort_values(["prompt_id", "effect"], ascending=[True, False]).groupby(
        "prompt_id")["item_id"].agg(tuple)


def test_interactions_make_groups_rank_responses_differently():
    small = {"n_raters": 120, "n_prompts": 60}  # the rankings need items, not many raters
    off = simulate_survey(seed=2, interactions={}, **small)
    explicit = simulate_survey(seed=2, interactions={"emotional_awareness": {"politics": 0.0}},
                               **small)
    pd.testing.assert_frame_equal(off.ratings, explicit.ratings)
    assert off.truth["item_deviations"] == {}
    for s in (off, explicit):
        lib, con = (responses_ranked_by_group(s.truth, "emotional_awareness", "politics", lv)
                    for lv in ("liberal", "conservative"))
        assert (lib == con).all()

    strong = simulate_survey(seed=2, interactions={"emotional_awareness": {"politics": 1.5}},
                             **small)
    lib, con = (responses_ranked_by_group(strong.truth, "emotional_awareness", "politics", lv)
                for lv in ("liberal", "conservative"))
    # w_liberal - w_conservative has sd 1.5 * sqrt(2) ~ 2.1, twice the sd of v (~1.0): the best
    # of 5 responses differs for most prompts (73% here, 70-82% for other seeds), the full
    # ranking for nearly all (98-100%); 40% and 80% of 60 prompts leave room for sampling error
    assert (lib.str[0] != con.str[0]).mean() > 0.4
    assert (lib != con).mean() > 0.8
    # the shared item effects and every other draw are those of the survey without interactions
    assert strong.truth["item_effects"] == off.truth["item_effects"]
    assert strong.truth["rater_effects"] == off.truth["rater_effects"]


def test_calibration_holds_with_a_strong_interaction():
    s = simulate_survey(seed=5, n_raters=400, n_prompts=30,
                        interactions={"emotional_awareness": {"politics": 1.5, "ethnicity": 1.0},
                                      "toxicity": {"gender": 1.0}})
    for key, target in PAPER_TARGETS.items():
        dim, factor, level = key.split("|")
        reported = next(c["estimate"] for c in s.truth["contrasts"]
                        if (c["dimension"], c["factor"], c["level"], c["measure"])
                        == (dim, factor, level, "relative_pct"))
        assert reported == pytest.approx(target, abs=1e-6)
        assert mc_relative_pct(s, dim, factor, level) == pytest.approx(target, abs=0.5)


def test_interactions_follow_the_dimensions_override():
    s = simulate_survey(seed=1, n_raters=60, n_prompts=6, dimensions=("emotional_awareness",),
                        targets={})
    assert s.truth["interactions"] == {"emotional_awareness": {"politics": 1.15,
                                                              "ethnicity": 0.555}}
    assert set(s.truth["interaction_loadings"]) == {"emotional_awareness"}


@pytest.mark.parametrize(("interactions", "message"), [
    ({"sadness": {"gender": 0.5}},
     "interactions['sadness']: unknown dimension 'sadness'; dimensions are toxicity, "
     "emotional_awareness, sensitivity, stereotypical_bias, helpfulness"),
    ({"toxicity": {"religion": 0.5}},
     "interactions['toxicity']['religion']: unknown factor 'religion'; factors are gender, "
     "politics, ethnicity, country, age"),
    ({"toxicity": {"gender": -0.5}},
     "interactions['toxicity']['gender']: sd must be a finite number >= 0, got -0.5"),
    ({"toxicity": {"gender": "big"}},
     "interactions['toxicity']['gender']: sd must be a finite number >= 0, got 'big'"),
    ({"toxicity": 0.5},
     "interactions['toxicity']: expected a mapping factor -> sd, got 0.5"),
    ([("toxicity", {"gender": 0.5})],
     "interactions: expected a mapping dimension -> {factor: sd}, got list"),
])
def test_bad_interactions_are_named(interactions, message):
    with pytest.raises(DataError) as err:
        simulate_survey(n_raters=20, n_prompts=4, interactions=interactions)
    assert str(err.value) == message
