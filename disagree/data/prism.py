"""Loader for PRISM (Kirk et al. 2024), LLM responses scored 1-100 by surveyed participants.

PRISM, "The PRISM Alignment Project" (data ``HannahRoseKirk/prism-alignment`` on the Hugging
Face hub, code and codebook at https://github.com/HannahKirk/prism-alignment; human text
CC BY 4.0, model responses CC BY-NC 4.0): 1,500 participants born in 75 countries answer a
survey (``survey.jsonl``, one row per participant), then 1,396 of them hold conversations with
21 LLMs (``utterances.jsonl``, one row per scored model response, 68,371 rows). In the opening
turn of a conversation four LLMs drawn at random answer the participant's prompt; in later
turns the participant's top-rated LLM answers twice (A/B, sampled). The participant scores
every response on a slider from Terrible (1) to Perfect (100), and rates only the responses to
their own prompts.

Fields read (the codebook's names; ``a.b`` is key ``b`` of the object in field ``a``):

* ``survey.jsonl`` -> rater attributes. Required: ``user_id`` (-> ``rater_id``), ``age``,
  ``gender``, ``education``, ``ethnicity``, ``religion``, ``location``. Every other field is
  kept too, objects flattened to ``<field>_<key>`` (PRISM's own ``unnest_columns`` names):
  ``ethnicity.{self_described, categorised, simplified}``, ``religion.{...}`` alike,
  ``location.{birth_country, birth_countryISO, birth_subregion, reside_country,
  reside_countryISO, reside_subregion, same_birth_reside_country, special_region}``,
  ``stated_prefs.<attribute>`` (0-100 sliders), ``lm_usecases.<use case>`` (0/1), and the
  scalars ``employment_status, marital_status, english_proficiency, lm_familiarity,
  lm_indirect_use, lm_direct_use, lm_frequency_use, self_description, system_string,
  study_locale, num_completed_conversations, included_in_US_REP, included_in_UK_REP,
  included_in_balanced_subset``. Left out (:data:`SURVEY_DROPPED`): the constant consent
  answers, ``survey_only``, ``study_id``, timings, ``generated_datetime`` and the
  presentation orders ``order_lm_usecases``/``order_stated_prefs``.
* ``utterances.jsonl`` -> ratings and item attributes (:data:`ITEM_COLUMNS`). Required:
  ``utterance_id`` (-> ``item_id``), ``interaction_id`` (-> ``prompt_id``: one prompt of one
  participant in one turn), ``conversation_id``, ``user_id``, ``turn`` (0 = opening),
  ``user_prompt`` (-> ``prompt``), ``model_response`` (-> ``response``), ``model_name``,
  ``score`` (-> ``raw_score`` and, cut, ``rating``). Optional: ``model_provider``,
  ``conversation_type``, ``within_turn_id``, ``if_chosen``, ``included_in_balanced_subset``
  (-> ``conversation_in_balanced_subset``). ``conversations.jsonl`` and ``metadata.jsonl`` are
  not needed.

The score becomes one dimension, ``score`` (higher is better: ``better=``:data:`BETTER` in
:func:`disagree.make_pairs`), on ``scale`` points by cut points (:func:`prism_cuts`).

What the design means for the model. Each response is scored by exactly one participant, so a
per-response item effect is informed by one rating, which the participant's own effect also
explains: with ``items="response"`` item effects (and group-by-item interactions) are weakly
identified and the posterior of a response is mostly its one rating, shrunk. What PRISM can
answer well is which LLM each group prefers: ``items="model"`` keys items by ``model_name``
(21 items each scored by hundreds of participants), and ``fit(..., interactions=[factor])``
estimates each group's own deviation per LLM. Responses remain the unit of preference pairs:
the responses one participant scored in one turn give ``strategy="all"`` pairs in that
participant's direction, and a fit on ``items="response"`` gives ``soft`` pairs for a group.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable, load_ratings
from disagree.data.scale import scale_mapping
from disagree.errors import DataError

#: The data set on the Hugging Face hub and the folder of its raw files.
PRISM_HUB_ID = "HannahRoseKirk/prism-alignment"
PRISM_URL = f"https://huggingface.co/datasets/{PRISM_HUB_ID}/resolve/main/"
FILES = {"survey": "survey.jsonl", "utterances": "utterances.jsonl"}
#: The dimension name and its direction (pass ``better=BETTER`` to ``make_pairs``).
DIMENSION = "score"
BETTER = {DIMENSION: "higher"}
SCORE_MIN, SCORE_MAX = 1, 100
ITEM_KEYS = ("response", "model")

SURVEY_REQUIRED = ("user_id", "age", "gender", "education", "ethnicity", "religion",
                   "location")
#: Survey fields that must be objects (flattened to ``<field>_<key>``) or null.
SURVEY_NESTED = ("ethnicity", "religion", "location", "stated_prefs", "lm_usecases")
SURVEY_DROPPED = ("consent", "consent_age", "survey_only", "study_id", "generated_datetime",
                  "timing_duration_s", "timing_duration_mins", "order_lm_usecases",
                  "order_stated_prefs")
UTTERANCE_REQUIRED = ("utterance_id", "interaction_id", "conversation_id", "user_id", "turn",
                      "user_prompt", "model_response", "model_name", "score")
#: ``utterances.jsonl`` field -> item attribute (``items="response"``), when present.
ITEM_COLUMNS = {"interaction_id": "prompt_id", "user_prompt": "prompt",
                "model_response": "response", "model_name": "model_name",
                "model_provider": "model_provider", "conversation_id": "conversation_id",
                "conversation_type": "conversation_type", "turn": "turn",
                "within_turn_id": "within_turn_id", "if_chosen": "if_chosen",
                "included_in_balanced_subset": "conversation_in_balanced_subset",
                "score": "raw_score"}
_SHOW = 5

Source = str | os.PathLike[str] | pd.DataFrame


def prism_cuts(k: int) -> tuple[int, ...]:
    """Default cut points for PRISM's 1-100 score on ``k`` points: equal-width bins.

    Cut ``c`` is the highest score of its category (as in :mod:`disagree.data.scale`):
    ``k=5`` gives ``(20, 40, 60, 80)``, i.e. 1-20 -> 1, 21-40 -> 2, ..., 81-100 -> 5; ``k=3``
    gives ``(33, 67)`` and ``k=2`` gives ``(50,)``. PRISM's scores lean high (mean 65, sd 29 in
    the codebook), so quantile cuts are a reasonable alternative: pass your own ``cuts=``.
    """
    if not isinstance(k, int | np.integer) or not 2 <= k <= SCORE_MAX:
        raise DataError(f"scale={k!r}: expected an integer number of categories from 2 to "
                        f"{SCORE_MAX}")
    return tuple(int(round(SCORE_MAX * j / k)) for j in range(1, k))


def score_to_scale(scores: Iterable[float], k: int,
                   cuts: Sequence[int] | None = None) -> np.ndarray:
    """Map 1-100 scores (or means of scores) to categories ``1..k`` at the cut points.

    A score ``s`` gets category ``1 + #{cuts < s}``: with the default cuts for ``k=5``, 20 -> 1,
    21 -> 2 and a mean of 20.5 -> 2. Cuts are checked by
    :func:`disagree.data.scale.scale_mapping` (``k - 1`` strictly increasing integers in
    1..99).
    """
    cuts = tuple(prism_cuts(k) if cuts is None else cuts)
    scale_mapping(SCORE_MAX, k, cuts)  # validates the cut points
    return 1 + np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(scores, dtype=float),
                               side="left")


# --- reading ---------------------------------------------------------------------------------

def read_jsonl(source: Source, what: str) -> tuple[list[dict], list[int], str]:
    """Read JSON lines (path, ``http(s)://``/``file://`` URL or DataFrame of records).

    Returns the records, their line numbers (1-based; blank lines skipped; row positions + 1
    for a DataFrame) and the source's name for messages.
    """
    if isinstance(source, pd.DataFrame):
        records = [{k: v for k, v in r.items() if not _null(v)}
                   for r in source.to_dict("records")]
        return records, list(range(1, len(records) + 1)), f"<{what} DataFrame>"
    name = str(source)
    if name.startswith(("http://", "https://", "file:")):
        with urllib.request.urlopen(name) as response:  # noqa: S310 (documented URLs)
            lines = response.read().decode("utf-8").splitlines()
    else:
        if not Path(source).is_file():
            raise DataError(f"{name}: no such file; PRISM's {FILES[what]} is at "
                            f"{PRISM_URL}{FILES[what]}")
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    records, numbers = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{name}: line {number} is not valid JSON ({err.msg} at column "
                            f"{err.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{name}: line {number} is a JSON {type(record).__name__}, not an "
                            f"object with PRISM's {what} fields")
        records.append(record)
        numbers.append(number)
    if not records:
        raise DataError(f"{name}: no rows; expected one JSON object per line")
    return records, numbers, name


def _resolve(source: Source | Mapping[str, Source]) -> dict[str, Source]:
    """Return the survey and utterances sources of a folder, URL folder or mapping."""
    if isinstance(source, Mapping):
        missing = [w for w in FILES if w not in source]
        if missing:
            raise DataError(f"PRISM sources: no {' or '.join(map(repr, missing))} entry; "
                            f"give {{'survey': ..., 'utterances': ...}}")
        return {w: source[w] for w in FILES}
    if isinstance(source, pd.DataFrame):
        raise DataError("PRISM: one DataFrame cannot hold both files; give "
                        "{'survey': frame, 'utterances': frame}")
    name = str(source)
    if name.startswith(("http://", "https://", "file:")):
        return {w: name.rstrip("/") + "/" + f for w, f in FILES.items()}
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(f"{name}: not a folder; expected the folder holding PRISM's "
                        f"{' and '.join(FILES.values())} (from {PRISM_URL})")
    for file in FILES.values():
        if not (folder / file).is_file():
            raise DataError(f"{name}: no {file} in this folder; PRISM's is at "
                            f"{PRISM_URL}{file}")
    return {w: folder / f for w, f in FILES.items()}


def read_survey(source: Source) -> pd.DataFrame:
    """Read and check ``survey.jsonl``; return one row per participant, objects flattened.

    The frame is indexed by ``user_id``; nested objects become ``<field>_<key>`` columns,
    :data:`SURVEY_DROPPED` fields are left out (listed in ``attrs["prism"]["dropped"]``).
    """
    records, lines, name = read_jsonl(source, "survey")
    _require(records, lines, SURVEY_REQUIRED, name, "survey")
    _check_objects(records, lines, name)
    _check_ids(records, lines, "user_id", name, "one survey row per participant")
    flat = [_flatten({k: v for k, v in r.items() if not (k in SURVEY_NESTED and _null(v))},
                     skip=SURVEY_DROPPED) for r in records]
    frame = pd.DataFrame(flat).set_index("user_id")
    frame.index = frame.index.astype(str)
    dropped = sorted({k for r in records for k in r if k in SURVEY_DROPPED})
    frame.attrs["prism"] = {"source": name, "dropped": dropped}
    return frame


def read_utterances(source: Source) -> pd.DataFrame:
    """Read and check ``utterances.jsonl``: one row per scored response, with its line."""
    records, lines, name = read_jsonl(source, "utterances")
    _require(records, lines, UTTERANCE_REQUIRED, name, "utterances")
    _check_whole(records, lines, "score", SCORE_MIN, SCORE_MAX, name,
                 "a whole number from 1 to 100 (PRISM's slider, Terrible to Perfect)")
    _check_whole(records, lines, "turn", 0, None, name, "a whole number >= 0 (0 = opening)")
    _check_ids(records, lines, "utterance_id", name, "one row per scored response")
    frame = pd.DataFrame(records)
    frame["line"] = lines
    for col in ("utterance_id", "interaction_id", "conversation_id", "user_id"):
        frame[col] = frame[col].astype(str)
    frame["score"] = frame["score"].astype(float).astype("int64")
    frame["turn"] = frame["turn"].astype(float).astype("int64")
    for col in ("user_id", "user_prompt", "conversation_id", "turn"):
        n = frame.groupby("interaction_id")[col].nunique()
        if (n > 1).any():
            bad = n.index[n > 1][0]
            rows = frame[frame["interaction_id"] == bad].drop_duplicates(col)
            cells = ", ".join(f"{v!r} (line {ln})" for v, ln in zip(rows[col], rows["line"],
                                                                     strict=True))
            raise DataError(f"{name}: interaction_id {bad!r} has several values of {col!r}: "
                            f"{cells}; an interaction is one prompt of one participant in "
                            f"one turn")
    frame.attrs["prism"] = {"source": name}
    return frame


# --- mapping ---------------------------------------------------------------------------------

def prism_to_long(survey: pd.DataFrame, utterances: pd.DataFrame, scale: int = 5,
                  cuts: Sequence[int] | None = None, items: str = "response",
                  opening_only: bool | None = None) -> pd.DataFrame:
    """Map checked PRISM frames (:func:`read_survey`, :func:`read_utterances`) to long ratings.

    Parameters
    ----------
    survey, utterances : DataFrame
        As returned by :func:`read_survey` and :func:`read_utterances`.
    scale : int
        Number of rating categories K.
    cuts : sequence of int, optional
        Highest score of every category but the last (default :func:`prism_cuts`).
    items : {"response", "model"}
        ``"response"``: one item per scored response (``item_id`` = ``utterance_id``), with
        the item attributes of :data:`ITEM_COLUMNS` (``raw_score`` keeps the 1-100 score).
        ``"model"``: one item per LLM (``item_id`` = ``model_name``) and one rating per
        participant and LLM: the mean of the participant's raw scores of that LLM's responses
        (``mean_raw_score``; how many in ``n_responses``), cut to K points.
    opening_only : bool, optional
        Keep only the opening turn (``turn == 0``). Default ``False`` for responses and
        ``True`` for models: after the opening turn the responses come from the participant's
        top-rated LLM, so later scores of an LLM are selected on the participant having liked
        it.

    Returns
    -------
    DataFrame
        ``rater_id, item_id, dimension, rating``, the item columns, then every survey column.
        ``attrs["prism"]`` holds ``rater_attributes``, ``item_attributes``, ``cuts`` and
        counts (``n_utterances``, ``n_dropped_later_turns``, ``n_survey_only``).

    Raises
    ------
    DataError
        For bad ``items``, ``scale`` or ``cuts``, or utterances by participants absent from
        the survey (named).
    """
    if items not in ITEM_KEYS:
        raise DataError(f"items={items!r}; choose 'response' (one item per scored response) "
                        f"or 'model' (one item per LLM, model_name)")
    cuts = tuple(prism_cuts(scale) if cuts is None else cuts)
    score_to_scale([], scale, cuts)
    name = utterances.attrs.get("prism", {}).get("source", "<utterances>")
    unknown = sorted(set(utterances["user_id"]) - set(survey.index))
    if unknown:
        raise DataError(f"{name}: {len(unknown)} participant(s) scored responses but have no "
                        f"survey row: {', '.join(unknown[:_SHOW])}; every user_id of "
                        f"utterances.jsonl must be in survey.jsonl")
    opening_only = (items == "model") if opening_only is None else bool(opening_only)
    rows = utterances[utterances["turn"] == 0] if opening_only else utterances
    if items == "response":
        present = {f: c for f, c in ITEM_COLUMNS.items() if f in rows.columns}
        long = rows.rename(columns=present | {"utterance_id": "item_id"})[
            ["user_id", "item_id", *present.values()]]
        long.insert(2, "rating", score_to_scale(rows["score"], scale, cuts))
        item_attributes = list(present.values())
    else:
        by = rows.groupby(["user_id", "model_name"], sort=True)["score"]
        long = pd.DataFrame({"mean_raw_score": by.mean(), "n_responses": by.size()})
        long = long.reset_index().rename(columns={"model_name": "item_id"})
        long.insert(2, "rating", score_to_scale(long["mean_raw_score"], scale, cuts))
        item_attributes = []
        if "model_provider" in rows.columns:
            provider = rows.groupby("model_name")["model_provider"].first()
            long["model_provider"] = long["item_id"].map(provider).to_numpy()
            item_attributes = ["model_provider"]
    long = long.rename(columns={"user_id": "rater_id"})
    long.insert(2, "dimension", DIMENSION)
    raters = survey.rename_axis("rater_id")
    long = long.join(raters, on="rater_id").reset_index(drop=True)
    long.attrs["prism"] = {
        "items": items, "scale": scale, "cuts": list(cuts), "opening_only": opening_only,
        "rater_attributes": list(survey.columns), "item_attributes": item_attributes,
        "n_utterances": len(utterances), "n_dropped_later_turns": len(utterances) - len(rows),
        "n_survey_only": int((~survey.index.isin(utterances["user_id"])).sum()),
        "survey_dropped": survey.attrs.get("prism", {}).get("dropped", [])}
    return long


def load_prism(source: Source | Mapping[str, Source], scale: int = 5,
               cuts: Sequence[int] | None = None, items: str = "response",
               opening_only: bool | None = None) -> RatingTable:
    """Load PRISM's survey and utterances as a :class:`RatingTable` (one dimension, ``score``).

    Parameters
    ----------
    source : path, URL or mapping
        The folder holding ``survey.jsonl`` and ``utterances.jsonl`` (e.g. from
        ``huggingface_hub.snapshot_download("HannahRoseKirk/prism-alignment",
        repo_type="dataset")``), a URL folder such as :data:`PRISM_URL` (needs internet), or
        ``{"survey": ..., "utterances": ...}`` with a path, URL or DataFrame of raw records
        each (e.g. ``datasets.load_dataset(PRISM_HUB_ID, "survey")["train"].to_pandas()``).
    scale : int
        Number of rating categories K (default 5).
    cuts : sequence of int, optional
        Highest 1-100 score of every category but the last; default :func:`prism_cuts`
        (equal width: ``(20, 40, 60, 80)`` for K=5).
    items : {"response", "model"}
        Items keyed by scored response (pairs, per-response labels) or by LLM
        (``model_name``: which LLM each group prefers); see :func:`prism_to_long` and the
        module docstring for what each means for the model.
    opening_only : bool, optional
        Keep only opening turns (default: only for ``items="model"``).

    Returns
    -------
    RatingTable
        Raters = participants who scored at least one response, with every survey field
        (objects flattened, see the module docstring); items with the attributes of
        :data:`ITEM_COLUMNS` (``items="response"``: ``prompt_id, prompt, response`` make
        preference pairs, ``raw_score`` keeps the 1-100 score) or ``model_provider``
        (``items="model"``; the per-participant ``mean_raw_score`` and ``n_responses`` are in
        :func:`prism_to_long`'s frame). ``report`` records the mapping and what was left out.

    Raises
    ------
    DataError
        For a missing file, a line that is not a JSON object, a missing or null required field
        (named with its lines), a nested field that is not an object, a score outside 1..100,
        a duplicated id, or a participant without a survey row.
    """
    paths = _resolve(source)
    survey, utterances = read_survey(paths["survey"]), read_utterances(paths["utterances"])
    long = prism_to_long(survey, utterances, scale, cuts, items, opening_only)
    info = long.attrs["prism"]
    ignore = ["mean_raw_score", "n_responses"] if items == "model" else None
    table = load_ratings(long, scale=scale, rater_attributes=info["rater_attributes"],
                         item_attributes=info["item_attributes"], ignore_columns=ignore)
    groups: dict[int, list[int]] = {}
    for s, c in zip(range(SCORE_MIN, SCORE_MAX + 1),
                    score_to_scale(range(SCORE_MIN, SCORE_MAX + 1), scale, info["cuts"]),
                    strict=True):
        groups.setdefault(int(c), []).append(s)
    notes = (
        f"PRISM: items keyed by {items}; score 1-100 -> {scale} points "
        + ", ".join(f"{{{v[0]}..{v[-1]}}}->{c}" for c, v in groups.items()),
        f"PRISM: {info['n_survey_only']} survey participant(s) without scored responses left "
        f"out; survey fields left out: {', '.join(info['survey_dropped']) or '(none)'}",
    ) + ((f"PRISM: opening turns only; {info['n_dropped_later_turns']} later-turn "
          f"response(s) left out",) if info["opening_only"] else ())
    label = " + ".join(str(p) for p in paths.values())
    return replace(table, source=label, report=table.report + notes)


# --- checks ----------------------------------------------------------------------------------

def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _lines(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:_SHOW]))
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > _SHOW else "")


def _require(records: list[dict], lines: list[int], required: Sequence[str], name: str,
             what: str) -> None:
    """Raise naming required fields absent from every row, or missing/null on some lines."""
    absent = [f for f in required if all(f not in r for r in records)]
    if absent:
        found = sorted({k for r in records for k in r})
        raise DataError(f"{name}: not a PRISM {what} file: no field "
                        f"{', '.join(map(repr, absent))} in any row (fields found: "
                        f"{', '.join(found)}); required: {', '.join(required)}")
    for field in required:
        bad = [ln for r, ln in zip(records, lines, strict=True) if _null(r.get(field))]
        if bad:
            raise DataError(f"{name}: field {field!r} is missing or null on line(s) "
                            f"{_lines(bad)}; every {what} row needs {', '.join(required)}")


def _check_objects(records: list[dict], lines: list[int], name: str) -> None:
    """Nested survey fields (and any field that is an object somewhere) are objects or null."""
    nested = set(SURVEY_NESTED) | {k for r in records for k, v in r.items()
                                   if isinstance(v, dict)}
    for field in [f for f in SURVEY_NESTED if f in nested] + sorted(nested - set(SURVEY_NESTED)):
        for r, ln in zip(records, lines, strict=True):
            value = r.get(field)
            if not _null(value) and not isinstance(value, dict):
                raise DataError(f"{name}: line {ln}: field {field!r} must be an object of "
                                f"sub-fields (e.g. {{\"simplified\": ...}}), as in PRISM's "
                                f"codebook; got {type(value).__name__} {value!r}")


def _check_ids(records: list[dict], lines: list[int], field: str, name: str,
               expected: str) -> None:
    seen: dict[str, int] = {}
    for r, ln in zip(records, lines, strict=True):
        key = str(r[field])
        if key in seen:
            raise DataError(f"{name}: {field} {key!r} is on line {seen[key]} and line {ln}; "
                            f"expected {expected}")
        seen[key] = ln


def _check_whole(records: list[dict], lines: list[int], field: str, low: int,
                 high: int | None, name: str, expected: str) -> None:
    bad = []
    for r, ln in zip(records, lines, strict=True):
        v = r[field]
        ok = (isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
              and math.isfinite(v) and float(v).is_integer() and v >= low
              and (high is None or v <= high))
        if not ok:
            bad.append(f"{v!r} (line {ln})")
    if bad:
        raise DataError(f"{name}: field {field!r} must be {expected}; got "
                        f"{', '.join(bad[:_SHOW])}"
                        + (f", ... ({len(bad)} in all)" if len(bad) > _SHOW else ""))


def _flatten(record: Mapping[str, Any], skip: Sequence[str] = (), prefix: str = "",
             ) -> dict[str, Any]:
    """Flatten objects: ``{"a": {"b": 1}}`` -> ``{"a_b": 1}``, leaving out ``skip`` fields."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if not prefix and key in skip:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}_"))
        else:
            out[name] = value
    return out
