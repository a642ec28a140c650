"""Loader for POPQUORN (Pei & Jurgens 2023), offensiveness and the other 1-5 Likert tasks.

POPQUORN's raw files have one row per (annotator, instance) with the rating in a column named
after the task, the instance ``text`` and the annotator's demographics. The loader maps them to
the long format (one dimension, named after the task) and keeps every demographic column.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from disagree.data.ratings import RatingTable, load_ratings
from disagree.errors import DataError

#: Public source of the offensiveness task (read directly by users who have internet).
POPQUORN_URL = ("https://raw.githubusercontent.com/Jiaxin-Pei/Potato-Prolific-Dataset/main/"
                "dataset/offensiveness/raw_data.csv")
DEMOGRAPHICS = ("gender", "race", "age", "occupation", "education")


def load_popquorn(source: str | os.PathLike[str] | pd.DataFrame = POPQUORN_URL,
                  task: str = "offensiveness") -> RatingTable:
    """Load a POPQUORN task file as a :class:`RatingTable`.

    Parameters
    ----------
    source : path, URL or DataFrame
        The task's ``raw_data.csv`` (default: the public offensiveness file, which needs
        internet; ``../shared/data/popquorn/offensiveness.csv`` holds a copy for tests).
    task : str
        The rating column, also used as the dimension name (``offensiveness`` is 1-5, 5 = most
        offensive).

    Returns
    -------
    RatingTable
        One dimension, scale 1..5; ``rater_id`` from ``user_id``, ``item_id`` from
        ``instance_id``; rater attributes gender, race, age, occupation, education; item
        attribute ``text``.
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "<DataFrame>"
    else:
        name = str(source)
        is_url = name.startswith(("http://", "https://"))
        if not is_url and not Path(source).exists():
            raise DataError(f"{name}: no such file; POPQUORN's public file is {POPQUORN_URL}")
        frame = pd.read_csv(source)
    needed = ["instance_id", "user_id", "text", task, *DEMOGRAPHICS]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: not a POPQUORN {task} file: missing column(s) "
                        f"{', '.join(missing)} (found: {', '.join(map(str, frame.columns))})")
    frame = frame.assign(dimension=task).rename(
        columns={"user_id": "rater_id", "instance_id": "item_id", task: "rating"})
    table = load_ratings(frame, scale=5, rater_attributes=DEMOGRAPHICS, item_attributes=["text"])
    return table if name == "<DataFrame>" else _named(table, name)


def _named(table: RatingTable, name: str) -> RatingTable:
    from dataclasses import replace

    return replace(table, source=name)
