"""Tests of disagree.describe on hand-computed tiny tables and one small simulated survey.

The tiny table (scale 1..5, "high" = 4 or 5)::

    rater  gender  politics      i1: tox bias   i2: tox bias
    r1     female  liberal           5   4          1   2
    r2     female  conservative      4   2          2   3
    r3     male    liberal           5   5          3   1

High toxicity: r1/i1, r2/i1, r3/i1 (3 of 6 pairs); high bias: r1/i1, r3/i1 (2 of 6), both
high: r1/i1, r3/i1. So P(bias high | tox high) = 2/3 and P(tox high | bias high) = 2/2.
"""

from __future__ import annotations

import krippendorff
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from disagree.data.ratings import load_ratings
from disagree.data.simulate import simulate_survey
from disagree.describe import (
    agreement,
    conditional_probabilities,
    describe,
    group_distributions,
    plot_conditional_probabilities,
    plot_group_differences,
    plot_rating_distribution,
    rating_distribution,
    raw_differences,
)
from disagree.errors import DataError, DisagreeWarning

RATERS = {"r1": ("female", "liberal"), "r2": ("female", "conservative"),
          "r3": ("male", "liberal")}
RATINGS = {("r1", "i1"): (5, 4), ("r1", "i2"): (1, 2), ("r2", "i1"): (4, 2),
           ("r2", "i2"): (2, 3), ("r3", "i1"): (5, 5), ("r3", "i2"): (3, 1)}


def make_table(ratings=RATINGS, raters=RATERS, scale=5, **extra):
    rows = []
    for (rater, item), values in ratings.items():
        for dim, value in zip(("tox", "bias"), values, strict=True):
            if value is None:
                continue
            gender, politics = raters[rater]
            rows.append({"rater_id": rater, "item_id": item, "dimension": dim, "rating": value,
                         "gender": gender, "politics": politics,
                         **{k: v[rater] for k, v in extra.items()}})
    return load_ratings(pd.DataFrame(rows), scale=scale)


@pytest.fixture
def tiny():
    return make_table()


@pytest.fixture(scope="module")
def survey():
    return simulate_survey(seed=1, n_raters=200).table


def estimate(frame, dimension, factor, level, measure):
    row = frame[(frame["dimension"] == dimension) & (frame["factor"] == factor)
                & (frame["level"] == level) & (frame["measure"] == measure)]
    assert len(row) == 1
    return row["estimate"].iloc[0]


# --- distributions -------------------------------------------------------------------------

def test_rating_distribution_counts_every_level(tiny):
    out = rating_distribution(tiny)
    assert list(out.columns) == ["dimension", "rating", "n", "share"]
    tox = out[out["dimension"] == "tox"]
    assert tox["rating"].tolist() == [1, 2, 3, 4, 5]
    assert tox["n"].tolist() == [1, 1, 1, 1, 2]
    assert tox["share"].tolist() == pytest.approx([1 / 6] * 4 + [2 / 6])
    bias = out[out["dimension"] == "bias"]
    assert bias["n"].tolist() == [1, 2, 1, 1, 1]


def test_rating_distribution_keeps_unused_levels():
    table = make_table({("r1", "i1"): (1, 1), ("r2", "i1"): (5, 2)})
    out = rating_distribution(table, dimensions=["bias"])
    assert set(out["dimension"]) == {"bias"}
    assert out["n"].tolist() == [1, 1, 0, 0, 0]
    assert out["share"].tolist() == [0.5, 0.5, 0.0, 0.0, 0.0]


def test_group_distributions_hand_values(tiny):
    out = group_distributions(tiny)
    assert list(out.columns) == ["dimension", "factor", "level", "n_ratings", "n_raters",
                                 "share_high", "mean", "p_1", "p_2", "p_3", "p_4", "p_5"]
    assert list(dict.fromkeys(out["factor"])) == ["gender", "politics"]
    row = out[(out["dimension"] == "bias") & (out["factor"] == "gender")
              & (out["level"] == "female")].iloc[0]
    assert (row["n_ratings"], row["n_raters"]) == (4, 2)
    assert row["share_high"] == pytest.approx(0.25)
    assert row["mean"] == pytest.approx(2.75)
    assert row[["p_1", "p_2", "p_3", "p_4", "p_5"]].tolist() == pytest.approx(
        [0, 0.5, 0.25, 0.25, 0])
    # the reference (most frequent) level comes first within each factor
    assert out[out["factor"] == "politics"]["level"].iloc[0] == "liberal"


def test_group_distributions_default_factors_skip_constant_attributes():
    table = make_table(country={"r1": "US", "r2": "US", "r3": "US"})
    assert "country" in table.rater_attributes
    assert set(group_distributions(table)["factor"]) == {"gender", "politics"}


def test_group_distributions_shares_beyond_a_short_scale_are_nan():
    table = make_table({("r1", "i1"): (5, 3), ("r2", "i1"): (4, 1), ("r3", "i1"): (2, 2)},
                       scale={"tox": 5, "bias": 3})
    out = group_distributions(table, ["gender"])
    bias = out[out["dimension"] == "bias"]
    assert bias[["p_4", "p_5"]].isna().all().all()
    assert bias[["p_1", "p_2", "p_3"]].sum(axis=1).tolist() == pytest.approx([1, 1])
    # high on a 3-point scale is the top category only
    assert bias["share_high"].tolist() == pytest.approx([0.5, 0.0])


def test_raw_differences_hand_values(tiny):
    out = raw_differences(tiny)
    assert list(out.columns) == ["dimension", "factor", "level", "reference", "measure",
                                 "estimate", "n_level", "n_reference"]
    # bias, male vs female: P(high) 1/2 vs 1/4, means 3 vs 2.75
    assert estimate(out, "bias", "gender", "male", "relative_pct") == pytest.approx(100.0)
    assert estimate(out, "bias", "gender", "male", "pp") == pytest.approx(25.0)
    assert estimate(out, "bias", "gender", "male", "mean_diff") == pytest.approx(0.25)
    # bias, conservative vs liberal: P(high) 0 vs 1/2, means 2.5 vs 3
    assert estimate(out, "bias", "politics", "conservative", "relative_pct") == \
        pytest.approx(-100.0)
    assert estimate(out, "bias", "politics", "conservative", "pp") == pytest.approx(-50.0)
    # tox, male vs female: P(high) 1/2 vs 1/2, means 4 vs 3
    assert estimate(out, "tox", "gender", "male", "relative_pct") == pytest.approx(0.0)
    assert estimate(out, "tox", "gender", "male", "mean_diff") == pytest.approx(1.0)
    row = out[(out["factor"] == "gender") & (out["dimension"] == "tox")].iloc[0]
    assert (row["reference"], row["n_level"], row["n_reference"]) == ("female", 2, 4)
    # every non-reference level of every factor on every dimension, three measures each
    assert len(out) == 2 * 2 * 3


def test_raw_differences_reference_and_threshold(tiny):
    out = raw_differences(tiny, factors=["gender"], reference={"gender": "male"}, threshold=5)
    assert set(out["level"]) == {"female"} and set(out["reference"]) == {"male"}
    # bias with high = 5: female 0/4, male 1/2
    assert estimate(out, "bias", "gender", "female", "pp") == pytest.approx(-50.0)
    # tox with high = 5: female 1/4, male 1/2
    assert estimate(out, "tox", "gender", "female", "relative_pct") == pytest.approx(-50.0)


def test_raw_differences_relative_is_nan_when_reference_has_no_high_rating(tiny):
    out = raw_differences(tiny, factors=["politics"], reference={"politics": "conservative"})
    assert np.isnan(estimate(out, "bias", "politics", "liberal", "relative_pct"))
    assert estimate(out, "bias", "politics", "liberal", "pp") == pytest.approx(50.0)


@pytest.mark.parametrize("call, match", [
    (lambda t: group_distributions(t, ["hair"]), "unknown factor 'hair'"),
    (lambda t: raw_differences(t, ["gender"], {"gender": "robot"}), "'robot'.*does not exist"),
    (lambda t: raw_differences(t, ["gender"], {"politics": "liberal"}), "not among"),
    (lambda t: rating_distribution(t, dimensions=["nope"]), "unknown dimension"),
    (lambda t: conditional_probabilities(t, threshold=9), r"threshold 9 .* 2\.\.5"),
    (lambda t: conditional_probabilities(t, threshold={"toxic": 4}), "unknown dimension"),
    (lambda t: agreement(t, factors=["hair"]), "unknown factor"),
    (lambda t: plot_group_differences(t, measure="odds"), "unknown measure 'odds'"),
])
def test_bad_arguments_raise_data_error(tiny, call, match):
    with pytest.raises(DataError, match=match):
        call(tiny)


# --- conditional probabilities ------------------------------------------------------------

def test_conditional_probabilities_hand_counts(tiny):
    out = conditional_probabilities(tiny).set_index(["given", "target"])
    assert list(out.columns) == ["p", "n_given_high", "n_both_high", "n_pairs"]
    assert out.loc[("tox", "bias"), "p"] == pytest.approx(2 / 3)
    assert out.loc[("bias", "tox"), "p"] == pytest.approx(1.0)  # asymmetric
    assert out.loc[("tox", "bias")][["n_given_high", "n_both_high", "n_pairs"]].tolist() == \
        [3, 2, 6]
    assert out.loc[("tox", "tox"), "p"] == 1.0 and out.loc[("bias", "bias"), "p"] == 1.0
    assert out.loc[("bias", "bias"), "n_given_high"] == 2


def test_conditional_probabilities_use_only_pairs_rated_on_both():
    ratings = dict(RATINGS)
    ratings[("r2", "i1")] = (4, None)  # high toxicity, no bias rating
    ratings[("r4", "i3")] = (None, 5)  # only bias
    raters = {**RATERS, "r4": ("male", "liberal")}
    out = conditional_probabilities(make_table(ratings, raters)).set_index(["given", "target"])
    assert out.loc[("tox", "bias")][["n_given_high", "n_both_high", "n_pairs"]].tolist() == \
        [2, 2, 5]
    assert out.loc[("tox", "tox")][["n_given_high", "n_pairs"]].tolist() == [3, 6]
    assert out.loc[("bias", "bias")][["n_given_high", "n_pairs"]].tolist() == [3, 6]


def test_conditional_probabilities_are_not_trivial_in_a_survey(survey):
    out = conditional_probabilities(survey).set_index(["given", "target"])
    wide = survey.ratings.pivot(index=["rater_id", "item_id"], columns="dimension",
                                values="rating")
    marginal = (wide["stereotypical_bias"] >= 4).mean()
    p = out.loc[("toxicity", "stereotypical_bias"), "p"]
    assert p > marginal + 0.05
    assert (out.xs("toxicity", level="given").loc["toxicity", "p"]) == 1.0
    assert out["p"].between(0, 1).all()


# --- agreement -----------------------------------------------------------------------------

def test_agreement_matches_krippendorff_on_the_hand_matrix(tiny):
    out = agreement(tiny, factors=["gender"])
    assert list(out.columns) == ["dimension", "factor", "level", "alpha_ordinal",
                                 "alpha_nominal", "n_raters", "n_items", "n_pairable"]
    tox = np.array([[5, 1], [4, 2], [5, 3]], dtype=float)  # raters r1..r3 x items i1, i2
    row = out[(out["dimension"] == "tox") & (out["factor"] == "all")].iloc[0]
    assert row["level"] == "all"
    for level in ("ordinal", "nominal"):
        expected = krippendorff.alpha(reliability_data=tox, level_of_measurement=level,
                                      value_domain=[1, 2, 3, 4, 5])
        assert row[f"alpha_{level}"] == pytest.approx(expected)
    assert (row["n_raters"], row["n_items"], row["n_pairable"]) == (3, 2, 2)
    female = out[(out["dimension"] == "tox") & (out["level"] == "female")].iloc[0]
    assert female["alpha_ordinal"] == pytest.approx(krippendorff.alpha(
        reliability_data=tox[:2], level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]))


def test_agreement_one_rater_group_is_nan_not_an_error(tiny):
    out = agreement(tiny, factors=["gender", "politics"])
    male = out[(out["dimension"] == "bias") & (out["level"] == "male")].iloc[0]
    assert np.isnan(male["alpha_ordinal"]) and np.isnan(male["alpha_nominal"])
    assert (male["n_raters"], male["n_items"], male["n_pairable"]) == (1, 2, 0)
    # 2 dimensions x (overall + 2 gender levels + 2 politics levels)
    assert len(out) == 2 * 5


def test_agreement_perfect_agreement_is_one_and_missing_cells_are_handled():
    ratings = {("r1", "i1"): (5, 1), ("r2", "i1"): (5, 1), ("r3", "i1"): (5, 1),
               ("r1", "i2"): (2, 4), ("r2", "i2"): (2, 4),
               ("r3", "i3"): (3, 3)}  # i3 has one rating: not pairable
    out = agreement(make_table(ratings)).set_index("dimension")
    assert out.loc["tox", "alpha_ordinal"] == pytest.approx(1.0)
    assert out.loc["tox", "alpha_nominal"] == pytest.approx(1.0)
    assert out.loc["tox", ["n_raters", "n_items", "n_pairable"]].tolist() == [3, 3, 2]


def test_agreement_undefined_alpha_is_nan():
    ratings = {(r, i): (3, 3) for r in ("r1", "r2") for i in ("i1", "i2")}
    with pytest.warns(DisagreeWarning, match="single rating category"):
        table = make_table(ratings)
    out = agreement(table)
    assert out["alpha_ordinal"].isna().all() and out["alpha_nominal"].isna().all()
    assert out["n_pairable"].tolist() == [2, 2]


def test_agreement_in_a_survey_is_between_zero_and_one(survey):
    out = agreement(survey, factors=["gender"])
    overall = out[out["factor"] == "all"]
    assert len(overall) == len(survey.dimensions)
    assert overall["alpha_ordinal"].between(0, 1).all()
    assert (overall["n_raters"] == 200).all()


# --- figures and the report ----------------------------------------------------------------

def test_figures_return_a_figure_and_their_frame(tiny):
    fig, frame = plot_conditional_probabilities(tiny)
    assert isinstance(fig, Figure)
    pd.testing.assert_frame_equal(frame, conditional_probabilities(tiny))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0.67", "2/3", "1.00", "2/2"} <= texts
    assert fig.axes[0].get_title() == "P(high on column | high on row)"
    plt.close(fig)

    fig, frame = plot_rating_distribution(tiny)
    assert isinstance(fig, Figure)
    pd.testing.assert_frame_equal(frame, rating_distribution(tiny))
    plt.close(fig)

    fig, frame = plot_group_differences(tiny, measure="pp")
    assert isinstance(fig, Figure)
    assert set(frame["measure"]) == {"pp"} and len(frame) == 4
    labels = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert "gender: male vs female" in labels
    plt.close(fig)


def test_describe_writes_every_file(tiny, tmp_path):
    plt.close("all")  # figures another test module left open in this process do not count
    written = describe(tiny, tmp_path / "out")
    tables = ["rating_distribution", "group_distributions", "raw_differences", "agreement",
              "conditional_probabilities"]
    figures = ["figure1_conditional", "figure_rating_distribution", "figure_group_differences"]
    expected = {f"{n}.csv" for n in tables + figures} | {f"{n}.png" for n in figures}
    assert set(written) == expected
    assert {p.name for p in (tmp_path / "out").iterdir()} == expected  # no temporary files
    for name in figures:
        data = written[f"{name}.png"].read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    pd.testing.assert_frame_equal(pd.read_csv(written["figure1_conditional.csv"]),
                                  pd.read_csv(written["conditional_probabilities.csv"]))
    agree = pd.read_csv(written["agreement.csv"])
    assert set(agree["factor"]) == {"all", "gender", "politics"}
    assert plt.get_fignums() == []  # every figure closed


def test_describe_checks_arguments_before_writing(tiny, tmp_path):
    with pytest.raises(DataError, match="unknown factor"):
        describe(tiny, tmp_path / "out", factors=["hair"])
    assert not (tmp_path / "out").exists()
