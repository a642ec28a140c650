"""The ratings contract: what load_ratings accepts, and one asserted message per bad input."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from disagree.data import drop_raters_missing, load_ratings, save_ratings
from disagree.errors import DataError, DisagreeWarning


def good_frame() -> pd.DataFrame:
    """3 raters x 2 items x 2 dimensions, with rater and item attributes."""
    rows = []
    for r, gender in [("a", "female"), ("b", "male"), ("c", "male")]:
        for i, prompt in [("x", "hi?"), ("y", "help?")]:
            for d, base in [("toxicity", 1), ("helpfulness", 3)]:
                rows.append({"rater_id": r, "item_id": i, "dimension": d,
                             "rating": base + (r == "b") + (i == "y"),
                             "gender": gender, "prompt": prompt})
    return pd.DataFrame(rows)


def write_csv(tmp_path, frame: pd.DataFrame, name: str = "ratings.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_good_long_frame_is_split_into_ratings_raters_items():
    table = load_ratings(good_frame())
    assert table.dimensions == ["toxicity", "helpfulness"]
    assert table.scales == {"toxicity": 3, "helpfulness": 5}
    assert list(table.raters.columns) == ["gender"]
    assert list(table.items.columns) == ["prompt"]
    assert table.raters.loc["b", "gender"] == "male"
    assert len(table.ratings) == 12 and table.ratings["rating"].dtype == np.int64
    assert table.long().shape == (12, 6)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_round_trip_through_every_format_keeps_content(tmp_path, suffix):
    table = load_ratings(good_frame(), scale=5)
    path = save_ratings(table, tmp_path / f"r{suffix}")
    again = load_ratings(path, scale=5)
    assert again.data_hash == table.data_hash
    assert again.source == str(path)


def test_wide_format_is_melted_and_empty_cells_reported():
    wide = pd.DataFrame({"rater_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
                         "toxicity": [1, 2, None], "helpfulness": [5, 4, 3],
                         "gender": ["f", "f", "m"]})
    table = load_ratings(wide, dimensions=["toxicity", "helpfulness"], scale=5)
    assert len(table.ratings) == 5
    assert sorted(table.dimensions) == ["helpfulness", "toxicity"]
    assert any("dropped empty (not rated) cells: toxicity: 1" in note for note in table.report)


def test_column_mapping_renames_before_validation():
    frame = good_frame().rename(columns={"rater_id": "user", "rating": "score"})
    table = load_ratings(frame, columns={"user": "rater_id", "score": "rating"})
    assert len(table.raters) == 3


def test_exact_duplicates_are_dropped_with_a_report():
    frame = pd.concat([good_frame(), good_frame().iloc[[0, 3]]], ignore_index=True)
    with pytest.warns(DisagreeWarning, match=r"dropped 2 exact duplicate row\(s\): row 12, row 13"):
        table = load_ratings(frame)
    assert len(table.ratings) == 12
    assert "dropped 2 exact duplicate row(s)" in table.report[0]


def test_dimension_selection_and_select():
    table = load_ratings(good_frame(), dimensions=["helpfulness"])
    assert table.dimensions == ["helpfulness"]
    full = load_ratings(good_frame())
    assert full.select(["toxicity"]).ratings["dimension"].unique().tolist() == ["toxicity"]


def test_factor_levels_put_the_reference_first_and_default_to_most_frequent():
    table = load_ratings(good_frame())
    assert table.factor_levels(["gender"]) == {"gender": ["male", "female"]}
    assert table.factor_levels(["gender"], {"gender": "female"}) == {
        "gender": ["female", "male"]}


def test_data_hash_ignores_row_order_but_not_content():
    frame = good_frame()
    a = load_ratings(frame).data_hash
    assert load_ratings(frame.sample(frac=1, random_state=1)).data_hash == a
    changed = frame.copy()
    changed.loc[0, "rating"] = 2
    assert load_ratings(changed).data_hash != a


def test_drop_raters_missing_reports_what_it_removed():
    frame = good_frame()
    frame.loc[frame.rater_id == "c", "gender"] = None
    table = drop_raters_missing(load_ratings(frame), ["gender"])
    assert sorted(table.raters.index) == ["a", "b"]
    assert "dropped 1 rater(s) with no value for gender and their 4 rating(s): c" in table.report


# --- bad inputs: each with its message --------------------------------------------------------

def bad(frame_edit):
    frame = good_frame()
    frame_edit(frame)
    return frame


BAD_FRAMES = [
    ("missing required column",
     lambda: good_frame().drop(columns="rating"), {},
     "<DataFrame>: missing required column rating (expected long format with columns "
     "rater_id, item_id, dimension, rating; found: rater_id, item_id, dimension, gender, "
     "prompt). Map other names with columns={'your_name': 'rating'}, or pass "
     "dimensions=[...] for a wide file"),
    ("non-numeric rating",
     lambda: bad(lambda f: f.__setitem__("rating", f["rating"].astype(object).where(
         f.index != 4, "high"))), {},
     "<DataFrame>: column 'rating' is not numeric in row 4 ('high'); expected an integer 1..K"),
    ("non-integer rating",
     lambda: bad(lambda f: f.__setitem__("rating", f["rating"].astype(float).where(
         f.index != 2, 3.5))), {},
     "<DataFrame>: column 'rating' is not a whole number in row 2 (3.5); expected an integer "
     "1..K"),
    ("empty rating",
     lambda: bad(lambda f: f.__setitem__("rating", f["rating"].astype(float).where(
         f.index != 7))), {},
     "<DataFrame>: column 'rating' is empty in row 7; expected an integer 1..K (leave unrated "
     "cells out of a long file)"),
    ("rating above the declared scale",
     lambda: bad(lambda f: f.__setitem__("rating", f["rating"].where(f.index != 1, 6))),
     {"scale": 5},
     "<DataFrame>: column 'rating' is outside the declared scale 1..5 of dimension "
     "'helpfulness' in row 1 (6)"),
    ("rating below the inferred scale",
     lambda: bad(lambda f: f.__setitem__("rating", f["rating"].where(f.index != 0, 0))), {},
     "<DataFrame>: column 'rating' is outside the inferred scale 1..3 of dimension 'toxicity' "
     "in row 0 (0); ratings must start at 1 (shift 0-based scales by +1)"),
    ("NaN rater id",
     lambda: bad(lambda f: f.__setitem__("rater_id", f["rater_id"].where(f.index != 3))), {},
     "<DataFrame>: missing rater_id (empty or NaN) in row 3; every rating needs a rater_id"),
    ("NaN item id",
     lambda: bad(lambda f: f.__setitem__("item_id", f["item_id"].where(f.index != 5))), {},
     "<DataFrame>: missing item_id (empty or NaN) in row 5; every rating needs a item_id"),
    ("rater attribute varying within a rater",
     lambda: bad(lambda f: f.__setitem__("gender", f["gender"].where(f.index != 1, "male"))),
     {},
     "<DataFrame>: rater attribute 'gender' varies within one rater: rater_id 'a': 'female' "
     "(row 0), 'male' (row 1); expected one value per rater"),
    ("item attribute varying within an item",
     lambda: bad(lambda f: f.__setitem__("prompt", f["prompt"].where(f.index != 4, "other"))),
     {},
     "<DataFrame>: item attribute 'prompt' varies within one item: item_id 'x': 'hi?' (row 0),"
     " 'other' (row 4); expected one value per item"),
    ("same rating key twice with different values",
     lambda: pd.concat([good_frame(), good_frame().iloc[[0]].assign(rating=3)],
                       ignore_index=True), {},
     "<DataFrame>: the same (rater_id, item_id, dimension) is rated more than once with "
     "different values or attributes, e.g. (a, x, toxicity) in row 0 (1), row 12 (3); 2 rows "
     "are involved in all. Expected one rating per rater, item and dimension"),
    ("unknown dimension asked for",
     good_frame, {"dimensions": ["toxicity", "empathy"]},
     "<DataFrame>: unknown dimension empathy; the data has: toxicity, helpfulness"),
    ("column that is neither a rater nor an item attribute",
     lambda: good_frame().assign(seconds=range(12)), {},
     "<DataFrame>: column 'seconds' is neither a rater attribute (it varies within rater_id "
     "'a': 0 (row 0), 1 (row 1), 2 (row 2), 3 (row 3)) nor an item attribute (it varies within"
     " item_id 'x': 0 (row 0), 1 (row 1), 4 (row 4), 5 (row 5), 8 (row 8), 9 (row 9)); declare"
     " it with rater_attributes=/item_attributes= or leave it out with ignore_columns="),
    ("wide file without the named dimension column",
     lambda: pd.DataFrame({"rater_id": ["a"], "item_id": ["x"], "toxicity": [1]}),
     {"dimensions": ["toxicity", "helpfulness"]},
     "<DataFrame>: wide format: no column for dimension(s) helpfulness; columns are: rater_id,"
     " item_id, toxicity"),
    ("header only (DataFrame)",
     lambda: good_frame().iloc[:0], {},
     "<DataFrame>: has a header but no data rows (expected at least one rating)"),
]


@pytest.mark.parametrize("make, kwargs, message", [b[1:] for b in BAD_FRAMES],
                         ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_raise_their_message(make, kwargs, message):
    with pytest.raises(DataError) as err:
        load_ratings(make(), **kwargs)
    assert str(err.value) == message


def test_bad_factors_raise_their_message():
    frame = good_frame()
    frame.loc[frame.rater_id == "c", "gender"] = None
    table = load_ratings(frame)
    with pytest.raises(DataError, match=re.escape(
            "<DataFrame>: 1 rater(s) have no value for factor 'gender': c; drop them with "
            "drop_raters_missing(table, ['gender']) or give them a level such as 'unknown'")):
        table.factor_levels(["gender"])
    good = load_ratings(good_frame())
    with pytest.raises(DataError, match=re.escape(
            "reference level 'Female' for 'gender' does not exist; levels are: female, male")):
        good.factor_levels(["gender"], {"gender": "Female"})
    with pytest.raises(DataError, match=re.escape(
            "unknown factor 'politics'; rater attributes are: gender")):
        good.factor_levels(["politics"])
    with pytest.raises(DataError, match=re.escape(
            "factor 'prompt' is an item attribute, not a rater attribute")):
        good.factor_levels(["prompt"])
    with pytest.raises(DataError, match=re.escape(
            "reference given for country, which is not among the factors gender")):
        good.factor_levels(["gender"], {"country": "US"})


def test_single_category_with_wider_declared_scale_warns():
    frame = good_frame()
    frame.loc[frame.dimension == "toxicity", "rating"] = 1
    with pytest.warns(DisagreeWarning, match=re.escape(
            "dimension 'toxicity' has a single rating category observed (1) although its scale "
            "is 1..5")):
        table = load_ratings(frame, scale=5)
    assert table.scales["toxicity"] == 5


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: is empty (expected a header row and ratings)")):
        load_ratings(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("rater_id,item_id,dimension,rating\n")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: has a header but no data rows (expected at least one rating)")):
        load_ratings(path)


def test_rows_in_file_messages_count_from_one_after_the_header(tmp_path):
    frame = good_frame()
    frame.loc[4, "rating"] = 9
    path = write_csv(tmp_path, frame)
    with pytest.raises(DataError, match=re.escape(
            f"{path}: column 'rating' is outside the declared scale 1..5 of dimension "
            "'toxicity' in row 5 (9)")):
        load_ratings(path, scale=5)


def test_undecodable_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("rater_id,item_id,dimension,rating,country\na,x,tox,1,Österreich\n"
                     .encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(
            f"{path}: cannot be decoded as utf-8 (byte b'\\xd6' at position")):
        load_ratings(path)
    with pytest.warns(DisagreeWarning, match="single rating category"):
        table = load_ratings(path, encoding="latin-1", scale=5)
    assert table.raters.loc["a", "country"] == "Österreich"


def test_binary_file_is_not_a_table(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match=re.escape(
            f"{path}: is not a text table (it contains binary data); expected a CSV file with a"
            " header row")):
        load_ratings(path)


def test_malformed_csv_is_not_a_table(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("rater_id,item_id,dimension,rating\na,x,tox,1\nb,x,tox,2,3,4\n")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: is not a well-formed CSV table: Error tokenizing data. C error: Expected 4 "
            "fields in line 3, saw 6")):
        load_ratings(path)


def test_prose_is_not_a_table(tmp_path):
    path = tmp_path / "prose.csv"
    path.write_text("Dear reviewer,\nthank you, for, the, many, comments.\n")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: is not a well-formed CSV table: some rows have more fields than the "
            "header")):
        load_ratings(path)


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("rater_id,item_id\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: is not a readable Parquet file")):
        load_ratings(path)


def test_unsupported_suffix_and_missing_file(tmp_path):
    path = tmp_path / "ratings.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: unsupported file type '.xlsx'; expected .csv, .tsv or .parquet")):
        load_ratings(path)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope.csv'}: no such file")):
        load_ratings(tmp_path / "nope.csv")
