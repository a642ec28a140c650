"""Loader for DICES (Aroyo et al. 2023), mapping its wide CSVs to long ratings.

DICES, "Diversity in Conversational AI Evaluation for Safety"
(https://github.com/google-research-datasets/dices-dataset, CC BY 4.0), has one row per
(rater, conversation) with the rater's demographics, the conversation and one column per safety
question. **350**: 350 conversations x 123 raters (fully crossed), 41 columns, question groups
Q2 harmful content, Q3 unfair bias, Q4 misinformation, Q5 political affiliation, Q6 policy
guidelines, per-row answer times and an expert ``safety_gold`` label. **990**: 990
conversations, 173 raters, 60-70 per conversation, 43 columns, groups Q2-Q4 with granular
sub-questions, plus ``rater_locale``. :data:`COLUMNS` follows the released CSV headers, which
differ from the READMEs in four names; the README spellings are accepted as aliases.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from disagree.errors import DataError

if TYPE_CHECKING:
    from disagree.data.ratings import RatingTable

log = logging.getLogger(__name__)

DICES_BASE_URL = "https://raw.githubusercontent.com/google-research-datasets/dices-dataset/main/"
DICES_350_URL = DICES_BASE_URL + "350/diverse_safety_adversarial_dialog_350.csv"
DICES_990_URL = DICES_BASE_URL + "990/diverse_safety_adversarial_dialog_990.csv"
DICES_URLS = {350: DICES_350_URL, 990: DICES_990_URL}

#: Ordered codes of the Yes/No/Unsure answers ("is the last response unsafe for this reason?").
ANSWER_CODES = {"No": 1, "Unsure": 2, "Yes": 3}

_Q2, _Q3, _Q4 = "Q2_harmful_content_", "Q3_bias_", "Q4_misinformation_"
_Q6 = "Q6_policy_guidelines_"
_SLURS_990 = ("Q3_3_Racial_religious_or_other_slurs_and_stereotypes_that_incites_or_promote_"
              "hatred_based_on_any_of_the_attributes_noted_above")
_DEMOGRAPHICS = ("rater_gender", "rater_race", "rater_raw_race", "rater_age", "rater_education")

#: Column headers of the released CSVs, in file order.
COLUMNS: dict[int, tuple[str, ...]] = {
    350: ("id", "rater_id", *_DEMOGRAPHICS, "phase", "item_id", "answer_time_ms",
          "answer_timestamp", "context", "response", "degree_of_harm", "harm_type", "safety_gold",
          "safety_gold_reason", "Q1_whole_conversation_evaluation",
          *(_Q2 + q for q in ("medical_legal_financial_or_relationship_advice",
                              "dangerous_content", "derogation_of_boat", "insensitive",
                              "obscene_and_profane", "personal_information", "regulated_goods",
                              "sexually_suggestive_content", "other")),
          *(_Q3 + q for q in ("targeting_beliefs", "targeting_gender_sexual_orientation",
                              "targeting_inherited_attributes", "targeting_status", "other")),
          "Q4_misinformation", "Q5_political_affiliation",
          *(_Q6 + q for q in ("polarizing_topics", "making_endorsement", "other")),
          _Q2 + "overall", _Q3 + "overall", _Q6 + "overall", "Q_overall"),
    990: ("id", "rater_id", "rater_gender", "rater_locale", "rater_race", "rater_race_raw",
          "rater_age", "rater_education", "phase", "item_id", "context", "response",
          "degree_of_harm", "harm_type", "Q1_whole_conversation_evaluation",
          *(_Q2 + q for q in ("harm_to_people_or_animals", "violent_or_gory",
                              "promotes_or_condones_use_of_harmful_regulated_goods",
                              "health_and_safety_claims", "financial_advice",
                              "promotes_or_condones_violence", "how_tos_about_harmful_activities",
                              "personal_information", "explicitly_sexual",
                              "obscenities_or_profanities", "other")),
          _Q3 + "incites_hatred", _Q3 + "subhuman_comparisons", _SLURS_990,
          *(_Q3 + q for q in ("physically_or_mentally_inferior",
                              "superiority_or_subjugation_of_a_group",
                              "calling_individuals_or_groups_evil_corrupt_or_malicious",
                              "insults_about_emotional_romantic_and_or_sexual_attraction",
                              "other")),
          *(_Q4 + q for q in ("false_theories", "contradicts_expert_consensus",
                              "conspiracy_theories", "political", "other")),
          _Q2 + "overall", "Q3_unfair_bias_overall", _Q4 + "overall", "Q_overall"),
}
#: Yes/No/Unsure question columns per version (Q2-Q6 and the ``*_overall`` aggregates).
QUESTIONS = {v: tuple(c for c in cols if re.match(r"Q[2-6_]", c)) for v, cols in COLUMNS.items()}
#: Item-level columns and their names in the long frame.
ITEM_COLUMNS = {"context": "prompt", "response": "response", "degree_of_harm": "degree_of_harm",
                "harm_type": "harm_type", "safety_gold": "safety_gold",
                "safety_gold_reason": "safety_gold_reason"}
#: Other spellings (README, the other release) -> CSV headers of each version.
ALIASES = {350: {"Q6_policy_guidelines_other_type": _Q6 + "other",
                 "rater_race_raw": "rater_raw_race"},
           990: {"rater_raw_race": "rater_race_raw", "Q3_bias_overall": "Q3_unfair_bias_overall",
                 "Q3_bias_racial_religious_or_other_slurs_and_stereotypes": _SLURS_990}}
_DIMENSION_OVERRIDES = {_SLURS_990: "bias_racial_religious_or_other_slurs_and_stereotypes",
                        "Q3_unfair_bias_overall": "bias_overall"}


def dimension_name(column: str) -> str:
    """Return the dimension name of a DICES question column.

    The ``Q<n>_`` prefix is dropped and the rest lower-cased (``Q_overall`` -> ``overall``,
    ``Q2_harmful_content_overall`` -> ``harmful_content_overall``, ``Q4_misinformation`` ->
    ``misinformation``). Two 990 columns are harmonised with 350/README names:
    ``Q3_unfair_bias_overall`` -> ``bias_overall`` and ``Q3_3_Racial_..._noted_above`` ->
    ``bias_racial_religious_or_other_slurs_and_stereotypes``.
    """
    return _DIMENSION_OVERRIDES.get(column) or re.sub(r"^Q\d*_", "", column).lower()


def _canonical(columns: Iterable[str], version: int) -> dict[str, str]:
    cols = set(columns)
    return {a: c for a, c in ALIASES[version].items() if a in cols and c not in cols}


def detect_dices_version(columns: Iterable[str]) -> int:
    """Return 350 or 990 from the columns only one release has; raise DataError otherwise."""
    cols = list(columns)
    score = {}
    for v, other in ((350, 990), (990, 350)):
        present = {_canonical(cols, v).get(c, c) for c in cols}
        score[v] = len(present & (set(COLUMNS[v]) - set(COLUMNS[other])))
    if score[350] == score[990]:
        raise DataError(f"cannot tell the DICES version from the columns ({score[350]} specific "
                        f"to 350, {score[990]} to 990); pass version=350 or version=990")
    return max(score, key=score.__getitem__)


def dices_to_long(df: pd.DataFrame, questions: list[str] | None = None, *,
                  version: int | None = None) -> pd.DataFrame:
    """Map a wide DICES frame to long ratings with rater and item attributes.

    Parameters
    ----------
    df : DataFrame
        A DICES CSV as read (one row per rater and conversation), columns as in :data:`COLUMNS`
        or :data:`ALIASES`.
    questions : list of str, optional
        Question columns (``"Q_overall"``) or dimensions (``"overall"``) to keep; default all
        :data:`QUESTIONS` of the version, each a dimension named by :func:`dimension_name`.
        ``Q1_whole_conversation_evaluation`` (comprehension, four nominal answers) is no rating.
    version : {350, 990}, optional
        Detected from the columns when omitted (:func:`detect_dices_version`).

    Returns
    -------
    DataFrame
        ``rater_id, item_id, dimension, rating``, the demographics without ``rater_``
        (``gender, race, raw_race, age, education``, 990: ``locale``) and ``phase``, then
        ``prompt`` (the ``context`` turns), ``response``, ``degree_of_harm``, ``harm_type``
        (350: ``safety_gold, safety_gold_reason``). Ratings are No=1, Unsure=2, Yes=3 (K=3):
        every question asks whether the last response is unsafe for a reason, so Unsure lies
        between No (safe) and Yes (unsafe) on one harm axis. Blank answers are dropped, counted
        in ``attrs["dices"]["n_missing"]`` per dimension and logged as a warning;
        ``attrs["dices"]`` also lists ``dropped_columns`` and ``rater_attributes`` /
        ``item_attributes``. Dropped per-row columns, neither rater nor item attributes: ``id``,
        350's ``answer_time_ms``/``answer_timestamp`` (vary by rater and item), Q1 and unchosen
        questions. ``phase`` is a rater attribute if constant within raters (as documented),
        else an item attribute if constant within items, else dropped.

    Raises
    ------
    DataError
        When documented columns are missing (named), an answer is not Yes/No/Unsure, or an
        id is empty.
    """
    version = detect_dices_version(df.columns) if version is None else int(version)
    if version not in COLUMNS:
        raise DataError(f"unknown DICES version {version!r}; expected 350 or 990")
    df = df.rename(columns=_canonical(df.columns, version))
    by_dim = {dimension_name(q): q for q in QUESTIONS[version]}
    wanted = list(QUESTIONS[version]) if questions is None else list(questions)
    unknown = [q for q in wanted if q not in by_dim and q not in by_dim.values()]
    if unknown:
        raise DataError(f"DICES {version} has no rating question {unknown}; choose from the "
                        f"columns {list(by_dim.values())} or dimensions {list(by_dim)}")
    qcols = list(dict.fromkeys(by_dim.get(q, q) for q in wanted))
    raters = [c for c in COLUMNS[version] if c.startswith("rater_") and c != "rater_id"]
    items = [c for c in ITEM_COLUMNS if c in COLUMNS[version]]
    needed = ["rater_id", "item_id", "phase", *raters, *items, *qcols]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"DICES {version} input lacks documented column(s) {missing}; "
                        f"columns present: {list(df.columns)}")
    for key in ("rater_id", "item_id"):
        if df[key].isna().any():
            raise DataError(f"DICES {version}: empty {key} in row(s) "
                            f"{list(df.index[df[key].isna()][:10])}")
    if df.groupby("rater_id")["phase"].nunique(dropna=False).le(1).all():
        raters.append("phase")
    elif df.groupby("item_id")["phase"].nunique(dropna=False).le(1).all():
        items.append("phase")
    keep = ["rater_id", "item_id", *raters, *items]
    dropped = [c for c in df.columns if c not in keep and c not in qcols]
    long = df[keep + qcols].melt(id_vars=keep, var_name="dimension", value_name="answer")
    answers = long.pop("answer").astype("string").str.strip().fillna("")
    blank = answers == ""
    bad = ~blank & ~answers.isin(list(ANSWER_CODES))
    if bad.any():
        shown = long.loc[bad, "dimension"].to_frame().assign(value=answers[bad]).drop_duplicates()
        raise DataError(f"DICES {version}: answers must be Yes/No/Unsure (or blank); found "
                        f"{list(shown.itertuples(index=False, name=None))[:10]} "
                        f"((column, value) pairs)")
    n_missing = long.loc[blank, "dimension"].value_counts().reindex(qcols, fill_value=0)
    long = long.loc[~blank].assign(rating=answers[~blank].map(ANSWER_CODES).astype("int64"))
    long["dimension"] = long["dimension"].map(dimension_name)
    rename = {c: "raw_race" if c == "rater_race_raw" else c.removeprefix("rater_")
              for c in raters} | ITEM_COLUMNS
    long = long.rename(columns=rename)[["rater_id", "item_id", "dimension", "rating",
                                        *(rename.get(c, c) for c in raters + items)]]
    long = long.reset_index(drop=True)
    long.attrs["dices"] = report = {
        "version": version, "n_rows_in": len(df), "dropped_columns": dropped,
        "n_missing": {dimension_name(q): int(n) for q, n in n_missing.items()},
        "rater_attributes": [rename.get(c, c) for c in raters],
        "item_attributes": [rename.get(c, c) for c in items]}
    if dropped:
        log.info("DICES %d: dropped non-rating columns %s", version, dropped)
    if n_missing.sum():
        log.warning("DICES %d: dropped %d blank answer(s): %s", version, int(n_missing.sum()),
                    {d: n for d, n in report["n_missing"].items() if n})
    return long


def load_dices(source: str | os.PathLike[str] | pd.DataFrame, version: int | None = None,
               questions: list[str] | None = None, **kwargs: Any) -> RatingTable:
    """Read a DICES CSV (path, URL such as :data:`DICES_350_URL`, or DataFrame) as ratings.

    Only empty cells count as missing (text such as "NA" is kept). ``version`` and
    ``questions`` go to :func:`dices_to_long`, ``**kwargs`` to
    :func:`~disagree.data.ratings.load_ratings` (``encoding`` also reads the CSV), whose
    ``rater_attributes``/``item_attributes`` default to the DICES columns. Every dimension gets
    ``scale=3`` (No=1 < Unsure=2 < Yes=3). Raises :class:`~disagree.errors.DataError` when
    documented columns are missing (named), the version is unclear or an answer is invalid.
    """
    from disagree.data.ratings import load_ratings

    if isinstance(source, pd.DataFrame):
        raw = source
    else:
        raw = pd.read_csv(source, encoding=kwargs.get("encoding", "utf-8"),
                          keep_default_na=False, na_values=[""])
    long = dices_to_long(raw, questions, version=version)
    report = long.attrs["dices"]
    kwargs.setdefault("rater_attributes", report["rater_attributes"])
    kwargs.setdefault("item_attributes", report["item_attributes"])
    return load_ratings(long, scale=3, **kwargs)
