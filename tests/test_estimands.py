"""Estimands of the contrasts (issue 24): every measure for a new and a typical rater, against
hand-computed cases, the simulator's truth and a fit; today's numbers kept; poststratification
within population cells."""

from __future__ import annotations

import re
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import DIMENSION
from scipy.integrate import quad
from scipy.special import expit
from scipy.stats import norm

from disagree.data import simulate_survey
from disagree.errors import DisagreeWarning, ModelError
from disagree.model import contrasts_table, population_cells, write_contrasts
from disagree.model.contrasts import HEADLINE_ESTIMAND, MEASURES, estimand_text
from disagree.ordinal import coef_names, design_matrix, estimands

LEVELS = {"gender": ["female", "male"], "politics": ["liberal", "conservative", "moderate"]}
DIMS = ["toxicity", "helpfulness"]


def posterior(beta, cutpoints, item_effect, rater_sd, raters, levels, obs_item, obs_dim,
              dims):
    """A disagree-shaped InferenceData from arrays with (chain, draw) first."""
    names = [f"{f}[{lv}]" for f, lv in coef_names(levels)]
    post = xr.Dataset({
        "beta": (("chain", "draw", "dimension", "factor_level"), beta),
        "cutpoints": (("chain", "draw", "dimension", "cutpoint"), cutpoints),
        "item_effect": (("chain", "draw", "item", "dimension"), item_effect),
        "rater_sd": (("chain", "draw", "dimension"), rater_sd)},
        coords={"dimension": dims, "factor_level": names})
    const = xr.Dataset({"rater_design": (("rater", "factor_level"),
                                         design_matrix(raters, levels)),
                        "obs_item": ("obs", np.asarray(obs_item)),
                        "obs_dimension": ("obs", np.asarray(obs_dim))},
                       coords={"factor_level": names})
    return az.InferenceData(posterior=post, constant_data=const)


def toy_idata() -> az.InferenceData:
    """2 chains x 5 draws, 2 dimensions, 6 raters, 4 items (item 3 not on helpfulness)."""
    rng = np.random.default_rng(24)
    raters = pd.DataFrame({"gender": ["female", "male", "male", "female", "male", "female"],
                           "politics": ["liberal", "liberal", "conservative", "moderate",
                                        "moderate", "conservative"]})
    beta = rng.normal(0, 0.5, (2, 5, 2, 3))
    cut = np.sort(rng.normal(0, 1.5, (2, 5, 2, 4)), axis=-1)
    item = rng.normal(0, 0.8, (2, 5, 4, 2))
    sd = rng.uniform(0.3, 1.2, (2, 5, 2))
    return posterior(beta, cut, item, sd, raters, LEVELS, [0, 1, 2, 3, 0, 1, 2],
                     [0, 0, 0, 0, 1, 1, 1], DIMS)


#: The default table of the toy posterior (estimate, lower, upper) computed by the code before
#: the estimands were added (commit ba1bc01): rows log_odds, relative_pct, pp per coefficient.
BEFORE_DEFAULT = [
    (0.08546854330722, -1.18604092278441, 0.91294693200478),
    (3.96801636725161, -44.0083636176212, 39.70349269004113),
    (1.81864589994334, -23.10042116109582, 15.76075271335243),
    (0.07676660048822, -0.5733607991213, 0.79868229176253),
    (2.72549751703911, -28.7989769364875, 43.0076881021923),
    (0.95502297403398, -11.61333096749426, 13.97343463632343),
    (0.05780049181214, -0.65079078238937, 0.83302140256889),
    (1.20244498695729, -34.97527032065332, 28.79197644756286),
    (1.34382368878209, -9.66504536975191, 13.89762838368112),
    (-0.09403532057566, -0.98227676732625, 0.76228149124867),
    (-3.25882697739191, -39.72052521550018, 34.35623349542942),
    (-1.01461564349548, -18.40755596560056, 14.7760838701701),
    (-0.38594598782163, -0.84264808192237, -0.0108287308951),
    (-15.42305685854548, -38.48557099606831, -0.11019848769479),
    (-7.19841160679093, -17.00349953154637, -0.19301086974577),
    (-0.21425894295332, -1.22117520838096, 0.52473785068652),
    (-9.22828212758815, -46.87673909047736, 25.221592759927),
    (-3.22657258584389, -21.75573380848685, 11.50504022766482),
]
#: The same with threshold=5.
BEFORE_THRESHOLD_5 = [
    (0.08546854330722, -1.18604092278441, 0.91294693200478),
    (9.51791370211799, -46.01436624696309, 56.95177260278373),
    (1.59174996120881, -22.39867848391996, 15.80898436678961),
    (0.07676660048822, -0.5733607991213, 0.79868229176253),
    (3.04905474477018, -32.15317682612, 45.79862981417131),
    (1.72103336510159, -10.1491904001387, 14.72818945327731),
    (0.05780049181214, -0.65079078238937, 0.83302140256889),
    (5.64304159524669, -40.80270869618697, 67.32255463447257),
    (1.88153539052904, -7.10080886202984, 14.00083886696755),
    (-0.09403532057566, -0.98227676732625, 0.76228149124867),
    (-0.18279392066768, -47.8043801324866, 74.57649807254757),
    (-0.69656556314338, -15.79405518201644, 8.14931381887278),
    (-0.38594598782163, -0.84264808192237, -0.0108287308951),
    (-21.40950927879759, -45.88986730974981, -0.62034062223422),
    (-5.54064155992122, -12.3579702814388, 0.05538338691145),
    (-0.21425894295332, -1.22117520838096, 0.52473785068652),
    (-9.39380679347005, -56.37649506241711, 39.65187302511066),
    (-1.58314763192061, -15.52608123584354, 10.11071926784524),
]
#: ``mean_diff`` of ``on="mean"`` before (now ``mean_rating``), one row per coefficient.
BEFORE_MEAN_DIFF = [
    (0.04805261954726, -0.90135094729706, 0.59156953631569),
    (0.03684881594583, -0.456388286467, 0.55361138463045),
    (0.03633376909401, -0.38430301740519, 0.42177043338256),
    (-0.04245894768607, -0.65199013678066, 0.50245518588486),
    (-0.25145194030974, -0.63812711250083, -0.00814743984853),
    (-0.0919751721872, -0.63843730730374, 0.40897246533506),
]


# --- today's numbers ------------------------------------------------------------------------

def test_default_table_keeps_todays_numbers_and_says_the_rater():
    table = contrasts_table(toy_idata(), LEVELS, DIMS, 5)
    assert list(table.columns) == ["dimension", "factor", "level", "reference", "rater",
                                   "measure", "estimate", "lower", "upper"]
    assert set(table["rater"]) == {"new"}
    assert list(table["measure"]) == ["log_odds", "relative_pct", "pp"] * 6
    np.testing.assert_allclose(table[["estimate", "lower", "upper"]].to_numpy(),
                               np.array(BEFORE_DEFAULT), rtol=0, atol=1e-12)
    t5 = contrasts_table(toy_idata(), LEVELS, DIMS, 5, threshold=5, rater="new")
    np.testing.assert_allclose(t5[["estimate", "lower", "upper"]].to_numpy(),
                               np.array(BEFORE_THRESHOLD_5), rtol=0, atol=1e-12)


def test_on_mean_gives_the_mean_rating_and_no_percent_of_a_mean():
    table = contrasts_table(toy_idata(), LEVELS, DIMS, 5, on="mean")
    assert list(table["measure"]) == ["log_odds", "mean_rating"] * 6
    rows = table[table["measure"] == "mean_rating"]
    np.testing.assert_allclose(rows[["estimate", "lower", "upper"]].to_numpy(),
                               np.array(BEFORE_MEAN_DIFF), rtol=0, atol=1e-12)


def test_bad_rater_and_measures_are_named():
    idata = toy_idata()
    with pytest.raises(ModelError, match=re.escape(
            "rater='median': expected distinct names from new, typical")):
        contrasts_table(idata, LEVELS, DIMS, 5, rater="median")
    with pytest.raises(ModelError, match=re.escape(
            "measures=['pp', 'percent']: expected distinct names from log_odds, odds_ratio, "
            "relative_pct, pp, mean_rating, all")):
        contrasts_table(idata, LEVELS, DIMS, 5, measures=["pp", "percent"])


def test_headline_estimand_is_stated():
    assert HEADLINE_ESTIMAND == (
        "relative_pct: the percent difference in the probability of a rating of 4 or higher "
        "on the 1-5 scale, level vs reference, for a new rater of each group (averaged over "
        "the fitted distribution of rater effects), averaged over the items rated on the "
        "dimension and over the sample's mix of the other rater attributes.")
    assert "rater effect 0" in estimand_text(rater="typical")
    assert "rating of 2 or higher on the 1-3 scale" in estimand_text(3, 2, measure="pp")
    assert "target population's mix" in estimand_text(population=True)


# --- hand-computed estimands ----------------------------------------------------------------

HAND_LEVELS = {"g": ["f", "m"], "p": ["l", "c"]}
HAND_RATERS = pd.DataFrame({"g": ["f", "f", "m", "m", "f"], "p": ["l", "c", "c", "c", "l"]})
HAND = dict(cut=np.array([-1.0, 0.3, 1.5]), beta={"g": -0.4, "p": 0.7},
            items=np.array([0.2, -0.5]), sigma=0.9)


def hand_p_high(t: int, setting: dict[str, str], rater: str) -> float:
    """P(rating >= t) with ``setting`` imposed on every rater, by direct sums and quadrature."""
    def at(u: float) -> float:
        total = 0.0
        for _, row in HAND_RATERS.assign(**setting).iterrows():
            eta = HAND["beta"]["g"] * (row["g"] == "m") + HAND["beta"]["p"] * (row["p"] == "c")
            total += expit(eta + HAND["items"] + u - HAND["cut"][t - 2]).mean()
        return total / len(HAND_RATERS)
    if rater == "typical":
        return at(0.0)
    return quad(lambda u: at(u) * norm.pdf(u, scale=HAND["sigma"]), -np.inf, np.inf,
                epsabs=1e-12)[0]


def hand_idata() -> az.InferenceData:
    beta = np.array([HAND["beta"]["g"], HAND["beta"]["p"]]).reshape(1, 1, 1, 2)
    return posterior(beta, HAND["cut"].reshape(1, 1, 1, 3), HAND["items"].reshape(1, 1, 2, 1),
                     np.full((1, 1, 1), HAND["sigma"]), HAND_RATERS, HAND_LEVELS, [0, 1],
                     [0, 0], ["d"])


@pytest.mark.parametrize("rater", ["new", "typical"])
def test_every_estimand_against_a_hand_computed_case(rater):
    table = contrasts_table(hand_idata(), HAND_LEVELS, ["d"], 4, threshold=3, rater=rater,
                            measures="all").set_index(["factor", "level", "measure"])
    assert set(table["rater"]) == {rater}
    assert (table["lower"] == table["estimate"]).all()  # one draw
    for factor, level, ref in [("g", "m", "f"), ("p", "c", "l")]:
        b = HAND["beta"][factor]
        high = {lv: [hand_p_high(t, {factor: lv}, rater) for t in (2, 3, 4)]
                for lv in (level, ref)}
        expected = {"log_odds": b, "odds_ratio": np.exp(b),
                    "relative_pct": 100 * (high[level][1] / high[ref][1] - 1),
                    "pp": 100 * (high[level][1] - high[ref][1]),
                    "mean_rating": sum(high[level]) - sum(high[ref])}  # E[Y] = 1 + sum P(>=t)
        for measure, value in expected.items():
            got = table.loc[(factor, level, measure), "estimate"]
            assert got == pytest.approx(value, abs=1e-5), (factor, measure, got, value)


def test_typical_rater_odds_ratio_is_the_same_at_every_threshold():
    """One item, one cell, u = 0: the standardised odds ratio is exp(beta) at every threshold."""
    levels = {"g": ["f", "m"]}
    for t in (2, 3, 4):
        res = estimands(HAND["cut"][None], np.array([[-0.4]]), np.array([[0.3]]),
                        np.array([0.9]), pd.DataFrame({"g": ["f"]}), levels, t,
                        "typical")[("g", "m")]
        odds = [p / (1 - p) for p in (res["p_level"][0], res["p_reference"][0])]
        assert odds[0] / odds[1] == pytest.approx(float(res["odds_ratio"][0]), rel=1e-6)
        assert res["odds_ratio"][0] == pytest.approx(np.exp(-0.4))


# --- the simulator's truth ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_survey():
    return simulate_survey(seed=2, n_raters=80, n_prompts=6, interactions={},
                           dimensions=("toxicity", "emotional_awareness"))


def test_truth_gives_every_estimand_and_keeps_its_contrasts(small_survey):
    truth = small_survey.truth
    est = pd.DataFrame(truth["estimands"])
    assert set(est["measure"]) == set(MEASURES) and set(est["rater"]) == {"new", "typical"}
    # 2 dimensions x 12 coefficients x 2 raters x (3 + 2 measures x 4 thresholds)
    assert len(est) == 2 * 12 * 2 * 11
    assert est.loc[est["measure"].isin(["relative_pct", "pp"]), "threshold"].notna().all()
    key = ["dimension", "factor", "level"]
    con = pd.DataFrame(truth["contrasts"])
    new = est[(est["rater"] == "new") & (est["threshold"].isna() | (est["threshold"] == 4))]
    for measure, name in [("relative_pct", "relative_pct"), ("pp", "pp"),
                          ("mean_rating", "mean_diff")]:
        a = new[new["measure"] == measure].set_index(key)["estimate"]
        b = con[con["measure"] == name].set_index(key)["estimate"]
        pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), check_exact=True)
    eff = pd.DataFrame(truth["effects"]).set_index(key)["log_odds"].sort_index()
    ors = est[(est["measure"] == "odds_ratio") & (est["rater"] == "typical")]
    np.testing.assert_allclose(ors.set_index(key)["estimate"].sort_index(), np.exp(eff))
    # the headline: a typical rater's contrast is larger than a new rater's (-18% by design)
    rel = est[(est["measure"] == "relative_pct") & (est["threshold"] == 4)
              & (est["dimension"] == "toxicity") & (est["level"] == "male")]
    by = rel.set_index("rater")["estimate"]
    assert by["new"] == pytest.approx(-18.0, abs=1e-6) and by["typical"] < by["new"] - 1


@pytest.mark.parametrize("threshold", [2, 4])
def test_model_side_reproduces_the_truth_from_the_true_parameters(small_survey, threshold):
    """The posterior code on a one-draw 'posterior' at the true values gives truth.json."""
    truth = small_survey.truth
    levels, dims = truth["levels"], list(small_survey.config.dimensions)
    names = coef_names(levels)
    eff = {(e["dimension"], e["factor"], e["level"]): e["log_odds"] for e in truth["effects"]}
    beta = np.array([[eff[(d, f, lv)] for f, lv in names] for d in dims])
    raters = small_survey.ratings.drop_duplicates("rater_id")[list(levels)]
    n_items = len(truth["item_effects"]["item_id"])
    idata = posterior(beta[None, None], np.array([truth["cutpoints"][d] for d in dims])[None, None],
                      np.column_stack([truth["item_effects"][d] for d in dims])[None, None],
                      np.array([truth["rater_sd"][d] for d in dims])[None, None], raters, levels,
                      np.tile(np.arange(n_items), len(dims)), np.repeat(np.arange(len(dims)),
                                                                        n_items), dims)
    model = contrasts_table(idata, levels, dims, 5, threshold=threshold, measures="all",
                            rater=["new", "typical"])
    est = pd.DataFrame(truth["estimands"])
    est = est[est["threshold"].isna() | (est["threshold"] == threshold)]
    merged = model.merge(est, on=["dimension", "factor", "level", "rater", "measure"])
    assert len(merged) == len(model) == 2 * 12 * 2 * 5
    # truth.json rounds the item effects to 6 decimals
    np.testing.assert_allclose(merged["estimate_x"], merged["estimate_y"], rtol=0, atol=2e-4)


# --- poststratification within population cells --------------------------------------------

def test_population_cells_take_the_mix_within_each_cell():
    levels = {"country": ["US", "DE", "FR"], "eth": ["W", "B"], "age": ["y", "o"]}
    sample = pd.DataFrame({"country": ["US"] * 4 + ["DE"] * 4,
                           "eth": ["W", "B", "B", "B", "W", "W", "W", "B"],
                           "age": ["y", "y", "o", "o", "y", "o", "o", "o"]})
    pop = pd.DataFrame({"country": ["US", "DE"], "proportion": [2, 3]})
    cells, w = population_cells(pop, sample, levels)
    got = dict(zip(map(tuple, cells[list(levels)].to_numpy()), w, strict=True))
    # US: W-y 1/4, B-y 1/4, B-o 2/4; DE: W-y 1/4, W-o 2/4, B-o 1/4 (not the overall mix)
    assert got == pytest.approx({("US", "W", "y"): 0.4 / 4, ("US", "B", "y"): 0.4 / 4,
                                 ("US", "B", "o"): 0.4 / 2, ("DE", "W", "y"): 0.6 / 4,
                                 ("DE", "W", "o"): 0.6 / 2, ("DE", "B", "o"): 0.6 / 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cell absent but with no share: no warning
        cells, w = population_cells(pop.assign(country=["US", "FR"], proportion=[1, 0]),
                                    sample, levels)
    assert w.sum() == pytest.approx(1.0)


def test_population_cells_absent_from_the_sample_fall_back_with_a_warning():
    levels = {"country": ["US", "DE", "FR"], "eth": ["W", "B"], "age": ["y", "o"]}
    sample = pd.DataFrame({"country": ["US", "US", "DE", "DE"], "eth": ["W", "B", "B", "B"],
                           "age": ["y", "y", "o", "o"]})
    pop = pd.DataFrame({"country": ["FR", "US", "FR"], "age": ["y", "y", "o"],
                        "proportion": [1, 2, 1]})
    with pytest.warns(DisagreeWarning, match=re.escape(
            "population cell(s) with no rater in the sample: country=FR, age=o; country=FR, "
            "age=y; they take the sample's overall mix of eth")) as record:
        cells, w = population_cells(pop, sample, levels)
    assert issubclass(record[0].category, UserWarning)
    got = dict(zip(map(tuple, cells[list(levels)].to_numpy()), w, strict=True))
    # US-y: W 1/2, B 1/2 within the cell; FR cells: the overall eth mix W 1/4, B 3/4
    assert got == pytest.approx({("US", "W", "y"): 0.25, ("US", "B", "y"): 0.25,
                                 ("FR", "W", "y"): 0.25 / 4, ("FR", "B", "y"): 0.25 * 3 / 4,
                                 ("FR", "W", "o"): 0.25 / 4, ("FR", "B", "o"): 0.25 * 3 / 4})


def test_poststratified_contrasts_use_the_mix_within_cells():
    raters = pd.DataFrame({"gender": ["female", "female", "female", "male", "male", "male"],
                           "politics": ["liberal", "liberal", "conservative", "conservative",
                                        "moderate", "moderate"]})
    base = toy_idata()
    idata = posterior(*(base.posterior[v].values for v in ("beta", "cutpoints", "item_effect",
                                                          "rater_sd")),
                      raters, LEVELS, [0, 1, 2, 3, 0, 1, 2], [0, 0, 0, 0, 1, 1, 1], DIMS)
    pop = pd.DataFrame({"gender": ["female", "male"], "proportion": [0.2, 0.8]})
    got = contrasts_table(idata, LEVELS, DIMS, 5, population=pop, measures=["pp"])
    within = (pd.DataFrame({"gender": ["female", "female", "male", "male"],
                            "politics": ["liberal", "conservative", "conservative", "moderate"]}),
              [0.2 * 2 / 3, 0.2 / 3, 0.8 / 3, 0.8 * 2 / 3])
    overall = (pd.DataFrame({"gender": ["female"] * 3 + ["male"] * 3,
                             "politics": LEVELS["politics"] * 2}), [0.2 / 3] * 3 + [0.8 / 3] * 3)
    flat = {v: base.posterior[v].values.reshape(10, *base.posterior[v].shape[2:])
            for v in ("beta", "cutpoints", "item_effect", "rater_sd")}
    for d, items in [(0, [0, 1, 2, 3]), (1, [0, 1, 2])]:
        rows = got[got["dimension"] == DIMS[d]]["estimate"].to_numpy()
        for (cells, weights), same in [(within, True), (overall, False)]:
            res = estimands(flat["cutpoints"][:, d], flat["beta"][:, d],
                            flat["item_effect"][:, items, d], flat["rater_sd"][:, d],
                            cells, LEVELS, 4, weights=np.array(weights))
            want = [float(np.mean(res[key]["pp"])) for key in coef_names(LEVELS)]
            assert np.allclose(rows, want, rtol=1e-10, atol=0) == same


# --- on a fit -------------------------------------------------------------------------------

@pytest.mark.slow
def test_fit_covers_the_true_estimands(plain_survey, plain_fit_without):
    """Every measure, both raters, of the calibrated politics contrast covers the truth."""
    fit = plain_fit_without
    table = fit.contrasts(rater=["new", "typical"], measures="all")
    est = pd.DataFrame(plain_survey.truth["estimands"])
    est = est[(est["dimension"] == DIMENSION) & (est["threshold"].isna()
                                                  | (est["threshold"] == 4))]
    merged = table.merge(est.rename(columns={"estimate": "truth"}),
                         on=["dimension", "factor", "level", "rater", "measure"])
    assert len(merged) == len(table) == 4 * 2 * 5  # male, non-binary, conservative, moderate
    inside = (merged["lower"] <= merged["truth"]) & (merged["truth"] <= merged["upper"])
    headline = merged[merged["level"] == "conservative"]
    assert inside[headline.index].all(), headline
    assert inside.mean() >= 0.8
    # the default call is the new rater's relative_pct, pp and log_odds of the full table
    default = fit.contrasts()
    same = table[(table["rater"] == "new")
                 & table["measure"].isin(["log_odds", "relative_pct", "pp"])]
    pd.testing.assert_frame_equal(default, same.reset_index(drop=True))


@pytest.mark.slow
def test_write_contrasts_on_the_mean_plots_the_mean_rating(plain_fit_without, tmp_path):
    table, paths = write_contrasts(plain_fit_without, tmp_path / "c.csv", on="mean")
    assert set(table["measure"]) == {"log_odds", "mean_rating"}
    assert [p.name for p in paths] == ["c.csv", "c.png"] and paths[1].stat().st_size > 0
    assert pd.read_csv(paths[0])["rater"].eq("new").all()
