"""Per-item group disagreement (disagree.labels.disagreement) on one small fit with interactions.

One fit (a 300-rater survey simulated with a strong politics-by-item interaction) serves every
test; the fit *without* interactions is the same posterior with the interaction variables
removed and ``spec.interactions`` empty, which is exactly what a fit without interactions
hands to the code (nothing else is read), at no second compile.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from scipy import integrate
from scipy.special import expit
from scipy.stats import spearmanr

import disagree as dg
from disagree._io import write_figure, write_table
from disagree.labels.disagreement import (
    COLUMNS,
    PAIR_COLUMNS,
    _high_probabilities,
    group_disagreement,
    level_probabilities,
    pair_disagreement,
    plot_disagreement,
    prompts_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
DIM = "emotional_awareness"
REFERENCE = {"gender": "female", "politics": "liberal"}


@pytest.fixture(scope="module")
def survey(interaction_survey):
    return interaction_survey


@pytest.fixture(scope="module")
def fitted(interaction_fit, tmp_path_factory):
    """The shared interaction fit, saved (a copy: the session's fit object stays as it was)."""
    result = dataclasses.replace(interaction_fit)
    result.save(tmp_path_factory.mktemp("fit") / "fit")
    return result


@pytest.fixture(scope="module")
def plain(fitted):
    """The fit as a fit without interactions would be: no item_group_* and no interactions."""
    idata = fitted.idata.copy()
    idata.posterior = idata.posterior.drop_vars(["item_group_effect", "item_group_sd"])
    return dataclasses.replace(fitted, idata=idata, path=None,
                               spec=dataclasses.replace(fitted.spec, interactions=()))


@pytest.fixture(scope="module")
def probs(fitted):
    return level_probabilities(fitted, "politics", DIM)


def test_a_level_probability_matches_a_direct_integral_for_one_draw(fitted):
    lp = level_probabilities(fitted, "politics", DIM, levels=["conservative"], threshold=3,
                             draws=3)
    post = fitted.idata.posterior
    flat = int(np.round(np.linspace(0, post.sizes["chain"] * post.sizes["draw"] - 1, 3)[1]))
    one = post.isel(chain=flat // post.sizes["draw"], draw=flat % post.sizes["draw"]).sel(
        dimension=DIM)
    beta = dict(zip(one.coords["factor_level"].values, one["beta"].values, strict=True))
    cut, sigma = one["cutpoints"].values, float(one["rater_sd"])
    item = lp.item_ids[7]
    raters = fitted.raters  # every rater of the fit, each weighted equally
    for k, level in enumerate(["liberal", "conservative"]):
        shift = (one["item_effect"].sel(item=item)
                 + one["item_group_effect"].sel(item=item, interaction_level=f"politics[{level}]"))
        total = 0.0
        for gender in raters["gender"]:
            eta = (beta.get(f"gender[{gender}]", 0.0) + beta.get(f"politics[{level}]", 0.0)
                   + float(shift))
            # P(Y >= 3) = 1 - P(Y <= 2) = 1 - logistic(c_2 - eta - u), u ~ N(0, sigma^2)
            total += integrate.quad(lambda u, eta=eta: (1 - expit(cut[1] - eta - sigma * u))
                                    * np.exp(-u * u / 2) / np.sqrt(2 * np.pi),
                                    -np.inf, np.inf, epsabs=1e-12)[0]
        assert lp.draws[1, k, 7] == pytest.approx(total / len(raters), abs=1e-7)


def test_draws_do_not_depend_on_the_chunking(fitted):
    small = level_probabilities(fitted, "politics", DIM, draws=5, chunk_size=1)
    assert np.allclose(small.draws, level_probabilities(fitted, "politics", DIM, draws=5).draws,
                       rtol=0, atol=1e-12)


def test_the_grid_and_the_nodes_agree_and_tiny_sds_use_the_nodes():
    rng = np.random.default_rng(1)
    a = rng.normal(-0.5, 1.0, (8, 3, 10))  # 8 draws, 3 settings, 10 cells
    sigma = np.array([0.0, 1e-4, 0.05, 0.4, 1.0, 2.0, 3.0, 6.0])
    effects, profiles = rng.normal(size=(8, 3, 25)), np.repeat(np.arange(3)[:, None], 10, 1)
    weights = rng.random(10)
    auto = _high_probabilities(a, sigma, effects, profiles, weights, 20, 1000)
    grid = _high_probabilities(a[1:], sigma[1:], effects[1:], profiles, weights, 20, 1000, "grid")
    nodes = _high_probabilities(a, sigma, effects, profiles, weights, 200, 10**6, "nodes")
    assert np.abs(grid[:-1] - nodes[1:-1]).max() < 1e-9  # 200 nodes are exact up to sd 3
    assert np.abs(auto[:-1] - nodes[:-1]).max() < 1e-9
    # sd 6, where the nodes are not exact: a direct integral of one entry
    exact = sum(w * integrate.quad(lambda u, c=c: expit(a[7, 0, c] + effects[7, 0, 3] + 6 * u)
                                   * np.exp(-u * u / 2) / np.sqrt(2 * np.pi), -np.inf, np.inf,
                                   epsabs=1e-13)[0] for c, w in enumerate(weights))
    assert auto[7, 0, 3] == pytest.approx(exact / weights.sum(), abs=1e-11)
    # sd 0: every cell's logistic, no integral
    direct = (expit(a[0][:, :, None] + effects[0][profiles]) * weights[:, None]).sum(1)
    assert np.allclose(auto[0], direct / weights.sum(), rtol=0, atol=1e-14)


def test_without_interactions_no_level_orders_a_pair_differently(plain, probs, survey):
    lp = level_probabilities(plain, "politics", DIM)
    pairs = lp.pair_table(survey.table)
    assert len(pairs) == 24 * 10 * 2  # 24 prompts x C(5, 2) pairs x 2 levels
    assert (pairs["p_order_differs"] == 0).all()
    items = lp.item_table(prompts=survey.table)
    others = items[items["level"] != "liberal"]
    assert (others["p_order_differs_max"] == 0).all()
    # every level's draws order the items exactly as the reference's do
    ref_order = np.argsort(lp.draws[:, 0], axis=1)
    for k in (1, 2):
        assert np.array_equal(np.argsort(lp.draws[:, k], axis=1), ref_order)
    # the interaction fit does reorder pairs
    assert probs.pair_table(survey.table)["p_order_differs"].max() > 0.9


def test_items_ranked_first_have_the_largest_true_deviation_differences(fitted, survey):
    table = group_disagreement(fitted, "politics", DIM, levels=["conservative"],
                               prompts=survey.table)
    ranked = table.drop_duplicates("item_id")["item_id"].to_numpy()
    dev = pd.DataFrame(survey.truth["item_deviations"][DIM]["politics"]).set_index("item_id")
    truth = (dev["conservative"] - dev["liberal"]).abs()[ranked].to_numpy()
    rho = spearmanr(-np.arange(len(ranked)), truth).statistic
    assert rho > 0.25, rho
    assert truth[:10].mean() > 1.5 * truth[-10:].mean()


def test_columns_rows_and_sort_order(probs, survey):
    table = probs.item_table(prompts=survey.table)
    assert list(table.columns) == COLUMNS
    assert len(table) == 120 * 3 and table.attrs["threshold"] == 4
    assert (np.diff(table["rank"]) >= 0).all()
    assert (np.diff(table.drop_duplicates("rank")["max_abs_diff_pp"]) <= 0).all()
    assert table.groupby("rank")["level"].agg(list).map(
        lambda lv: lv == ["liberal", "conservative", "moderate"]).all()
    ref, lev = table[table["level"] == "liberal"], table[table["level"] == "conservative"]
    assert ref[["diff_pp", "p_order_differs_max"]].isna().all().all()
    assert np.allclose(lev["diff_pp"], 100 * (lev["p_high"].to_numpy() - ref["p_high"].to_numpy()))
    assert (table["p_high_lower"] <= table["p_high"]).all()
    assert (table["p_high"] <= table["p_high_upper"]).all()
    first = table[table["rank"] == 1]
    assert first["max_abs_diff_pp"].iloc[0] == pytest.approx(first["diff_pp"].abs().max())
    assert (table["prompt_id"] == table["item_id"].str.split("-").str[0]).all()
    by_order = probs.item_table(prompts=survey.table, sort="order")
    key = by_order.groupby("rank")["p_order_differs_max"].max()
    assert (np.diff(key.to_numpy()) <= 0).all()
    assert by_order.attrs["sort"] == "order"
    # without prompts: the same ranking, prompt columns empty
    bare = probs.item_table()
    assert bare["rank"].tolist() == table["rank"].tolist()
    assert bare[["prompt_id", "p_order_differs_max"]].isna().all().all()


def test_pair_table_agrees_with_the_draws_and_the_items_table(probs, survey):
    pairs = probs.pair_table(survey.table)
    assert list(pairs.columns) == PAIR_COLUMNS
    assert (np.diff(pairs["p_order_differs"]) <= 0).all()
    row = pairs.iloc[3]
    a, b = probs.item_ids.index(row["item_a"]), probs.item_ids.index(row["item_b"])
    k = probs.levels.index(row["level"])
    gap_ref = probs.draws[:, 0, a] - probs.draws[:, 0, b]
    gap_lev = probs.draws[:, k, a] - probs.draws[:, k, b]
    assert row["p_order_differs"] == pytest.approx(np.mean(gap_ref * gap_lev < 0))
    assert row["p_a_over_b_level"] == pytest.approx(np.mean(gap_lev > 0))
    assert row["gap_pp_reference"] == pytest.approx(100 * gap_ref.mean())
    items = probs.item_table(prompts=survey.table).set_index(["item_id", "level"])
    item = row["item_a"]
    mine = pairs[((pairs["item_a"] == item) | (pairs["item_b"] == item))
                 & (pairs["level"] == row["level"])]
    assert items.loc[(item, row["level"]), "p_order_differs_max"] == pytest.approx(
        mine["p_order_differs"].max())


def test_prompts_in_every_form_and_from_a_fit_directory(fitted, survey):
    lp = level_probabilities(fitted.path, "politics", DIM, draws=20)
    reference = pair_disagreement(fitted.path, "politics", DIM, survey.table, draws=20)
    series = prompts_of(survey.table)
    for form in (series, series.to_dict(), survey.table.items,
                 series.rename_axis("item_id").reset_index()):
        pd.testing.assert_frame_equal(lp.pair_table(form), reference)


def test_errors_name_the_bad_value_and_the_valid_ones(fitted, survey):
    cases = [
        (dict(factor="religion"), "factor 'religion' is not a factor of the fit; factors are "
                                  "gender, politics"),
        (dict(dimension="toxicity"), "dimension 'toxicity' is not in the fit; dimensions are "
                                     "emotional_awareness"),
        (dict(levels=["green"]), "level 'green' is not a level of 'politics'; levels are "
                                 "liberal, conservative, moderate"),
        (dict(reference="centrist"), "level 'centrist' is not a level of 'politics'; levels "
                                     "are liberal, conservative, moderate"),
        (dict(levels=["liberal"]), "levels=['liberal']: give at least one level of 'politics' "
                                   "besides the reference 'liberal'"),
        (dict(threshold=6), "threshold 6 must be between 2 and 5 (the scale)"),
        (dict(draws=0), "draws=0: expected a positive integer"),
        (dict(ci=1.5), "ci=1.5: expected a probability strictly between 0 and 1"),
        (dict(sort="size"), "sort='size'; choose one of difference, order"),
        (dict(sort="order"), "sort='order' needs the items' prompts"),
        (dict(prompts=pd.DataFrame({"x": [1]})), "prompts: expected a RatingTable, a mapping "
                                                 "item_id -> prompt_id or a DataFrame with a "
                                                 "prompt_id column; got DataFrame"),
        (dict(prompts={"p01-1": "p01"}), "prompts: no prompt_id for 119 item(s) of the fit, "
                                         "e.g. 'p01-2', 'p01-3', 'p01-4'"),
    ]
    for overrides, message in cases:
        args = {"factor": "politics", "dimension": DIM, "draws": 5, **overrides}
        with pytest.raises(dg.ModelError, match=re.escape(message)):
            group_disagreement(fitted, **args)
    with pytest.raises(dg.ModelError, match=re.escape("not a disagreement table: missing "
                                                      "column(s) p_high")):
        plot_disagreement(pd.DataFrame(columns=[c for c in COLUMNS if c != "p_high"]))


def test_write_and_plot_the_table(probs, survey, tmp_path):
    table = probs.item_table(prompts=survey.table)
    write_table(tmp_path / "items.csv", table)
    png = write_figure(tmp_path / "items.png", plot_disagreement(table, top=12))
    assert png.stat().st_size > 10_000
    back = pd.read_csv(tmp_path / "items.csv")
    assert list(back.columns) == COLUMNS and len(back) == len(table)
    fig = plot_disagreement(back, top=5)  # from the file: no attrs
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == back.drop_duplicates("rank")["item_id"].tolist()[:5]  # rank 1 on top
    assert ax.get_yticks()[0] > ax.get_yticks()[-1]
    assert ax.get_xlabel() == "P(high rating)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "liberal (reference)", "conservative", "moderate"]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in dots] == [5, 5, 5]
    assert plot_disagreement(table).axes[0].get_xlabel() == "P(rating >= 4)"
