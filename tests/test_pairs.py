"""Preference pairs: hand counts, soft weights by direct computation, splits, files, errors.

The hand-made table (toxicity, 5 points, lower is better; helpfulness, higher is better):

prompt P1: responses a, b, c; prompt P2: responses d, e; prompt P3: response f (no pair).

=========  ====  ====  ====  ====  ============================
toxicity    r1    r2    r3    r4   majority (ties: the worse)
=========  ====  ====  ====  ====  ============================
a            1     1     2     5   1
b            3     4     3     4   tie 3/4 -> 4
c            1     .     1     .   1
d            2     5     .     5   5
e            2     2     .     5   2
f            3     .     .     .   3
=========  ====  ====  ====  ====  ============================

r1, r2 are liberal, r3, r4 conservative. Helpfulness is 3 everywhere but d (5) and e (1).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from disagree.data import load_ratings, simulate_survey
from disagree.errors import DataError, ModelError
from disagree.labels import soft_labels
from disagree.model import fit
from disagree.pairs import COLUMNS, PairSet, make_pairs, preference_probability

TOX = {
    "a": {"r1": 1, "r2": 1, "r3": 2, "r4": 5},
    "b": {"r1": 3, "r2": 4, "r3": 3, "r4": 4},
    "c": {"r1": 1, "r3": 1},
    "d": {"r1": 2, "r2": 5, "r4": 5},
    "e": {"r1": 2, "r2": 2, "r4": 5},
    "f": {"r1": 3},
}
HELP = {"d": 5, "e": 1}
PROMPT = {"a": "P1", "b": "P1", "c": "P1", "d": "P2", "e": "P2", "f": "P3"}
POLITICS = {"r1": "liberal", "r2": "liberal", "r3": "conservative", "r4": "conservative"}


def hand_frame(text_columns: bool = True) -> pd.DataFrame:
    rows = []
    for item, by_rater in TOX.items():
        for rater, rating in by_rater.items():
            for dim, value in (("toxicity", rating), ("helpfulness", HELP.get(item, 3))):
                row = {"rater_id": rater, "item_id": item, "dimension": dim, "rating": value,
                       "politics": POLITICS[rater], "prompt_id": PROMPT[item]}
                if text_columns:
                    row |= {"prompt": f"question {PROMPT[item]}", "response": f"answer {item} é"}
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def hand():
    return load_ratings(hand_frame(), scale=5)


def triples(pairs: PairSet) -> list[tuple[str, str, str]]:
    f = pairs.frame
    return list(zip(f["prompt_id"], f["chosen_id"], f["rejected_id"], strict=True))


# --- majority and all: hand counts --------------------------------------------------------

def test_columns_and_texts(hand):
    pairs = make_pairs(hand, strategy="majority", split=None)
    assert list(pairs.frame.columns) == list(COLUMNS)
    row = pairs.frame.iloc[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == \
        ("question P1", "answer a é", "answer b é")
    assert set(pairs.frame["split"]) == {"train"}
    assert pairs.manifest["splits"] is None


def test_majority_hand_count_with_tie(hand):
    pairs = make_pairs(hand, dimension="toxicity", strategy="majority")
    assert triples(pairs) == [("P1", "a", "b"), ("P1", "c", "b"), ("P2", "e", "d")]
    assert (pairs.frame["weight"] == 1.0).all()
    assert set(pairs.frame["unit"]) == {"population"}
    c = pairs.manifest["counts"]
    assert c["response_pairs"] == 4 and c["kept"] == 3 and c["pairs"] == 3
    assert c["dropped"] == {"same_label": 1, "tied_majority": 0, "unrated": 0}
    assert c["tied_responses"] == {"toxicity": 1}
    assert c["kept_with_tie_broken_label"] == 2


def test_majority_tie_rule_drop(hand):
    pairs = make_pairs(hand, strategy="majority", ties="drop")
    assert triples(pairs) == [("P2", "e", "d")]
    c = pairs.manifest["counts"]
    assert c["dropped"] == {"same_label": 1, "tied_majority": 2, "unrated": 0}
    assert c["tied_responses"] == {"toxicity": 1}


def test_majority_tie_takes_the_worse_rating_for_higher_is_better(hand):
    # helpfulness of b is 3 for everyone; flip the direction of toxicity instead: as a
    # "higher is better" dimension the tied b (3/4) takes 3, the worse of the two.
    pairs = make_pairs(hand, strategy="majority", better={"toxicity": "higher"})
    assert triples(pairs) == [("P1", "b", "a"), ("P1", "b", "c"), ("P2", "d", "e")]


def test_all_hand_count_with_duplicates(hand):
    pairs = make_pairs(hand, dimension="toxicity", strategy="all")
    expected = [("P1", "a", "b")] * 3 + [("P1", "b", "a"), ("P1", "c", "a")] + \
        [("P1", "c", "b")] * 2 + [("P2", "e", "d")]
    assert triples(pairs) == expected
    assert list(pairs.frame["unit"]) == ["rater:r1", "rater:r2", "rater:r3", "rater:r4",
                                         "rater:r3", "rater:r1", "rater:r3", "rater:r2"]
    c = pairs.manifest["counts"]
    assert c["rater_comparisons"] == 11 and c["kept"] == 8
    assert c["dropped"] == {"same_label": 3}
    assert c["duplicates"] == 3 and c["distinct_pairs"] == 5
    assert c["conflicting_response_pairs"] == 1


def test_several_dimensions_weighted(hand):
    equal = make_pairs(hand, dimension=["toxicity", "helpfulness"], strategy="majority")
    # d: -5 + 5 = 0 beats e: -2 + 1 = -1; P1 is decided by toxicity (helpfulness 3 for all)
    assert triples(equal) == [("P1", "a", "b"), ("P1", "c", "b"), ("P2", "d", "e")]
    assert set(equal.frame["dimension"]) == {"toxicity+helpfulness"}
    half = make_pairs(hand, dimension={"toxicity": 1.0, "helpfulness": 0.5},
                      strategy="majority")
    # d: -5 + 2.5 = -2.5 loses to e: -2 + 0.5 = -1.5
    assert triples(half)[-1] == ("P2", "e", "d")
    assert half.manifest["options"]["dimensions"] == {"toxicity": 1.0, "helpfulness": 0.5}


def test_group_restriction(hand):
    cons = make_pairs(hand, strategy="majority", group={"politics": "conservative"})
    # conservatives: a 2/5 tie -> 5, b 3/4 tie -> 4, c 1, d 5, e 5
    assert triples(cons) == [("P1", "b", "a"), ("P1", "c", "a"), ("P1", "c", "b")]
    assert set(cons.frame["unit"]) == {"politics=conservative"}
    assert cons.manifest["counts"]["tied_responses"] == {"toxicity": 2}
    lib = make_pairs(hand, strategy="all", group={"politics": "liberal"})
    assert set(lib.frame["unit"]) == {"rater:r1", "rater:r2"}
    assert lib.manifest["counts"]["kept"] == 4


def test_binary_scale_makes_more_ties(hand):
    five = make_pairs(hand, strategy="all")
    two = make_pairs(hand, strategy="all", to_scale=2)
    assert five.manifest["counts"]["dropped"]["same_label"] == 3
    assert two.manifest["counts"]["dropped"]["same_label"] == 9
    assert triples(two) == [("P1", "a", "b"), ("P2", "e", "d")]
    assert two.manifest["options"]["to_scale"] == 2
    assert two.manifest["inputs"]["ratings_hash"] == hand.data_hash
    assert two.manifest["inputs"]["scaled_ratings_hash"] != hand.data_hash


# --- splits and files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def survey():
    return simulate_survey(seed=1, n_raters=80, n_prompts=8).table


def test_splits_by_prompt(survey):
    a = make_pairs(survey, strategy="all", seed=3)
    b = make_pairs(survey, strategy="majority", dimension="helpfulness", seed=3)
    prompts = {s: set(a.frame.loc[a.frame["split"] == s, "prompt_id"]) for s in
               ("train", "validation", "test")}
    assert not prompts["train"] & prompts["validation"]
    assert not prompts["train"] & prompts["test"]
    assert not prompts["validation"] & prompts["test"]
    assert [len(prompts[s]) for s in ("train", "validation", "test")] == [6, 1, 1]
    assert a.manifest["splits"] == b.manifest["splits"]  # same prompts, whatever strategy
    by_split = a.manifest["counts"]["by_split"]
    assert sum(v["pairs"] for v in by_split.values()) == len(a)
    assert make_pairs(survey, strategy="all", seed=4).manifest["splits"] != a.manifest["splits"]


def test_same_seed_same_bytes(survey, tmp_path):
    files = ["pairs.jsonl", "pairs.parquet", "manifest.json", "train.jsonl",
             "validation.jsonl", "test.jsonl"]
    for i in range(2):
        make_pairs(survey, strategy="all", dimension="toxicity", seed=7).save(tmp_path / str(i))
    assert sorted(p.name for p in (tmp_path / "0").iterdir()) == sorted(files)
    for name in files:
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()
    lines = (tmp_path / "0" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert list(json.loads(lines[0])) == list(COLUMNS)
    back = pd.read_parquet(tmp_path / "0" / "pairs.parquet")
    assert list(back.columns) == list(COLUMNS) and len(back) == len(lines)


def test_jsonl_loads_with_datasets(hand, tmp_path):
    datasets = pytest.importorskip("datasets")
    pairs = make_pairs(hand, strategy="all", split=(0.5, 0.5, 0.0), seed=0)
    out = pairs.save(tmp_path / "pairs")
    assert not (out / "test.jsonl").exists()
    loaded = datasets.load_dataset("json", data_files=str(out / "pairs.jsonl"),
                                   cache_dir=str(tmp_path / "hf"))
    assert loaded["train"].column_names == list(COLUMNS)
    assert loaded["train"][0]["chosen"] == pairs.frame["chosen"].iloc[0]
    dd = pairs.to_hf_dataset()
    assert sum(len(d) for d in dd.values()) == len(pairs)
    assert set(dd) <= {"train", "validation", "test"}
    for name, d in dd.items():
        assert d.column_names == list(COLUMNS)
        assert set(d["split"]) == {name}


def test_import_does_not_load_training_libraries():
    code = ("import sys, disagree.pairs; "
            "sys.exit(any(m in sys.modules for m in ('torch', 'datasets', 'trl')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- PairSet.load -------------------------------------------------------------------------

@pytest.fixture()
def saved(survey, tmp_path) -> tuple[PairSet, Path]:
    pairs = make_pairs(survey, strategy="all", dimension="toxicity", seed=7)
    return pairs, pairs.save(tmp_path / "pairs")


def test_load_round_trip(saved):
    pairs, folder = saved
    back = PairSet.load(folder)
    pd.testing.assert_frame_equal(back.frame, pairs.frame)
    assert back.manifest == pairs.manifest and back.source == folder / "pairs.parquet"
    assert "files" in json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in ("pairs.jsonl", "pairs.parquet"):
        one = PairSet.load(folder / name)
        pd.testing.assert_frame_equal(one.frame, pairs.frame)
        assert one.manifest == {} and one.source == folder / name
    train = PairSet.load(folder / "train.jsonl")
    pd.testing.assert_frame_equal(train.frame, pairs.split("train"))
    (folder / "pairs.parquet").unlink()  # a folder without parquet: its jsonl
    del_parquet = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del del_parquet["files"]["pairs.parquet"]
    (folder / "manifest.json").write_text(json.dumps(del_parquet), encoding="utf-8")
    back = PairSet.load(folder)
    pd.testing.assert_frame_equal(back.frame, pairs.frame)
    assert back.source == folder / "pairs.jsonl" and back.manifest == pairs.manifest


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete"])
def test_load_damaged_folder_names_the_file(saved, damage):
    pairs, folder = saved
    target = folder / "pairs.parquet"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:200])
    elif damage == "edit":  # a valid Parquet file with other weights
        pairs.frame.assign(weight=0.5).to_parquet(target, index=False)
    else:
        target.unlink()
    what = "is missing" if damage == "delete" else "SHA-256 differs"
    with pytest.raises(DataError, match=rf"damaged pairs folder .*pairs\.parquet.*{what}"):
        PairSet.load(folder)


def test_load_checks_the_manifest_count_without_hashes(saved):
    pairs, folder = saved
    manifest = {**pairs.manifest, "counts": {**pairs.manifest["counts"], "pairs": 3}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=rf"damaged pairs folder .*: pairs.parquet has "
                                        rf"{len(pairs)} pairs, manifest.json records 3"):
        PairSet.load(folder)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_row(**change) -> dict:
    return {"prompt": "p", "chosen": "a", "rejected": "b", "weight": 0.7, **change}


@pytest.mark.parametrize("rows, message", [
    ([pair_row(), pair_row(), pair_row(weight=1.5), pair_row(weight=-1)],
     r"weight must be a number in \[0, 1\]; .*bad\.jsonl row 3 has 1\.5 \(2 such row\(s\)\)"),
    ([pair_row(weight="high")], r"weight must be a number in \[0, 1\]; .* row 1 has 'high'"),
    ([pair_row(weight=None)], r"weight must be a number in \[0, 1\]; .* row 1 has no weight"),
    ([{"prompt": "p", "chosen": "a", "weight": 1.0}],
     r"bad\.jsonl lacks column\(s\) \['rejected'\]; a pairs file has \['prompt', 'chosen', "
     r"'rejected', 'weight'\]"),
    ([pair_row(), pair_row(chosen=None)], r"chosen must be a text; .* row 2 has no chosen"),
    ([pair_row(split="train"), pair_row(split="dev")],
     r"split must be one of train, validation, test; .* row 2 has 'dev'"),
])
def test_load_bad_rows_name_file_row_and_value(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        PairSet.load(write_jsonl(tmp_path / "bad.jsonl", rows))


def test_load_bad_files(tmp_path):
    ok = PairSet.load(write_jsonl(tmp_path / "ok.jsonl", [pair_row(), pair_row(weight=1)]))
    assert list(ok.frame["weight"]) == pytest.approx([0.7, 1.0])
    assert ok.frame["weight"].dtype == float
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty.jsonl"):
        PairSet.load(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such file"):
        PairSet.load(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        PairSet.load(write_jsonl(tmp_path / "pairs.csv", [pair_row()]))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="folder .* has no pairs.parquet or pairs.jsonl"):
        PairSet.load(tmp_path / "folder")


# --- errors -------------------------------------------------------------------------------

def test_error_missing_text_columns():
    table = load_ratings(hand_frame(text_columns=False), scale=5)
    with pytest.raises(DataError, match="need the item column.*prompt, response"):
        make_pairs(table)


def test_error_group_level_does_not_exist(hand):
    with pytest.raises(DataError, match="politics='green'.*levels of 'politics' are "
                                        "conservative, liberal"):
        make_pairs(hand, group={"politics": "green"})
    with pytest.raises(DataError, match="group factor 'age' is not a rater attribute"):
        make_pairs(hand, group={"age": "18-29"})


@pytest.mark.filterwarnings("ignore:.*single rating category")
def test_error_empty_result():
    frame = hand_frame()
    frame["rating"] = 3
    table = load_ratings(frame, scale=5)
    with pytest.raises(DataError, match="no prompt has two responses with different majority "
                                        "labels on toxicity"):
        make_pairs(table, strategy="majority")
    with pytest.raises(DataError, match="no rater rated two responses of one prompt "
                                        "differently on toxicity"):
        make_pairs(table, strategy="all")


def test_error_options(hand):
    with pytest.raises(DataError, match="strategy='best'.*majority, all, soft"):
        make_pairs(hand, strategy="best")
    with pytest.raises(DataError, match="better: no direction for dimension 'fun'"):
        make_pairs(load_ratings(hand_frame().replace({"toxicity": "fun"}), scale=5),
                   dimension="fun")
    with pytest.raises(DataError, match="dimension 'bias' not in the ratings"):
        make_pairs(hand, dimension="bias")
    with pytest.raises(DataError, match="split=.*sum to 1"):
        make_pairs(hand, split=(0.5, 0.1, 0.1))
    with pytest.raises(ModelError, match="strategy='soft' needs a fit"):
        make_pairs(hand, strategy="soft")


# --- soft: weights ------------------------------------------------------------------------

def direct_preference(p_a, p_b, lower_is_better=True):
    k = len(p_a)
    better = sum(p_a[i] * p_b[j] for i in range(k) for j in range(k)
                 if (i < j if lower_is_better else i > j))
    tie = sum(p_a[i] * p_b[i] for i in range(k))
    return better + 0.5 * tie


def test_preference_probability_by_hand():
    p_a = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    p_b = np.array([0.1, 0.2, 0.3, 0.2, 0.2])
    # P(a < b) = .5*.9 + .3*.7 + .2*.4 = .74; tie = .05 + .06 + .06 = .17
    assert preference_probability(p_a, p_b) == pytest.approx(0.74 + 0.085)
    assert preference_probability(p_a, p_b, lower_is_better=False) == \
        pytest.approx(1 - 0.74 - 0.085)
    rng = np.random.default_rng(0)
    pa, pb = rng.dirichlet(np.ones(5), size=50), rng.dirichlet(np.ones(5), size=50)
    got = preference_probability(pa, pb)
    assert got == pytest.approx([direct_preference(x, y) for x, y in zip(pa, pb, strict=True)])
    assert got + preference_probability(pb, pa) == pytest.approx(np.ones(50))
    assert preference_probability(pa, pa) == pytest.approx(np.full(50, 0.5))




@pytest.fixture(scope="module")
def small_fit(survey):
    return fit(survey, ["gender"], dimensions=["toxicity"], sampler="advi", draws=100,
               progress=False, advi_iterations=5000)


def same_rater_preferences(fitted, dimension: str, lower_is_better: bool = True):
    """Brute force from the draws: ``pref(a, b) = mean_s sum_c w_c E_u[P(a better) + P(tie)/2]``.

    Given the draw ``s``, the cell ``c`` (each rater of the fit weighted equally) and the rater
    effect ``u`` (60 Gauss-Hermite nodes), the two ratings are independent; one rater rates
    both. Returns a function of two item ids.
    """
    post = fitted.idata.posterior
    d = list(post.coords["dimension"].values).index(dimension)

    def draws(name):
        values = post[name].values
        return values.reshape(-1, *values.shape[2:])

    cut, beta = draws("cutpoints")[:, d], draws("beta")[:, d]
    sigma, v = draws("rater_sd")[:, d], draws("item_effect")[:, :, d]
    design = fitted.idata.constant_data["rater_design"].values
    cells, counts = np.unique(design, axis=0, return_counts=True)
    w = counts / counts.sum()
    nodes, gh = np.polynomial.hermite_e.hermegauss(60)
    gh = gh / gh.sum()
    eta = (beta @ cells.T)[:, :, None] + sigma[:, None, None] * nodes  # (S, C, M)
    cdf = 1 / (1 + np.exp(-(cut[:, None, None, None, :] - eta[..., None, None]
                            - v[:, None, None, :, None])))  # (S, C, M, J, K-1)
    ones = np.ones(cdf.shape[:-1] + (1,))
    probs = np.diff(np.concatenate([0 * ones, cdf, ones], axis=-1), axis=-1)
    index = {str(j): i for i, j in enumerate(post.coords["item"].values)}
    mass = w[:, None] * gh[None, :]

    def pref(a: str, b: str) -> float:
        p = preference_probability(probs[..., index[a], :], probs[..., index[b], :],
                                   lower_is_better)  # (S, C, M): one rater, given s, c, u
        return float(np.mean(np.sum(p * mass, axis=(1, 2))))

    return pref


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:fit diagnostics")
def test_soft_weights_equal_direct_computation(survey, small_fit):
    pairs = make_pairs(survey, small_fit, strategy="soft", margin=0.1)
    pref = same_rater_preferences(small_fit, "toxicity")
    labels = soft_labels(small_fit, unit="population", dimensions=["toxicity"])
    p = {row.item_id: np.array([getattr(row, f"p_{k}") for k in range(1, 6)])
         for row in labels.itertuples()}
    items = survey.items
    expected, dropped, further = {}, 0, 0
    for _, group in items.groupby("prompt_id"):
        ids = sorted(group.index)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                w = pref(a, b)
                # two different raters (the soft labels compared) are nearer to 1/2
                old = direct_preference(p[a], p[b])
                further += abs(w - 0.5) > abs(old - 0.5)
                assert abs(old - 0.5) < 0.02 or abs(w - 0.5) > abs(old - 0.5)
                if abs(w - 0.5) < 0.1:
                    dropped += 1
                else:
                    expected[(a, b) if w >= 0.5 else (b, a)] = max(w, 1 - w)
    assert further >= 72  # of 80: counting the rater effect once moves weights away from 1/2
    got = {(c, r): w for c, r, w in zip(pairs.frame["chosen_id"], pairs.frame["rejected_id"],
                                        pairs.frame["weight"], strict=True)}
    assert got.keys() == expected.keys()
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()), abs=1e-9)
    counts = pairs.manifest["counts"]
    assert counts["dropped"] == {"margin": dropped}
    assert counts["kept"] + dropped == counts["unit_response_pairs"] == 80
    assert (pairs.frame["weight"] >= 0.6).all()
    assert pairs.manifest["inputs"]["fit_interactions"] == []
    assert pairs.manifest["inputs"]["fit_effects"] == "dummy"
    majority = make_pairs(survey, small_fit, strategy="majority")
    assert majority.manifest["inputs"]["fit_interactions"] == []
    assert make_pairs(survey, strategy="majority").manifest["inputs"]["fit_interactions"] is None
    # the other direction: the same probabilities, the other way round
    flipped = make_pairs(survey, small_fit, strategy="soft", margin=0.0,
                         better={"toxicity": "higher"}, split=None)
    row = flipped.frame.iloc[0]
    assert row["weight"] == pytest.approx(pref(row["rejected_id"], row["chosen_id"]), abs=1e-9)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:fit diagnostics")
def test_soft_units_and_fit_errors(survey, small_fit, hand, tmp_path):
    raters = make_pairs(survey, small_fit, strategy="soft", unit="rater", margin=0.0)
    assert raters.manifest["counts"]["unit_response_pairs"] == 80 * 80
    assert len(raters) == 80 * 80  # margin 0 keeps everything
    assert raters.frame["unit"].str.startswith("rater:").all()
    male = make_pairs(survey, small_fit, strategy="soft", group={"gender": "male"})
    assert set(male.frame["unit"]) == {"gender=male"}
    cons = make_pairs(survey, small_fit, strategy="soft", unit="rater",
                      group={"politics": "conservative"})
    n_cons = int((survey.raters["politics"] == "conservative").sum())
    assert cons.manifest["counts"]["units"] == n_cons
    with pytest.raises(ModelError, match="group factor 'politics' is not a factor of the "
                                         "fit; factors are gender"):
        make_pairs(survey, small_fit, strategy="soft", group={"politics": "conservative"})
    with pytest.raises(ModelError, match="fit was made from different ratings "
                                         r"\(hash [0-9a-f]{12} != [0-9a-f]{12}"):
        make_pairs(hand, small_fit, strategy="majority")
    with pytest.raises(ModelError, match="dimension 'helpfulness' not in the fit; the fit "
                                         "models toxicity"):
        make_pairs(survey, small_fit, strategy="soft", dimension="helpfulness")
    with pytest.raises(ModelError, match="to_scale=2 but the fit models a 5-point scale"):
        make_pairs(survey, small_fit, strategy="soft", to_scale=2)
    small_fit.save(tmp_path / "fit")
    from_dir = make_pairs(survey, tmp_path / "fit", strategy="soft")
    sha = hashlib.sha256(Path(tmp_path / "fit" / "posterior.nc").read_bytes()).hexdigest()
    assert from_dir.manifest["inputs"]["fit_posterior_sha256"] == sha
    assert from_dir.manifest["inputs"]["fit_data_hash"] == survey.data_hash


def agreement_table(n_raters: int = 40) -> pd.DataFrame:
    """Everyone rates p1-1 as 1 and p1-2 as 5; p2 has two mixed responses."""
    rng = np.random.default_rng(0)
    rows = []
    for r in range(n_raters):
        ratings = {"p1-1": 1, "p1-2": 5, "p2-1": int(rng.integers(2, 5)),
                   "p2-2": int(rng.integers(2, 5))}
        for item, rating in ratings.items():
            rows.append({"rater_id": f"r{r:02d}", "item_id": item, "dimension": "toxicity",
                         "rating": rating, "gender": ("female", "male")[r % 2],
                         "prompt_id": item[:2], "prompt": f"prompt {item[:2]}",
                         "response": f"response {item}"})
    return pd.DataFrame(rows)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:fit diagnostics")
def test_unanimous_pair_gets_weight_near_one():
    table = load_ratings(agreement_table(), scale=5)
    fitted = fit(table, ["gender"], sampler="advi", draws=200, progress=False)
    pairs = make_pairs(table, fitted, strategy="soft", margin=0.0, split=None)
    row = pairs.frame[pairs.frame["prompt_id"] == "p1"].iloc[0]
    assert (row["chosen_id"], row["rejected_id"]) == ("p1-1", "p1-2")
    assert row["weight"] > 0.9
    rater = make_pairs(table, fitted, strategy="soft", unit="rater", margin=0.0, split=None)
    on_p1 = rater.frame[rater.frame["prompt_id"] == "p1"]
    assert len(on_p1) == 40 and (on_p1["chosen_id"] == "p1-1").all()
    assert (on_p1["weight"] > 0.9).all()
