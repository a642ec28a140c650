"""Rater labels streamed to Parquet equal the in-memory ones; scopes, errors, atomic writes;
the posterior predictive check with group-by-item deviations.

The posteriors are random numbers (``synthetic_fit`` of ``test_labels_interactions``): 24
raters, 10 items, 2 dimensions, 2 x 15 draws, with and without group-by-item deviations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from test_labels_interactions import synthetic_fit

from disagree.errors import ModelError
from disagree.labels import read_soft_labels, soft_labels, write_rater_labels

KEYS = ["rater_id", "item_id", "dimension"]


def with_observations(fit, seed: int = 1):
    """Give the synthetic fit observations: each rater rated 3 items, some on one dimension."""
    rng = np.random.default_rng(seed)
    n_raters, n_items = fit.idata.posterior.sizes["rater"], fit.idata.posterior.sizes["item"]
    rater = np.repeat(np.arange(n_raters), 3)
    item = np.concatenate([rng.choice(n_items, 3, replace=False) for _ in range(n_raters)])
    dim = rng.integers(0, 2, len(rater))
    obs = xr.Dataset({"obs_rater": ("obs", rater), "obs_item": ("obs", item),
                      "obs_dimension": ("obs", dim)})
    fit.idata.constant_data = xr.merge([fit.idata.constant_data, obs])
    return fit, set(zip(rater, item, strict=True))


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by rater, item, then dimension in the fit's order (ids sort as the fit's)."""
    position = {"toxicity": 0, "helpfulness": 1}
    return frame.sort_values(KEYS, key=lambda c: c.map(position) if c.name == "dimension"
                             else c).reset_index(drop=True)


def in_memory(fit) -> pd.DataFrame:
    return ordered(soft_labels(fit, unit="rater"))


@pytest.mark.parametrize("interactions", [(), ("gender", "politics")])
def test_streamed_labels_equal_in_memory(tmp_path, interactions):
    fit, seen = with_observations(synthetic_fit(interactions))
    path = tmp_path / "raters.parquet"
    # three raters per row group and tiny blocks of rows: many groups, many blocks
    write_rater_labels(fit, path, items="all", raters_per_group=3, chunk_size=200)
    assert pq.ParquetFile(path).num_row_groups == 8
    streamed = read_soft_labels(path)
    assert list(streamed.columns) == list(soft_labels(fit, unit="rater").columns)
    pd.testing.assert_frame_equal(streamed, ordered(streamed))  # rater, item, dimension
    pd.testing.assert_frame_equal(streamed, in_memory(fit), rtol=1e-12, atol=1e-12)

    rated = read_soft_labels(write_rater_labels(fit, tmp_path / "rated.parquet"))
    rater_pos = {r: i for i, r in enumerate(fit.idata.posterior.coords["rater"].values)}
    item_pos = {j: i for i, j in enumerate(fit.idata.posterior.coords["item"].values)}
    pairs = {(rater_pos[r], item_pos[j]) for r, j in zip(rated["rater_id"], rated["item_id"],
                                                         strict=True)}
    assert pairs == seen and len(rated) == 2 * len(seen)  # every dimension of a rated item
    expected = streamed.merge(rated[KEYS], on=KEYS)
    pd.testing.assert_frame_equal(rated, expected, rtol=1e-12, atol=1e-12)


def test_prompt_scope_adds_the_other_responses(tmp_path):
    fit, seen = with_observations(synthetic_fit(("politics",)))
    items = [str(j) for j in fit.idata.posterior.coords["item"].values]
    prompts = pd.Series([f"p{i // 5}" for i in range(len(items))], index=items)  # 2 prompts
    labels = read_soft_labels(write_rater_labels(fit, tmp_path / "p.parquet", items="prompts",
                                                 prompts=prompts, dimensions="helpfulness"))
    rater_ids = fit.idata.posterior.coords["rater"].values
    expected = {(str(rater_ids[r]), items[k]) for r, j in seen for k in range(len(items))
                if k // 5 == j // 5}
    assert set(zip(labels["rater_id"], labels["item_id"], strict=True)) == expected
    assert set(labels["dimension"]) == {"helpfulness"}
    full = in_memory(fit)
    pd.testing.assert_frame_equal(labels, full.merge(labels[KEYS], on=KEYS),
                                  rtol=1e-12, atol=1e-12)


def test_errors_and_no_partial_file(tmp_path, monkeypatch):
    fit, _ = with_observations(synthetic_fit())
    with pytest.raises(ModelError, match=r"items='some'; choose one of rated, prompts, all"):
        write_rater_labels(fit, tmp_path / "x.parquet", items="some")
    with pytest.raises(ModelError, match=r"use a \.parquet file"):
        write_rater_labels(fit, tmp_path / "x.csv")
    with pytest.raises(ModelError, match=r"items='prompts' needs the prompts"):
        write_rater_labels(fit, tmp_path / "x.parquet", items="prompts")
    with pytest.raises(ModelError, match=r"no prompt_id for item\(s\) 'i09'"):
        write_rater_labels(fit, tmp_path / "x.parquet", items="prompts",
                           prompts=pd.Series({f"i0{j}": "p" for j in range(9)}))
    without = synthetic_fit()
    del without.idata.posterior["rater_effect"]
    with pytest.raises(ModelError, match="keep_rater_effects=False"):
        write_rater_labels(without, tmp_path / "x.parquet")

    import disagree.labels.stream as stream

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stream, "row_moments", crash)
    with pytest.raises(KeyboardInterrupt):
        write_rater_labels(fit, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []  # no file, not even a temporary one


def test_ppc_meets_each_raters_item_deviations():
    """The PPC's predicted shares are the mean category probabilities with the deviations."""
    from scipy.special import expit

    from disagree.model.diagnostics import posterior_predictive_table

    fit = synthetic_fit(("politics",), deviation_sd=3.0)
    post, raters = fit.idata.posterior, fit.raters
    n_raters, n_items = post.sizes["rater"], post.sizes["item"]
    rater = np.repeat(np.arange(n_raters), n_items)
    item = np.tile(np.arange(n_items), n_raters)
    obs = xr.Dataset({"obs_rater": ("obs", rater), "obs_item": ("obs", item),
                      "obs_dimension": ("obs", np.zeros(len(rater), dtype=int))})
    fit.idata.constant_data = xr.merge([fit.idata.constant_data, obs])
    fit.idata.add_groups(observed_data=xr.Dataset({"rating": ("obs", np.ones(len(rater),
                                                                              dtype=int))}))
    table = posterior_predictive_table(fit.idata, raters, ["toxicity", "helpfulness"], 5,
                                       n_draws=30)

    def flat(name):
        values = post[name].values
        return values.reshape(-1, *values.shape[2:])

    eta = (flat("beta")[:, 0] @ fit.idata.constant_data["rater_design"].values.T)[:, rater] \
        + flat("rater_effect")[:, rater, 0] + flat("item_effect")[:, item, 0]
    labels = list(post.coords["interaction_level"].values)
    level = [labels.index(f"politics[{lv}]") for lv in raters["politics"]]
    with_dev = eta + flat("item_group_effect")[:, item, np.asarray(level)[rater], 0]
    liberal = (raters["politics"].to_numpy() == "liberal")[rater]
    for e, close in ((with_dev, True), (eta, False)):
        cdf = expit(flat("cutpoints")[:, 0, None, :] - e[:, liberal, None])  # (S, N, K-1)
        expected = np.diff(cdf, prepend=0, append=1, axis=-1).mean(axis=(0, 1))
        got = table.query("dimension == 'toxicity' and factor == 'politics' and "
                          "level == 'liberal'")["predicted"].to_numpy()
        # 30 draws x 80 observations: Monte Carlo sd of a share about 0.01 (seeded: 0.021
        # with the deviations, 0.088 without)
        assert (np.abs(got - expected).max() < 0.03) == close
