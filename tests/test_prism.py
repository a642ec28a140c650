"""Tests of the PRISM loader on small files written here in PRISM's published schema.

Nothing is downloaded and no real PRISM text is used. The rows follow the fields of PRISM's
codebook (``survey.jsonl``: 32 fields, five of them objects; ``utterances.jsonl``: 14 fields).

The hand-made data: ``user0`` scores four opening responses (int0: gpt-4 20, claude-2 21,
command 60, zephyr 100) and two later ones from gpt-4 (int1: 81, 80), and in a second
conversation gpt-4 again (int2: gpt-4 41, command 50); ``user1`` scores int3 (50, 55, 90, 10);
``user2`` only answered the survey.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import disagree as dg
from disagree.data.prism import (
    BETTER,
    ITEM_COLUMNS,
    PRISM_URL,
    SURVEY_DROPPED,
    load_prism,
    prism_cuts,
    prism_to_long,
    read_survey,
    read_utterances,
    score_to_scale,
)
from disagree.data.prism_synthetic import write_synthetic_prism
from disagree.errors import DataError
from disagree.pairs import PairSet

#: Field order of PRISM's released files (codebook notebook, ``survey.columns`` and
#: ``utterances.columns``).
SURVEY_FIELDS = [
    "user_id", "survey_only", "num_completed_conversations", "consent", "consent_age",
    "lm_familiarity", "lm_indirect_use", "lm_direct_use", "lm_frequency_use",
    "self_description", "system_string", "age", "gender", "employment_status", "education",
    "marital_status", "english_proficiency", "study_id", "study_locale", "religion",
    "ethnicity", "location", "lm_usecases", "stated_prefs", "order_lm_usecases",
    "order_stated_prefs", "generated_datetime", "timing_duration_s", "timing_duration_mins",
    "included_in_US_REP", "included_in_UK_REP", "included_in_balanced_subset"]
UTTERANCE_FIELDS = [
    "utterance_id", "interaction_id", "conversation_id", "user_id", "turn", "within_turn_id",
    "conversation_type", "user_prompt", "model_response", "model_name", "model_provider",
    "score", "if_chosen", "included_in_balanced_subset"]
PROVIDER = {"gpt-4": "openai", "claude-2": "anthropic", "command": "cohere",
            "HuggingFaceH4/zephyr-7b-beta": "huggingface_api"}


def survey_row(user: str, gender: str = "Female", **changes) -> dict:
    row = {
        "user_id": user, "survey_only": False, "num_completed_conversations": 2,
        "consent": "Yes, I consent to take part",
        "consent_age": "I certify that I am 18 years of age or over",
        "lm_familiarity": "Very familiar", "lm_indirect_use": "Yes", "lm_direct_use": "Yes",
        "lm_frequency_use": "Every week", "self_description": "I value kindness.",
        "system_string": "Be brief.", "age": "25-34 years old", "gender": gender,
        "employment_status": "Student", "education": "University Bachelors Degree",
        "marital_status": "Never been married", "english_proficiency": "Fluent",
        "study_id": "s1", "study_locale": "uk",
        "religion": {"self_described": "None", "categorised": "Non-religious",
                     "simplified": "No Affiliation"},
        "ethnicity": {"self_described": "Black", "categorised": "Black / African",
                      "simplified": "Black"},
        "location": {"birth_country": "Kenya", "birth_countryISO": "KEN",
                     "birth_subregion": "Eastern Africa", "reside_country": "United Kingdom",
                     "reside_countryISO": "GBR", "reside_subregion": "Northern Europe",
                     "same_birth_reside_country": "No", "special_region": "UK"},
        "lm_usecases": {"research": 1, "games": 0, "other": 0, "other_text": None},
        "stated_prefs": {"values": 70, "safety": 95, "other": None, "other_text": None},
        "order_lm_usecases": {"research": 2, "games": 1, "other": 3},
        "order_stated_prefs": {"values": 1, "safety": 2, "other": 3},
        "generated_datetime": "2023-11-22 15:48:46", "timing_duration_s": 600.0,
        "timing_duration_mins": 10.0, "included_in_US_REP": False,
        "included_in_UK_REP": True, "included_in_balanced_subset": True}
    return row | changes


def utterance(n: int, user: str, interaction: str, conversation: str, turn: int, model: str,
              score: object, **changes) -> dict:
    row = {
        "utterance_id": f"ut{n}", "interaction_id": interaction,
        "conversation_id": conversation, "user_id": user, "turn": turn, "within_turn_id": n % 4,
        "conversation_type": "unguided", "user_prompt": f"prompt of {interaction}",
        "model_response": f"response {n} by {model}", "model_name": model,
        "model_provider": PROVIDER[model], "score": score, "if_chosen": False,
        "included_in_balanced_subset": True}
    return row | changes


def utterances() -> list[dict]:
    zephyr = "HuggingFaceH4/zephyr-7b-beta"
    rows = [("user0", "int0", "c0", 0, m, s) for m, s in
            (("gpt-4", 20), ("claude-2", 21), ("command", 60), (zephyr, 100))]
    rows += [("user0", "int1", "c0", 1, "gpt-4", 81), ("user0", "int1", "c0", 1, "gpt-4", 80)]
    rows += [("user0", "int2", "c1", 0, "gpt-4", 41), ("user0", "int2", "c1", 0, "command", 50)]
    rows += [("user1", "int3", "c2", 0, m, s) for m, s in
             (("gpt-4", 50), ("claude-2", 55), ("command", 90), (zephyr, 10))]
    return [utterance(n, *r) for n, r in enumerate(rows)]


def surveys() -> list[dict]:
    return [survey_row("user0"), survey_row("user1", gender="Male"),
            survey_row("user2", survey_only=True, num_completed_conversations=0)]


def write(folder: Path, survey: list | None = None, utter: list | None = None) -> Path:
    """Write the two files; rows are dicts (dumped) or strings (written as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("survey.jsonl", surveys() if survey is None else survey),
                       ("utterances.jsonl", utterances() if utter is None else utter)):
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def folder(tmp_path):
    return write(tmp_path / "prism")


def error(folder: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_prism(folder, **kwargs)
    return str(info.value)


# --- schema of the hand-made rows -----------------------------------------------------------

def test_hand_made_rows_have_prisms_fields():
    assert list(survey_row("u")) == SURVEY_FIELDS
    assert list(utterances()[0]) == UTTERANCE_FIELDS
    assert set(ITEM_COLUMNS) <= set(UTTERANCE_FIELDS)


# --- loading and flattening ----------------------------------------------------------------

def test_response_items_ratings_and_attributes(folder):
    table = dg.load_prism(folder)
    assert table.scales == {"score": 5}
    assert sorted(table.raters.index) == ["user0", "user1"]          # user2: survey only
    r = table.ratings.set_index("item_id")["rating"]
    #   20->1, 21->2, 60->3, 100->5 | 81->5, 80->4 | 41->3, 50->3 | 50->3, 55->3, 90->5, 10->1
    assert [r[f"ut{n}"] for n in range(12)] == [1, 2, 3, 5, 5, 4, 3, 3, 3, 3, 5, 1]
    items = table.items
    assert items.loc["ut4", "raw_score"] == 81 and items.loc["ut3", "raw_score"] == 100
    assert items.loc["ut5", ["prompt_id", "prompt", "conversation_id", "turn", "model_name",
                             "model_provider"]].tolist() == [
        "int1", "prompt of int1", "c0", 1, "gpt-4", "openai"]
    assert items.loc["ut9", "response"] == "response 9 by claude-2"
    assert set(items.columns) == set(ITEM_COLUMNS.values())
    assert "conversation_in_balanced_subset" in items.columns


def test_survey_is_flattened_with_codebook_names(folder):
    raters = dg.load_prism(folder).raters
    assert raters.loc["user0", "ethnicity_simplified"] == "Black"
    assert raters.loc["user0", "ethnicity_categorised"] == "Black / African"
    assert raters.loc["user0", "religion_simplified"] == "No Affiliation"
    assert raters.loc["user0", "location_birth_countryISO"] == "KEN"
    assert raters.loc["user0", "location_reside_country"] == "United Kingdom"
    assert raters.loc["user1", "stated_prefs_safety"] == 95
    assert raters.loc["user1", "lm_usecases_research"] == 1
    assert raters.loc["user1", "gender"] == "Male"
    assert raters.loc["user0", "included_in_balanced_subset"]
    for field in ("religion", "ethnicity", "location", "stated_prefs", "lm_usecases"):
        assert field not in raters.columns                 # only the flattened sub-fields
    dropped = [c for c in raters.columns if c.startswith(SURVEY_DROPPED)]
    assert dropped == []                                 # consent, order_*, timings...
    assert "lm_usecases_other_text" in raters.columns and raters["lm_usecases_other_text"].isna(
    ).all()


def test_null_nested_field_gives_missing_subfields(tmp_path):
    rows = surveys()
    rows[1]["lm_usecases"] = None          # PRISM: question not shown
    raters = dg.load_prism(write(tmp_path, survey=rows)).raters
    assert raters.loc["user0", "lm_usecases_research"] == 1
    assert math.isnan(raters.loc["user1", "lm_usecases_research"])


def test_report_states_mapping_and_omissions(folder):
    report = dg.load_prism(folder).report
    assert report[-2] == ("PRISM: items keyed by response; score 1-100 -> 5 points {1..20}->1, "
                          "{21..40}->2, {41..60}->3, {61..80}->4, {81..100}->5")
    assert report[-1] == ("PRISM: 1 survey participant(s) without scored responses left out; "
                          "survey fields left out: consent, consent_age, generated_datetime, "
                          "order_lm_usecases, order_stated_prefs, study_id, survey_only, "
                          "timing_duration_mins, timing_duration_s")


def test_url_and_dataframe_sources_match_the_folder(folder):
    by_folder = load_prism(folder)
    by_url = load_prism(folder.as_uri())                     # the code path of PRISM_URL
    frames = {"survey": pd.DataFrame(surveys()), "utterances": pd.DataFrame(utterances())}
    by_frames = load_prism(frames)                           # as from datasets' to_pandas()
    assert by_url.data_hash == by_folder.data_hash == by_frames.data_hash
    assert PRISM_URL == ("https://huggingface.co/datasets/HannahRoseKirk/prism-alignment/"
                         "resolve/main/")


# --- the score on K points -------------------------------------------------------------------

def test_default_cuts_and_mapping_by_hand():
    assert prism_cuts(5) == (20, 40, 60, 80)
    assert prism_cuts(3) == (33, 67) and prism_cuts(2) == (50,)
    scores = [1, 20, 21, 40, 41, 60, 61, 80, 81, 100]
    assert score_to_scale(scores, 5).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert score_to_scale([33, 34, 67, 68], 3).tolist() == [1, 2, 2, 3]
    assert score_to_scale([20.0, 20.5, 80.01], 5).tolist() == [1, 2, 5]      # means of scores
    assert score_to_scale([50, 51, 90, 91], 3, cuts=(50, 90)).tolist() == [1, 2, 2, 3]


def test_overridden_cuts_and_bad_cuts(folder):
    table = load_prism(folder, scale=3, cuts=(50, 90))
    r = table.ratings.set_index("item_id")["rating"]
    #   20 21 60 100 | 81 80 | 41 50 | 50 55 90 10
    assert [r[f"ut{n}"] for n in range(12)] == [1, 1, 2, 3, 2, 2, 1, 1, 1, 2, 2, 1]
    assert table.items.loc["ut3", "raw_score"] == 100
    assert table.report[-2].endswith("{1..50}->1, {51..90}->2, {91..100}->3")
    assert error(folder, scale=3, cuts=(50, 40)) == (
        "cut points [50, 40] for 100 -> 3 points must be 2 strictly increasing integers in "
        "1..99")
    assert error(folder, scale=1) == (
        "scale=1: expected an integer number of categories from 2 to 100")


# --- items keyed by LLM ------------------------------------------------------------------------

def test_model_items_average_a_participants_scores(folder):
    table = load_prism(folder, items="model")
    assert sorted(table.items.index) == ["HuggingFaceH4/zephyr-7b-beta", "claude-2", "command",
                                         "gpt-4"]
    assert table.items.loc["gpt-4", "model_provider"] == "openai"
    r = table.ratings.set_index(["rater_id", "item_id"])["rating"]
    # opening turns: user0 gpt-4 (20 + 41) / 2 = 30.5 -> 2, command (60 + 50) / 2 = 55 -> 3
    assert r[("user0", "gpt-4")] == 2 and r[("user0", "command")] == 3
    assert r[("user1", "gpt-4")] == 3 and r[("user1", "HuggingFaceH4/zephyr-7b-beta")] == 1
    assert len(table.ratings) == 8
    assert table.report[-1] == "PRISM: opening turns only; 2 later-turn response(s) left out"
    # every turn: gpt-4 (20 + 81 + 80 + 41) / 4 = 55.5 -> 3
    every = load_prism(folder, items="model", opening_only=False)
    assert every.ratings.set_index(["rater_id", "item_id"])["rating"][("user0", "gpt-4")] == 3
    long = prism_to_long(read_survey(folder / "survey.jsonl"),
                         read_utterances(folder / "utterances.jsonl"), items="model")
    row = long.set_index(["rater_id", "item_id"]).loc[("user0", "gpt-4")]
    assert row["mean_raw_score"] == 30.5 and row["n_responses"] == 2


def test_bad_items_key(folder):
    assert error(folder, items="prompt") == (
        "items='prompt'; choose 'response' (one item per scored response) or 'model' (one "
        "item per LLM, model_name)")


# --- pairs ----------------------------------------------------------------------------------------

def test_all_pairs_are_within_a_participants_turn_in_their_direction(folder, tmp_path):
    table = load_prism(folder)
    pairs = dg.make_pairs(table, dimension="score", strategy="all", better=BETTER, split=None)
    f = pairs.frame
    # int0: 1,2,3,5 -> 6 pairs; int1: 5 > 4 -> 1; int2: 3 = 3 -> 0; int3: 3,3,5,1 -> 5
    assert f.groupby("prompt_id").size().to_dict() == {"int0": 6, "int1": 1, "int3": 5}
    assert set(zip(f["prompt_id"], f["unit"], strict=True)) == {
        ("int0", "rater:user0"), ("int1", "rater:user0"), ("int3", "rater:user1")}
    raw = table.items["raw_score"]
    assert (raw[f["chosen_id"]].to_numpy() > raw[f["rejected_id"]].to_numpy()).all()
    assert f.set_index("prompt_id").loc["int1", ["chosen_id", "rejected_id"]].tolist() == [
        "ut4", "ut5"]
    assert (f["prompt"] == "prompt of " + f["prompt_id"]).all()
    assert (f["weight"] == 1.0).all()
    saved = PairSet.load(pairs.save(tmp_path / "pairs"))      # what `disagree train` reads
    assert saved.frame[["prompt", "chosen", "rejected"]].equals(f[["prompt", "chosen",
                                                                   "rejected"]])


def test_model_items_cannot_make_response_pairs(folder):
    with pytest.raises(DataError, match=r"preference pairs need the item column\(s\) prompt_id, "
                                        r"prompt, response"):
        dg.make_pairs(load_prism(folder, items="model"), dimension="score", strategy="all",
                      better=BETTER)


# --- bad files: the messages ------------------------------------------------------------------

def test_missing_folder_and_file(tmp_path, folder):
    (folder / "utterances.jsonl").unlink()
    assert error(folder) == (
        f"{folder}: no utterances.jsonl in this folder; PRISM's is at https://huggingface.co/"
        "datasets/HannahRoseKirk/prism-alignment/resolve/main/utterances.jsonl")
    assert error(tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: not a folder; expected the folder holding PRISM's survey.jsonl "
        "and utterances.jsonl (from https://huggingface.co/datasets/HannahRoseKirk/"
        "prism-alignment/resolve/main/)")
    with pytest.raises(DataError) as info:
        load_prism({"survey": folder / "survey.jsonl"})
    assert str(info.value) == ("PRISM sources: no 'utterances' entry; give {'survey': ..., "
                               "'utterances': ...}")


def test_line_that_is_not_json_or_not_an_object(tmp_path):
    rows = [json.dumps(r) for r in surveys()]
    bad = write(tmp_path / "a", survey=[rows[0], '{"user_id": "user9",', rows[1]])
    assert error(bad) == (f"{bad / 'survey.jsonl'}: line 2 is not valid JSON (Expecting "
                          "property name enclosed in double quotes at column 21)")
    listed = write(tmp_path / "b", utter=["[1, 2]"])
    assert error(listed) == (f"{listed / 'utterances.jsonl'}: line 1 is a JSON list, not an "
                             "object with PRISM's utterances fields")


def test_required_survey_field_absent_or_null(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "gender"} for r in surveys()]
    path = write(tmp_path / "a", survey=rows) / "survey.jsonl"
    found = ", ".join(sorted(rows[0]))
    assert error(path.parent) == (
        f"{path}: not a PRISM survey file: no field 'gender' in any row (fields found: "
        f"{found}); required: user_id, age, gender, education, ethnicity, religion, location")
    rows = surveys()
    rows[1]["age"] = None
    del rows[2]["age"]
    path = write(tmp_path / "b", survey=rows) / "survey.jsonl"
    assert error(path.parent) == (
        f"{path}: field 'age' is missing or null on line(s) 2, 3; every survey row needs "
        "user_id, age, gender, education, ethnicity, religion, location")


def test_nested_field_that_is_not_an_object(tmp_path):
    rows = surveys()
    rows[0]["ethnicity"] = "White"
    path = write(tmp_path, survey=rows) / "survey.jsonl"
    assert error(tmp_path) == (
        f"{path}: line 1: field 'ethnicity' must be an object of sub-fields (e.g. "
        "{\"simplified\": ...}), as in PRISM's codebook; got str 'White'")


def test_duplicate_ids(tmp_path):
    path = write(tmp_path / "a", survey=[*surveys(), survey_row("user0")]) / "survey.jsonl"
    assert error(path.parent) == (f"{path}: user_id 'user0' is on line 1 and line 4; expected "
                                  "one survey row per participant")
    rows = utterances()
    rows[5]["utterance_id"] = "ut4"
    path = write(tmp_path / "b", utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (f"{path}: utterance_id 'ut4' is on line 5 and line 6; "
                                  "expected one row per scored response")


def test_missing_utterance_field_and_bad_scores(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "model_name"} for r in utterances()]
    path = write(tmp_path / "a", utter=rows) / "utterances.jsonl"
    assert error(path.parent).startswith(
        f"{path}: not a PRISM utterances file: no field 'model_name' in any row (fields found: ")
    rows = utterances()
    for n, bad in enumerate((0, 101, "high", 55.5, None)):
        rows[n]["score"] = bad
    path = write(tmp_path / "b", utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (f"{path}: field 'score' is missing or null on line(s) 5; every "
                                  "utterances row needs utterance_id, interaction_id, "
                                  "conversation_id, user_id, turn, user_prompt, model_response, "
                                  "model_name, score")
    rows[4]["score"] = 80.0                                       # a whole float is fine
    path = write(tmp_path / "c", utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (
        f"{path}: field 'score' must be a whole number from 1 to 100 (PRISM's slider, "
        "Terrible to Perfect); got 0 (line 1), 101 (line 2), 'high' (line 3), 55.5 (line 4)")
    rows = utterances()
    rows[2]["turn"] = -1
    path = write(tmp_path / "d", utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (f"{path}: field 'turn' must be a whole number >= 0 (0 = "
                                  "opening); got -1 (line 3)")


def test_inconsistent_interaction_and_unknown_participant(tmp_path):
    rows = utterances()
    rows[1]["user_id"] = "user1"
    path = write(tmp_path / "a", utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (
        f"{path}: interaction_id 'int0' has several values of 'user_id': 'user0' (line 1), "
        "'user1' (line 2); an interaction is one prompt of one participant in one turn")
    rows = utterances()
    for row in rows[8:]:
        row["user_id"] = "user7"
    path = write(tmp_path / "b", survey=surveys()[:1], utter=rows) / "utterances.jsonl"
    assert error(path.parent) == (
        f"{path}: 1 participant(s) scored responses but have no survey row: user7; every "
        "user_id of utterances.jsonl must be in survey.jsonl")


# --- the synthetic PRISM -----------------------------------------------------------------------

def test_synthetic_prism_schema_determinism_and_truth(tmp_path):
    a = write_synthetic_prism(tmp_path / "a", n_participants=20, seed=3)
    b = write_synthetic_prism(tmp_path / "b", n_participants=20, seed=3)
    for name in ("survey.jsonl", "utterances.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    survey = [json.loads(x) for x in (tmp_path / "a" / "survey.jsonl").read_text().splitlines()]
    utter = pd.read_json(tmp_path / "a" / "utterances.jsonl", lines=True)
    assert all(list(r) == SURVEY_FIELDS for r in survey)
    assert list(utter.columns) == UTTERANCE_FIELDS and len(utter) == a["n_utterances"]
    # PRISM's design: 4 LLMs in the opening turn, the chosen LLM twice in later turns
    per_turn = utter.groupby("interaction_id").agg(turn=("turn", "first"),
                                                   n=("model_name", "size"),
                                                   models=("model_name", "nunique"))
    assert set(map(tuple, per_turn[["turn", "n", "models"]].drop_duplicates().to_numpy())) == {
        (0, 4, 4), (1, 2, 1)}
    table = load_prism(tmp_path / "a")
    assert (table.ratings.set_index("item_id")["rating"].loc[table.items.index].to_numpy()
            == score_to_scale(table.items["raw_score"], 5)).all()
    assert len(table.raters) == 18                                  # user9, user19: survey only
    assert b["gender_deviation"]["claude-2"] > 0 > b["gender_deviation"]["gpt-4"]


def test_synthetic_gender_preferences_show_in_raw_scores(tmp_path):
    write_synthetic_prism(tmp_path, n_participants=200, seed=0)
    long = load_prism(tmp_path, items="model").long()
    mean = long.pivot_table(index="item_id", columns="gender", values="rating")
    gap = mean["Female"] - mean["Male"]
    assert gap["claude-2"] > 0.3 and gap["gpt-4"] < -0.3
    assert np.isclose(gap.drop(["claude-2", "gpt-4", "HuggingFaceH4/zephyr-7b-beta"]),
                      0, atol=0.35).all()
