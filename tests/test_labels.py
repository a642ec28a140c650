"""Soft labels: hand computations from the posterior draws, coverage, integration, errors.

One tiny ADVI fit (60 raters, 30 items, 2 dimensions) is shared; every expected value is
recomputed here directly from its posterior draws, without the library's kernels.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

from disagree._io import write_table
from disagree.data import simulate_survey
from disagree.errors import ModelError
from disagree.labels import read_soft_labels, soft_labels, write_soft_labels
from disagree.labels.posterior import mixture_units
from disagree.model import fit
from disagree.ordinal import design_matrix

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
DIMS = ["toxicity", "emotional_awareness"]
PROBS = [f"p_{k}" for k in range(1, 6)]


@pytest.fixture(scope="module")
def fitted():
    survey = simulate_survey(seed=3, n_raters=60, n_prompts=6)
    return fit(survey.table, ["gender", "politics"], {"gender": "female", "politics": "liberal"},
               DIMS, sampler="advi", draws=100, seed=1, progress=False, advi_iterations=5000)


@pytest.fixture(scope="module")
def raters(fitted):
    return soft_labels(fitted, unit="rater")


def draws_of(fitted, name: str) -> np.ndarray:
    """Posterior draws of ``name`` with chain and draw flattened into the first axis."""
    values = fitted.idata.posterior[name].values
    return values.reshape(-1, *values.shape[2:])


def summarise(cdf: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(p_k, mean, sd) from per-draw cumulative probabilities (S, K-1), as documented."""
    full = np.concatenate([np.zeros((len(cdf), 1)), cdf, np.ones((len(cdf), 1))], axis=1)
    probs = np.diff(full, axis=1)  # (S, K)
    expected = probs @ np.arange(1, 6)
    return probs.mean(axis=0), expected.mean(), expected.std(ddof=1)


def row_of(frame: pd.DataFrame, **keys) -> pd.Series:
    mask = np.logical_and.reduce([frame[k] == v for k, v in keys.items()])
    assert mask.sum() == 1, keys
    return frame[mask].iloc[0]


def group_cdf(fitted, cells: list[tuple[dict[str, str], float]], item: int, d: int,
              u_zero: bool = False) -> np.ndarray:
    """Brute force: sum_c w_c E_u[logistic(c_k - x_c beta - v_j - u)] with 60 GH nodes."""
    names = list(fitted.idata.posterior.coords["factor_level"].values)
    beta, cuts = draws_of(fitted, "beta")[:, d], draws_of(fitted, "cutpoints")[:, d]
    v, sigma = draws_of(fitted, "item_effect")[:, item, d], draws_of(fitted, "rater_sd")[:, d]
    nodes, gh = np.polynomial.hermite_e.hermegauss(60)
    gh = gh / gh.sum()
    if u_zero:
        nodes, gh = np.zeros(1), np.ones(1)
    total = sum(w for _, w in cells)
    out = 0.0
    for cell, w in cells:
        x = np.array([float(cell[f] == lv) for f, lv in (n[:-1].split("[") for n in names)])
        eta = beta @ x + v  # (S,)
        vals = expit(cuts[:, :, None] - eta[:, None, None] - sigma[:, None, None] * nodes)
        out = out + w / total * (vals @ gh)
    return out  # (S, K-1)


def test_rater_level_equals_a_hand_computation(fitted, raters):
    post = fitted.idata.posterior
    r, j, d = 7, 22, 1
    x = fitted.idata.constant_data["rater_design"].values[r]
    eta = (draws_of(fitted, "beta")[:, d] @ x + draws_of(fitted, "rater_effect")[:, r, d]
           + draws_of(fitted, "item_effect")[:, j, d])
    cdf = expit(draws_of(fitted, "cutpoints")[:, d] - eta[:, None])
    probs, mean, sd = summarise(cdf)
    row = row_of(raters, rater_id=str(post.coords["rater"].values[r]),
                 item_id=str(post.coords["item"].values[j]), dimension=DIMS[d])
    np.testing.assert_allclose(row[PROBS].to_numpy(float), probs, rtol=0, atol=1e-10)
    assert row["mean"] == pytest.approx(mean, abs=1e-10)
    assert row["sd"] == pytest.approx(sd, abs=1e-10)
    assert row["mean"] == pytest.approx(float(row[PROBS].to_numpy(float) @ np.arange(1, 6)))


def test_rater_level_covers_every_rater_item_and_dimension(fitted, raters):
    post = fitted.idata.posterior
    n_raters, n_items = post.sizes["rater"], post.sizes["item"]
    assert list(raters.columns) == ["item_id", "dimension", "rater_id", *PROBS, "mean", "sd"]
    assert len(raters) == n_raters * n_items * 2
    assert not raters.duplicated(["item_id", "dimension", "rater_id"]).any()
    cd = fitted.idata.constant_data
    seen = set(zip(cd["obs_rater"].values, cd["obs_item"].values, strict=True))
    assert len(seen) < n_raters * n_items / 2  # most labels are for items the rater never saw
    np.testing.assert_allclose(raters[PROBS].sum(axis=1), 1.0, atol=1e-12)
    assert (raters[PROBS] >= 0).all().all() and (raters["sd"] > 0).all()
    assert raters["mean"].between(1, 5).all()


def test_chunking_and_thinning(fitted, raters):
    small = soft_labels(fitted, unit="rater", chunk_size=500)  # many blocks of draws/raters
    np.testing.assert_allclose(small[PROBS + ["mean", "sd"]], raters[PROBS + ["mean", "sd"]],
                               rtol=0, atol=1e-12)
    n_total = fitted.idata.posterior.sizes["chain"] * fitted.idata.posterior.sizes["draw"]
    pd.testing.assert_frame_equal(soft_labels(fitted, unit="rater", draws=n_total), raters)
    thin = soft_labels(fitted, unit="rater", draws=20, dimensions="toxicity", items=["p2-1"])
    assert len(thin) == fitted.idata.posterior.sizes["rater"]
    assert set(thin.dimension) == {"toxicity"} and set(thin.item_id) == {"p2-1"}
    assert not np.allclose(thin["mean"], row_subset(raters, "toxicity", "p2-1")["mean"])
    # 20 evenly spaced draws: the hand computation on those draws
    keep = np.round(np.linspace(0, n_total - 1, 20)).astype(int)
    r, j = 0, list(fitted.idata.posterior.coords["item"].values).index("p2-1")
    x = fitted.idata.constant_data["rater_design"].values[r]
    eta = (draws_of(fitted, "beta")[keep, 0] @ x + draws_of(fitted, "rater_effect")[keep, r, 0]
           + draws_of(fitted, "item_effect")[keep, j, 0])
    probs, mean, sd = summarise(expit(draws_of(fitted, "cutpoints")[keep, 0] - eta[:, None]))
    np.testing.assert_allclose(thin[PROBS].to_numpy(float)[0], probs, atol=1e-10)
    assert thin["sd"].iloc[0] == pytest.approx(sd, abs=1e-10)


def row_subset(frame: pd.DataFrame, dim: str, item: str) -> pd.DataFrame:
    return frame[(frame.dimension == dim) & (frame.item_id == item)]


def test_group_level_integrates_the_rater_effect(fitted):
    groups = soft_labels(fitted, unit="group", factors=["politics"])
    assert list(groups.columns) == ["item_id", "dimension", "politics", *PROBS, "mean", "sd"]
    assert len(groups) == 30 * 2 * 3
    j, d = 4, 0
    item = str(fitted.idata.posterior.coords["item"].values[j])
    # the moderates of the fit: their gender mix weights the cells
    mix = fitted.raters[fitted.raters.politics == "moderate"].value_counts("gender")
    cells = [({"gender": g, "politics": "moderate"}, float(n)) for g, n in mix.items()]
    probs, mean, sd = summarise(group_cdf(fitted, cells, j, d))
    row = row_of(groups, item_id=item, dimension=DIMS[d], politics="moderate")
    np.testing.assert_allclose(row[PROBS].to_numpy(float), probs, atol=1e-9)
    assert row["mean"] == pytest.approx(mean, abs=1e-9)
    assert row["sd"] == pytest.approx(sd, abs=1e-9)
    plugged, _, _ = summarise(group_cdf(fitted, cells, j, d, u_zero=True))
    assert np.abs(plugged - probs).max() > 1e-3  # integrating over u is not plugging in 0
    chunked = soft_labels(fitted, unit="group", factors=["politics"], chunk_size=100)
    np.testing.assert_allclose(chunked[PROBS + ["mean", "sd"]], groups[PROBS + ["mean", "sd"]],
                               rtol=0, atol=1e-12)


def test_group_without_raters_uses_its_cell(fitted):
    groups = soft_labels(fitted, unit="group", factors=["gender", "politics"], dimensions=DIMS[1])
    assert len(groups) == 30 * 3 * 3  # every combination, observed or not
    assert fitted.raters.query("gender == 'non-binary' and politics == 'moderate'").empty
    cell = [({"gender": "non-binary", "politics": "moderate"}, 1.0)]
    probs, mean, sd = summarise(group_cdf(fitted, cell, 9, 1))
    item = str(fitted.idata.posterior.coords["item"].values[9])
    row = row_of(groups, item_id=item, gender="non-binary", politics="moderate")
    np.testing.assert_allclose(row[PROBS].to_numpy(float), probs, atol=1e-9)
    assert row["sd"] == pytest.approx(sd, abs=1e-9)


def test_empty_group_takes_the_sample_mix_of_the_other_factors(caplog):
    levels = {"a": ["a0", "a1"], "b": ["b0", "b1"], "c": ["c0", "c1", "c2"]}
    raters = pd.DataFrame([("a0", "b0", "c0"), ("a0", "b0", "c1"), ("a0", "b0", "c1"),
                           ("a1", "b0", "c2"), ("a0", "b1", "c0")], columns=list(levels))
    design = xr.DataArray(design_matrix(raters, levels), dims=("rater", "factor_level"))
    fake = SimpleNamespace(spec=SimpleNamespace(levels=levels),
                           idata=SimpleNamespace(constant_data={"rater_design": design}))
    with caplog.at_level(logging.INFO, logger="disagree.labels.posterior"):
        units, cells, weights, groups = mixture_units(fake, "group", ["a", "b"], None)
    assert units.to_records(index=False).tolist() == [("a0", "b0"), ("a0", "b1"),
                                                      ("a1", "b0"), ("a1", "b1")]
    table = cells.assign(w=weights, g=groups)
    observed = table[table.g == 0].set_index("c")["w"]
    assert observed.to_dict() == {"c0": 1.0, "c1": 2.0}  # the group's own raters
    empty = table[table.g == 3]
    assert (empty.a == "a1").all() and (empty.b == "b1").all()
    assert empty.set_index("c")["w"].to_dict() == {"c0": 2.0, "c1": 2.0, "c2": 1.0}  # sample
    assert "a=a1,b=b1" in caplog.text


def test_population_level_and_poststratification(fitted):
    sample = soft_labels(fitted)
    assert list(sample.columns) == ["item_id", "dimension", "population", *PROBS, "mean", "sd"]
    assert set(sample.population) == {"sample"} and len(sample) == 30 * 2
    shares = fitted.raters.value_counts().rename("proportion").reset_index()
    target = soft_labels(fitted, population=shares)
    assert set(target.population) == {"target"}
    cols = PROBS + ["mean", "sd"]
    np.testing.assert_allclose(target[cols], sample[cols], rtol=0, atol=1e-12)
    # by hand: every rater's cell, weighted equally
    cells = [(dict(row), 1.0) for _, row in fitted.raters.iterrows()]
    probs, mean, sd = summarise(group_cdf(fitted, cells, 2, 1))
    row = sample.iloc[2 * 2 + 1]
    np.testing.assert_allclose(row[PROBS].to_numpy(float), probs, atol=1e-9)
    assert row["sd"] == pytest.approx(sd, abs=1e-9)
    conservative = soft_labels(fitted, population=pd.DataFrame(
        {"politics": ["conservative"], "proportion": [1.0]}))
    assert not np.allclose(conservative["mean"], sample["mean"])


def test_same_call_gives_identical_frames(fitted, raters, tmp_path):
    pd.testing.assert_frame_equal(soft_labels(fitted, unit="rater"), raters)
    a = soft_labels(fitted, unit="group", factors="gender")
    pd.testing.assert_frame_equal(soft_labels(fitted, unit="group", factors="gender"), a)
    path = write_soft_labels(a, tmp_path / "labels.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), a)
    csv = write_soft_labels(a, tmp_path / "labels.csv")
    back = pd.read_csv(csv)
    np.testing.assert_allclose(back[PROBS], a[PROBS], rtol=1e-15)
    assert list(back.columns) == list(a.columns)
    pd.testing.assert_frame_equal(read_soft_labels(path), a)


def test_reading_soft_labels_checks_the_format(fitted, tmp_path):
    labels = soft_labels(fitted, draws=20)
    path = write_table(tmp_path / "no_mean.csv", labels.drop(columns="mean"))
    with pytest.raises(ModelError, match=f"{path}: not a soft-label table: missing column"
                                         r"\(s\) mean"):
        read_soft_labels(path)
    bad = labels.assign(p_1=labels["p_1"] + 0.5)
    path = write_table(tmp_path / "bad.csv", bad)
    with pytest.raises(ModelError, match=r"row 1: p_1..p_K must be probabilities summing to 1"):
        read_soft_labels(path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"unit": "item"}, r"unknown unit 'item'; choose one of rater, group, population"),
    ({"unit": "group", "factors": ["age"]}, r"factors=\['age'\]: expected distinct factors of "
                                            r"the fit \(gender, politics\); unknown: age"),
    ({"dimensions": ["helpfulness"]}, r"dimension\(s\) 'helpfulness' not in the fit; "
                                      r"dimensions are toxicity, emotional_awareness"),
    ({"items": ["nope"]}, r"item\(s\) 'nope' not in the fit"),
    ({"unit": "rater", "factors": "gender"},
     r"factors='gender' is only used with unit='group' \(got unit='rater'\)"),
    ({"unit": "rater", "population": pd.DataFrame({"gender": ["male"], "proportion": [1]})},
     r"population is only used with unit='population'"),
    ({"draws": 0}, r"draws=0: expected a positive integer"),
    ({"population": pd.DataFrame({"gender": ["robot"], "proportion": [1]})},
     r"level\(s\) robot of 'gender' are not in the fit"),
])
def test_bad_arguments_name_the_problem(fitted, kwargs, message):
    with pytest.raises(ModelError, match=message):
        soft_labels(fitted, **kwargs)


def test_write_rejects_an_unknown_format(fitted, tmp_path):
    labels = soft_labels(fitted, items=["p1-1"])
    with pytest.raises(ModelError, match=r"unsupported suffix '\.xlsx'"):
        write_soft_labels(labels, tmp_path / "labels.xlsx")
    assert not list(tmp_path.iterdir())
