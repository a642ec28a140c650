"""Checked columns, ratings and item texts of a RatingTable for the scorer; needs pandas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.errors import TrainError

MISSING_LEVEL = "(missing)"


def check_attributes(attributes: Sequence[str] | None, table: RatingTable) -> list[str]:
    """Return the attributes to use (default all rater attributes), checked against the table."""
    valid = [str(c) for c in table.raters.columns]
    if attributes is None:
        return valid
    for a in attributes:
        if a not in valid:
            raise TrainError(f"unknown rater attribute {a!r}; rater attributes are: "
                             f"{', '.join(valid) or '(none)'}")
    return list(attributes)


def resolve_text_columns(text_columns: Sequence[str] | None,
                          table: RatingTable) -> tuple[str, ...]:
    """Return the item columns that make the text (default prompt+response, text, response)."""
    cols = [str(c) for c in table.items.columns]
    if text_columns is None:
        for candidate in (("prompt", "response"), ("text",), ("response",)):
            if all(c in cols for c in candidate):
                return candidate
        raise TrainError("cannot find the item texts: the items have none of the columns "
                         "prompt+response, text or response; pass text_columns= (item "
                         f"columns are: {', '.join(cols) or '(none)'})")
    if not text_columns:
        raise TrainError("text_columns is empty; give at least one item column")
    for c in text_columns:
        if c not in cols:
            raise TrainError(f"unknown text column {c!r}; item columns are: "
                             f"{', '.join(cols) or '(none)'}")
    return tuple(text_columns)


def select_items(table: RatingTable, items: Iterable[str] | None) -> pd.DataFrame:
    """Return the ratings of ``items`` (all when None), checking the ids."""
    ratings = table.ratings
    if items is not None:
        wanted = pd.Index([str(i) for i in items]).unique()
        unknown = wanted.difference(table.items.index.astype(str))
        if len(unknown):
            shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise TrainError(f"unknown item id(s) {shown}; the table has {len(table.items)} "
                             f"items, e.g. {', '.join(map(str, table.items.index[:3]))}")
        ratings = ratings[ratings["item_id"].isin(wanted)]
    if ratings.empty:
        raise TrainError("no ratings for the given items")
    return ratings


def rater_attributes(table: RatingTable, rater_ids: Sequence[str],
                      attributes: Sequence[str]) -> pd.DataFrame:
    """Attribute values (as str, missing as ``"(missing)"``) of the raters, in table order."""
    raters = table.raters.loc[table.raters.index.isin(rater_ids), list(attributes)]
    return raters.apply(lambda col: col.astype(object).where(col.notna(), MISSING_LEVEL)
                        .astype(str)).astype(object)


def item_texts(table: RatingTable, item_ids: Sequence[str],
                text_columns: Sequence[str]) -> list[str]:
    """Return the text of each item: its text columns joined with a newline."""
    unknown = [i for i in item_ids if i not in table.items.index]
    if unknown:
        raise TrainError(f"item(s) {', '.join(map(repr, unknown[:5]))} are not in the table")
    missing = [c for c in text_columns if c not in table.items.columns]
    if missing:
        raise TrainError(f"the table's items have no column(s) {', '.join(missing)}; item "
                         f"columns are: {', '.join(map(str, table.items.columns))}")
    return join_columns(table.items.loc[list(item_ids)], text_columns)


def join_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Return each row's ``columns`` joined with a newline (missing values as empty text)."""
    parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str).tolist()
             for c in columns]
    return ["\n".join(row) for row in zip(*parts, strict=True)]


def join_texts(texts: Sequence[str | Sequence[str]] | str) -> list[str]:
    """Return the texts as a list of str, joining a sequence element (prompt, response)."""
    if isinstance(texts, str):
        return [texts]
    out = []
    for t in texts:
        if isinstance(t, str):
            out.append(t)
        elif isinstance(t, Sequence) and all(isinstance(s, str) for s in t):
            out.append("\n".join(t))
        else:
            raise TrainError(f"each text must be a str or a sequence of str (e.g. (prompt, "
                             f"response)); got {type(t).__name__}: {t!r:.60}")
    return out
