"""LOO comparisons with honest standard errors: clustered SEs, leave-one-item-out, nesting on cells.

The fits are the session's (tests/conftest.py): a survey simulated without group-by-item
interactions and one with a strong politics-by-item interaction (sd 1.0 log-odds), each fitted
with and without a politics interaction.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from disagree.cli import main
from disagree.data import simulate_survey
from disagree.errors import DisagreeWarning, ModelError
from disagree.model import compare, make_spec
from disagree.model.loo import loo, pointwise_loglik
from disagree.model.loo_clusters import (
    BY_CLUSTERED,
    BY_ITEM_LOO,
    cells_label,
    cluster_loo,
    cluster_se,
    clustered_ses,
    extra_cells,
    not_nested_note,
    relative_eff,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
NUMBER = r"-?\d+\.\d"


def test_clustered_se_of_a_hand_computed_case():
    # d = a_item + b_rater on a 3 x 3 crossing, a = b = (1, 0, -1), one rating per cell
    a = np.array([1.0, 0.0, -1.0])
    items, raters = np.repeat(["i1", "i2", "i3"], 3), np.tile(["r1", "r2", "r3"], 3)
    diff = np.repeat(a, 3) + np.tile(a, 3)
    obs = pd.DataFrame({"item": items, "rater": raters})
    se = clustered_ses(diff, obs)
    # ratings: sum (a_i + b_r)^2 = 3*2 + 3*2 = 12 (mean 0); items: sums 3a = (3, 0, -3) -> 18;
    # raters the same -> 18; two-way: 18 + 18 - 12 (cells = ratings) = 24
    assert se == pytest.approx({"rating": math.sqrt(12), "item": math.sqrt(18),
                                "rater": math.sqrt(18), "item_rater": math.sqrt(24)}, rel=1e-12)
    # unbalanced: items a, a, b, b, c, c; raters alternate
    diff = np.array([1.0, 2.0, -1.0, 0.5, 3.0, -2.0])
    obs = pd.DataFrame({"item": list("aabbcc"), "rater": ["r1", "r2"] * 3})
    se = clustered_ses(diff, obs)
    # items: sums 3, -0.5, 1 (mean 7/6): squared deviations 121/36 + 100/36 + 1/36 = 37/6
    assert cluster_se(diff, obs["item"]) == pytest.approx(math.sqrt(37 / 6), rel=1e-12)
    # raters: sums 3, 0.5 (mean 1.75): 2 * 1.25^2 = 3.125
    assert se["rater"] == pytest.approx(math.sqrt(3.125), rel=1e-12)
    # ratings: sum d^2 - n mean^2 = 19.25 - 6 (7/12)^2 = 413/24; two-way would be
    # 37/6 + 3.125 - 413/24 < 0, so it is raised to the larger one-way variance (items)
    assert se["rating"] == pytest.approx(math.sqrt(413 / 24), rel=1e-12)
    assert se["item_rater"] == pytest.approx(math.sqrt(37 / 6), rel=1e-12)
    with pytest.raises(ModelError, match="cluster_se: 6 differences but 5 cluster labels"):
        cluster_se(diff, list("aabbc"))
    with pytest.raises(ModelError, match="clustered_ses: obs has no 'rater' column"):
        clustered_ses(diff, obs[["item"]])


def test_leave_one_item_out_sums_each_items_loglik(plain_fit_without):
    ll = pointwise_loglik(plain_fit_without)
    reff = relative_eff(plain_fit_without.idata.posterior)
    rating, by_item = loo(plain_fit_without, by_item=True)
    # one rating per cluster: the rating-level LOO itself
    single = cluster_loo(ll, np.arange(ll.sizes["obs"]), reff=reff, dim="rating_id")
    np.testing.assert_allclose(single.loo_i.values, rating.loo_i.values, rtol=1e-12)
    # by item: az.loo over each item's summed log-likelihood (items sorted by label)
    items = plain_fit_without.idata.posterior["item"].values[
        plain_fit_without.idata.constant_data["obs_item"].values]
    labels = np.unique(items)
    summed = np.stack([ll.values[:, :, items == j].sum(axis=2) for j in labels], axis=2)
    manual = cluster_loo(xr.DataArray(summed, dims=("chain", "draw", "obs")), np.arange(
        len(labels)), reff=reff, dim="n")
    assert by_item.n_data_points == len(labels) == 120
    np.testing.assert_allclose(by_item.loo_i.values, manual.loo_i.values, rtol=1e-10)
    np.testing.assert_allclose(by_item.pareto_k.values, manual.pareto_k.values, rtol=1e-10)


def _compare(fits: dict) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisagreeWarning)  # high Pareto k counted in the table
        return compare(fits)


def test_no_interaction_in_the_data_is_not_supported(plain_fit, plain_fit_without, tmp_path,
                                                     capsys):
    plain_fit_without.save(tmp_path / "base")
    plain_fit.save(tmp_path / "politics")
    out = tmp_path / "loo.csv"
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "politics"), "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out).set_index("model")
    assert {"dse", "dse_item", "dse_rater", "dse_item_rater", "elpd_loo_item",
            "pareto_k_high_item", "verdict_by"} <= set(table.columns)
    row = table.loc["politics"]
    assert row["verdict"] == "politics: not supported (vs base)"
    second = table[table["rank"] == 1].iloc[0]  # the differences are to the top-ranked fit
    assert second["dse_item"] > second["dse"] and second["dse_rater"] > second["dse"]
    line = next(x for x in text.splitlines() if x.startswith("politics: the data"))
    assert line.startswith("politics: the data do not support groups disagreeing about items")
    if row["verdict_by"] == BY_ITEM_LOO:
        assert "leaving out one item at a time (PSIS-LOO over 120 items" in line
    else:  # the items' Pareto k are mostly above 0.7 on these fits: the fallback, said so
        assert row["verdict_by"] == BY_CLUSTERED
        assert re.fullmatch(
            rf"politics: the data do not support groups disagreeing about items; the simpler "
            rf"model is as good within 2 SE \(elpd difference {NUMBER} \+- {NUMBER}, {NUMBER} "
            rf"SE, rating-level LOO with the SE clustered by item and rater \(SE {NUMBER} if "
            rf"ratings were independent\); leave-one-item-out unreliable: Pareto k > 0\.7 on "
            rf"\d+ of 120 items; politics vs base\)", line), line


def test_a_strong_interaction_is_supported_with_clustered_errors(interaction_fit,
                                                                 interaction_fit_without):
    table = _compare({"base": interaction_fit_without, "politics": interaction_fit})
    assert table.loc["politics", "verdict"] == "politics: supported (vs base)"
    (c,) = table.attrs["comparisons"]
    assert c["by"] in (BY_ITEM_LOO, BY_CLUSTERED) and c["by"] == table.loc["politics",
                                                                           "verdict_by"]
    assert c["z"] > 2 and c["se"] >= c["dse"]["rating"]
    # the SE of the difference to the top model, clustered: the same numbers in the table
    assert table.loc["base", "dse_item"] == pytest.approx(c["dse"]["item"], rel=1e-9)
    assert table.loc["base", "dse_rater"] == pytest.approx(c["dse"]["rater"], rel=1e-9)
    assert table.loc["politics", ["dse", "dse_item", "dse_rater"]].tolist() == [0, 0, 0]
    assert c["items"] == 120 and 0 <= c["item_k_high"] <= 120
    assert table.attrs["summary"][0].startswith(
        "politics: the data support groups disagreeing about items (elpd difference ")


@pytest.fixture(scope="module")
def two_dims():
    survey = simulate_survey(seed=0, n_raters=60, n_prompts=4,
                             dimensions=("toxicity", "emotional_awareness"))

    def spec(interactions):
        return make_spec(survey.table, ["gender", "politics"],
                         {"gender": "female", "politics": "liberal"}, interactions=interactions)
    return spec


def test_nesting_compares_dimension_factor_cells(two_dims):
    tox_gender = two_dims({"toxicity": ["gender"]})
    everywhere = two_dims(["gender", "politics"])
    extra = extra_cells(everywhere, tox_gender)
    assert extra == [("toxicity", "politics"), ("emotional_awareness", "gender"),
                     ("emotional_awareness", "politics")]
    # not "politics" alone: gender on the other dimension is part of what the larger fit adds
    assert cells_label(extra, everywhere) == ["emotional_awareness:gender", "politics"]
    # the same factors on fewer dimensions are nested (a factor-set check missed this)
    tox_both = two_dims({"toxicity": ["gender", "politics"]})
    assert cells_label(extra_cells(everywhere, tox_both), everywhere) == [
        "emotional_awareness:gender", "emotional_awareness:politics"]
    # gender on emotional_awareness is not among toxicity:gender,politics: not nested, and said
    ea_gender = two_dims({"emotional_awareness": ["gender"]})
    assert extra_cells(tox_both, ea_gender) is None
    assert not_nested_note("tox", tox_both, {"ea": ea_gender, "tox": tox_both}) == (
        "tox: no verdict against ea: its interaction factors extend ea's but not its "
        "(dimension, factor) cells (ea has emotional_awareness:gender, tox does not)")
    assert extra_cells(tox_gender, tox_gender) is None  # equal cells: nothing to judge
    assert extra_cells(tox_gender, two_dims(None)) == [("toxicity", "gender")]
    assert cells_label([("toxicity", "gender")], tox_gender) == ["toxicity:gender"]
