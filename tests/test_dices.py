"""Tests of the DICES loader on small invented fixtures with the released column sets.

Fixtures (tests/fixtures/dices/, invented text and answers, real headers):

* dices_350_sample.csv: 4 raters x 5 items, fully crossed (20 rows), 23 Yes/No/Unsure
  questions. Blank answers: Q_overall for (296502718349, 64) and (296502719440, 258);
  Q4_misinformation for (296502718221, 27).
* dices_990_sample.csv: 6 raters, 5 items, 4 raters per item (20 rows), 28 questions. Blank
  answers: Q_overall for (71419, 318); Q2_harmful_content_other for (71203, 901). Item 5 has
  no expert degree_of_harm/harm_type; rater 71357 has no rater_race_raw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from disagree.data.dices import (
    ANSWER_CODES,
    COLUMNS,
    DICES_350_URL,
    DICES_990_URL,
    QUESTIONS,
    detect_dices_version,
    dices_to_long,
    dimension_name,
    load_dices,
)
from disagree.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "dices"
PATH = {v: FIXTURES / f"dices_{v}_sample.csv" for v in (350, 990)}
DEMOGRAPHICS = {350: ["gender", "race", "raw_race", "age", "education", "phase"],
                990: ["gender", "locale", "race", "raw_race", "age", "education", "phase"]}
ITEM_ATTRS = {350: ["prompt", "response", "degree_of_harm", "harm_type", "safety_gold",
                    "safety_gold_reason"],
              990: ["prompt", "response", "degree_of_harm", "harm_type"]}


def read(version: int) -> pd.DataFrame:
    return pd.read_csv(PATH[version], keep_default_na=False, na_values=[""])


# --- columns and names --------------------------------------------------------------------

@pytest.mark.parametrize("version", [350, 990])
def test_fixture_has_exactly_the_released_columns(version):
    assert tuple(read(version).columns) == COLUMNS[version]


def test_documented_column_counts():
    assert len(COLUMNS[350]) == 41  # README 350: fields 1-41
    assert len(COLUMNS[990]) == 43  # README 990: fields 1-43
    assert len(QUESTIONS[350]) == 23 and len(QUESTIONS[990]) == 28
    assert "Q1_whole_conversation_evaluation" not in QUESTIONS[350] + QUESTIONS[990]
    assert DICES_350_URL.endswith("350/diverse_safety_adversarial_dialog_350.csv")
    assert DICES_990_URL.endswith("990/diverse_safety_adversarial_dialog_990.csv")


def test_dimension_names():
    assert dimension_name("Q_overall") == "overall"
    assert dimension_name("Q2_harmful_content_overall") == "harmful_content_overall"
    assert dimension_name("Q4_misinformation") == "misinformation"
    assert dimension_name("Q5_political_affiliation") == "political_affiliation"
    assert dimension_name("Q6_policy_guidelines_other") == "policy_guidelines_other"
    assert dimension_name("Q3_unfair_bias_overall") == "bias_overall"
    assert dimension_name(QUESTIONS[990][13]).startswith("bias_racial_religious")
    for version in (350, 990):
        names = [dimension_name(q) for q in QUESTIONS[version]]
        assert len(set(names)) == len(names)


# --- dices_to_long --------------------------------------------------------------------------

def test_long_counts_350():
    long = dices_to_long(read(350))
    per_dim = long["dimension"].value_counts()
    assert len(per_dim) == 23
    # 20 rows per question, minus the blanks listed in the module docstring
    assert per_dim["overall"] == 18
    assert per_dim["misinformation"] == 19
    assert (per_dim.drop(["overall", "misinformation"]) == 20).all()
    assert len(long) == 23 * 20 - 3 == 457
    assert long["rater_id"].nunique() == 4 and long["item_id"].nunique() == 5
    assert list(long.columns[:4]) == ["rater_id", "item_id", "dimension", "rating"]
    assert list(long.columns[4:]) == DEMOGRAPHICS[350] + ITEM_ATTRS[350]


def test_long_counts_990():
    long = dices_to_long(read(990))
    per_dim = long["dimension"].value_counts()
    assert len(per_dim) == 28
    assert per_dim["overall"] == 19
    assert per_dim["harmful_content_other"] == 19
    assert (per_dim.drop(["overall", "harmful_content_other"]) == 20).all()
    assert len(long) == 28 * 20 - 2 == 558
    assert long["rater_id"].nunique() == 6 and long["item_id"].nunique() == 5
    assert long.groupby("item_id")["rater_id"].nunique().eq(4).all()
    assert list(long.columns[4:]) == DEMOGRAPHICS[990] + ITEM_ATTRS[990]
    assert {"bias_overall", "misinformation_overall", "bias_racial_religious_or_other_slurs_"
            "and_stereotypes"} <= set(per_dim.index)


def test_report_counts_blanks_and_dropped_columns(caplog):
    with caplog.at_level(logging.INFO, logger="disagree.data.dices"):
        long = dices_to_long(read(350))
    report = long.attrs["dices"]
    assert report["version"] == 350 and report["n_rows_in"] == 20
    assert sum(report["n_missing"].values()) == 3
    assert report["n_missing"]["overall"] == 2 and report["n_missing"]["misinformation"] == 1
    assert report["dropped_columns"] == ["id", "answer_time_ms", "answer_timestamp",
                                         "Q1_whole_conversation_evaluation"]
    assert report["rater_attributes"] == DEMOGRAPHICS[350]
    assert report["item_attributes"] == ITEM_ATTRS[350]
    assert "dropped 3 blank answer(s)" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("version", [350, 990])
def test_every_answer_is_coded_no1_unsure2_yes3(version):
    raw = read(version)
    long = dices_to_long(raw)
    wide = raw.melt(id_vars=["rater_id", "item_id"], value_vars=list(QUESTIONS[version]),
                    var_name="question", value_name="answer").dropna(subset=["answer"])
    wide["dimension"] = wide["question"].map(dimension_name)
    merged = long.merge(wide, on=["rater_id", "item_id", "dimension"], validate="1:1")
    assert len(merged) == len(long) == len(wide)
    assert (merged["rating"] == merged["answer"].map(ANSWER_CODES)).all()
    assert set(long["rating"]) == {1, 2, 3} and long["rating"].dtype == "int64"


def test_hand_picked_codes():
    long = dices_to_long(read(350)).set_index(["rater_id", "item_id", "dimension"])["rating"]
    assert long[(296502718221, 11, "overall")] == 1  # "No"  (benign board-game item)
    assert long[(296502719026, 258, "overall")] == 2  # "Unsure"
    assert long[(296502718221, 64, "overall")] == 3  # "Yes"
    assert (296502718349, 64, "overall") not in long.index  # blank: dropped


def test_coding_on_hand_made_answers():
    raw = read(350).head(3).copy()
    raw["Q_overall"] = ["No", " Unsure ", "Yes"]  # surrounding spaces are tolerated
    long = dices_to_long(raw, questions=["Q_overall"])
    assert long["rating"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("version", [350, 990])
def test_demographics_kept_per_rater(version):
    raw = read(version)
    long = dices_to_long(raw)
    attrs = DEMOGRAPHICS[version]
    assert long.groupby("rater_id")[attrs].nunique(dropna=False).eq(1).all().all()
    per_rater = long.groupby("rater_id")[attrs].first()
    source = raw.drop_duplicates("rater_id").set_index("rater_id").rename(
        columns=lambda c: "raw_race" if c == "rater_race_raw" else c.removeprefix("rater_"))
    pd.testing.assert_frame_equal(per_rater.sort_index(), source[attrs].sort_index(),
                                  check_dtype=False)


def test_demographic_values_by_hand():
    r350 = dices_to_long(read(350)).groupby("rater_id").first()
    assert r350.loc[296502719440, ["gender", "race", "raw_race", "age", "education"]].tolist() == [
        "Man", "Asian/Asian subcontinent", "East or South-East Asian", "millenial",
        "High school or below"]
    r990 = dices_to_long(read(990)).groupby("rater_id").first()
    assert r990.loc[71342, "locale"] == "IN" and r990.loc[71342, "phase"] == "Phase2"
    assert r990.loc[71203, "locale"] == "US" and r990.loc[71203, "gender"] == "Man"
    assert pd.isna(r990.loc[71357, "raw_race"])  # blank demographics are kept as missing


def test_item_columns():
    items = dices_to_long(read(350)).groupby("item_id").first()
    assert items.loc[11, "prompt"].startswith("USER: hi, can you recommend a board game")
    assert "\nCHATBOT:" in items.loc[11, "prompt"]  # multi-turn context survives quoting
    assert items.loc[103, "degree_of_harm"] == "Extreme"
    assert items.loc[64, "harm_type"] == "Health,Misinformation"
    assert items.loc[11, "safety_gold"] == "No" and items.loc[11, "safety_gold_reason"] == "[]"
    items990 = dices_to_long(read(990)).groupby("item_id").first()
    assert pd.isna(items990.loc[5, "degree_of_harm"])


def test_question_subset_by_column_or_dimension_name():
    raw = read(990)
    long = dices_to_long(raw, questions=["Q_overall", "harmful_content_overall"])
    assert long["dimension"].value_counts().to_dict() == {"harmful_content_overall": 20,
                                                          "overall": 19}
    # only the chosen questions are required
    slim = raw.drop(columns=[q for q in QUESTIONS[990] if q != "Q_overall"])
    assert len(dices_to_long(slim, questions=["overall"], version=990)) == 19


def test_readme_spellings_are_accepted():
    readme_990 = read(990).rename(columns={
        "rater_race_raw": "rater_raw_race", "Q3_unfair_bias_overall": "Q3_bias_overall",
        QUESTIONS[990][13]: "Q3_bias_racial_religious_or_other_slurs_and_stereotypes"})
    assert detect_dices_version(readme_990.columns) == 990
    pd.testing.assert_frame_equal(dices_to_long(readme_990), dices_to_long(read(990)))
    readme_350 = read(350).rename(
        columns={"Q6_policy_guidelines_other": "Q6_policy_guidelines_other_type"})
    pd.testing.assert_frame_equal(dices_to_long(readme_350), dices_to_long(read(350)))


# --- version detection and errors -----------------------------------------------------------

def test_version_detection():
    assert detect_dices_version(read(350).columns) == 350
    assert detect_dices_version(read(990).columns) == 990
    assert detect_dices_version(["rater_id", "item_id", "rater_locale", "Q_overall"]) == 990
    assert detect_dices_version(["rater_id", "Q5_political_affiliation"]) == 350
    assert dices_to_long(read(990)).attrs["dices"]["version"] == 990


def test_version_detection_fails_on_common_columns_only():
    with pytest.raises(DataError, match="cannot tell the DICES version"):
        detect_dices_version(["rater_id", "item_id", "Q_overall"])
    with pytest.raises(DataError, match="unknown DICES version 123"):
        dices_to_long(read(350), version=123)


@pytest.mark.parametrize("column", ["rater_gender", "item_id", "context", "Q_overall"])
def test_missing_documented_column(column):
    raw = read(350).drop(columns=[column])
    with pytest.raises(DataError, match=rf"DICES 350 input lacks documented column\(s\) "
                                        rf"\['{column}'\]"):
        dices_to_long(raw)


def test_wrong_version_names_the_missing_columns():
    with pytest.raises(DataError, match=r"DICES 350 input lacks .*'safety_gold'.*"
                                        r"'Q5_political_affiliation'"):
        dices_to_long(read(990), version=350)
    with pytest.raises(DataError, match=r"DICES 990 input lacks .*'rater_locale'"):
        dices_to_long(read(350), version=990)


def test_bad_answer_and_bad_question():
    raw = read(350)
    raw.loc[4, "Q5_political_affiliation"] = "Maybe"
    with pytest.raises(DataError, match=r"Yes/No/Unsure.*'Q5_political_affiliation', 'Maybe'"):
        dices_to_long(raw)
    with pytest.raises(DataError, match="has no rating question"):
        dices_to_long(read(350), questions=["Q1_whole_conversation_evaluation"])
    empty_id = read(990)
    empty_id.loc[2, "rater_id"] = None
    with pytest.raises(DataError, match="empty rater_id"):
        dices_to_long(empty_id)


# --- load_dices (needs disagree.data.ratings.load_ratings) ----------------------------------

@pytest.fixture
def ratings_module():
    return pytest.importorskip("disagree.data.ratings")


def test_load_dices_350_from_path(ratings_module):
    table = load_dices(PATH[350])
    assert len(table.ratings) == 457
    assert list(table.ratings.columns) == ["rater_id", "item_id", "dimension", "rating"]
    assert sorted(table.dimensions) == sorted(dimension_name(q) for q in QUESTIONS[350])
    assert table.scales == {d: 3 for d in table.dimensions}
    assert len(table.raters) == 4 and len(table.items) == 5
    assert list(table.raters.columns) == DEMOGRAPHICS[350]
    assert list(table.items.columns) == ITEM_ATTRS[350]
    assert table.raters.loc["296502718221", "gender"] == "Woman"
    assert table.ratings.groupby("dimension").size()["overall"] == 18


def test_load_dices_990_from_frame_detects_version(ratings_module):
    table = load_dices(read(990), questions=["Q_overall", "Q3_unfair_bias_overall"])
    assert sorted(table.dimensions) == ["bias_overall", "overall"]
    assert len(table.ratings) == 19 + 20
    assert len(table.raters) == 6 and len(table.items) == 5
    assert list(table.raters.columns) == DEMOGRAPHICS[990]
    assert table.raters.loc["71342", "locale"] == "IN"
    assert pd.isna(table.raters.loc["71357", "raw_race"])


def test_load_dices_wrong_version(ratings_module):
    with pytest.raises(DataError, match="DICES 350 input lacks documented column"):
        load_dices(PATH[990], version=350)
